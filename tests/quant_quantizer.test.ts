import assert from "node:assert/strict";
import {
  dequantizeLinear,
  fakeQuantize,
  groupCount,
  quantizeLinear,
  roundHalfEven,
  roundScalesToF16,
} from "../src/quant/quantizer.ts";
import type { QuantSettings } from "../src/quant/types.ts";
import { roundToF16 } from "../src/formats/half.ts";
import { mulberry32, randomFloats } from "./support/seeded.ts";

const f32 = (xs: number[]) => new Float32Array(xs);

Deno.test("roundHalfEven() rounds ties to the even neighbour like torch.round", () => {
  assert.deepEqual(
    [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6].map(roundHalfEven),
    [0, 2, 2, 0, -2, -2, 2, 3, -3],
  );
});

Deno.test("groupCount() is ceil(in / g), and 1 for per-channel", () => {
  assert.deepEqual(
    [groupCount(256, 128), groupCount(172, 64), groupCount(172, 0), groupCount(352, 32)],
    [2, 3, 1, 11],
  );
  assert.throws(() => groupCount(8, -1), RangeError);
});

Deno.test("quantizeLinear() 4-bit asymmetric per-channel matches a hand-checked row", () => {
  // min -1, max 2: scale = 3/15 = 0.2 -> f16 0.199951171875; zero = -round(-5.001) = 5;
  // 0.5 / scale = 2.5006 -> 3, 2 / scale = 10.002 -> 10.
  const ql = quantizeLinear(f32([-1, 0, 0.5, 2]), 1, 4, { bits: 4, groupSize: 0, zeroPoint: true });
  assert.deepEqual(Array.from(ql.scales), [0.199951171875]);
  assert.deepEqual(Array.from(ql.zeros), [5]);
  assert.deepEqual(Array.from(ql.q), [0, 5, 8, 15]);
  const w = dequantizeLinear(ql);
  assert.deepEqual(Array.from(w), [-5, 0, 3, 10].map((c) => Math.fround(c * 0.199951171875)));
});

Deno.test("quantizeLinear() rounds exact halves to even codes", () => {
  // range 15 -> scale 1 exactly, zero 0; 2.5 -> 2, 3.5 -> 4.
  const ql = quantizeLinear(f32([0, 15, 2.5, 3.5]), 1, 4, {
    bits: 4,
    groupSize: 0,
    zeroPoint: true,
  });
  assert.deepEqual(Array.from(ql.scales), [1]);
  assert.deepEqual(Array.from(ql.q), [0, 15, 2, 4]);
});

Deno.test("quantizeLinear() 3-bit asymmetric clamps codes to [0, 7]", () => {
  // range 7 -> scale 1; zero = -round(-3.5) = 4; 3.5 -> 4 + 4 = 8 -> clamped to 7.
  const ql = quantizeLinear(f32([-3.5, 0, 3.5, 1]), 1, 4, {
    bits: 3,
    groupSize: 0,
    zeroPoint: true,
  });
  assert.deepEqual(Array.from(ql.zeros), [4]);
  assert.deepEqual(Array.from(ql.q), [0, 4, 7, 5]);
  assert.deepEqual(Array.from(dequantizeLinear(ql)), [-4, 0, 3, 1]);
});

Deno.test("quantizeLinear() 8-bit asymmetric uses codes 0..255", () => {
  // range 255 -> scale 1; zero = 100.
  const ql = quantizeLinear(f32([-100, 155, 0.5, 1.5]), 1, 4, {
    bits: 8,
    groupSize: 0,
    zeroPoint: true,
  });
  assert.deepEqual(Array.from(ql.zeros), [100]);
  assert.deepEqual(Array.from(ql.q), [0, 255, 100, 102]);
  assert.deepEqual(Array.from(dequantizeLinear(ql)), [-100, 155, 0, 2]);
});

Deno.test("quantizeLinear() symmetric uses absmax / (2^(b-1) - 1) and zero 2^(b-1)", () => {
  // absmax 7 -> scale 1; codes = round(w) + 8.
  const ql = quantizeLinear(f32([-7, 7, 2.5, -0.5]), 1, 4, {
    bits: 4,
    groupSize: 0,
    zeroPoint: false,
  });
  assert.deepEqual(Array.from(ql.scales), [1]);
  assert.deepEqual(Array.from(ql.zeros), [8]);
  assert.deepEqual(Array.from(ql.q), [1, 15, 10, 8]);
  assert.deepEqual(Array.from(dequantizeLinear(ql)), [-7, 7, 2, 0]);
});

Deno.test("quantizeLinear() symmetric 8-bit uses absmax / 127 and zero 128", () => {
  const ql = quantizeLinear(f32([-127, 64, 1]), 1, 3, { bits: 8, groupSize: 0, zeroPoint: false });
  assert.deepEqual(Array.from(ql.scales), [1]);
  assert.deepEqual(Array.from(ql.zeros), [128]);
  assert.deepEqual(Array.from(ql.q), [1, 192, 129]);
});

Deno.test("quantizeLinear() gives each row its own per-channel scale", () => {
  const ql = quantizeLinear(f32([0, 15, 0, 30]), 2, 2, { bits: 4, groupSize: 0, zeroPoint: true });
  assert.deepEqual(Array.from(ql.scales), [1, 2]);
  assert.deepEqual(Array.from(ql.q), [0, 15, 0, 15]);
});

Deno.test("quantizeLinear() makes the last group shorter when in % g != 0", () => {
  // g = 3 over 5 inputs: groups [0, 15, 7.5] and [-15, 0].
  const ql = quantizeLinear(f32([0, 15, 7.5, -15, 0]), 1, 5, {
    bits: 4,
    groupSize: 3,
    zeroPoint: true,
  });
  assert.deepEqual(Array.from(ql.scales), [1, 1]);
  assert.deepEqual(Array.from(ql.zeros), [0, 15]);
  assert.deepEqual(Array.from(ql.q), [0, 15, 8, 0, 15]);
  assert.deepEqual(Array.from(dequantizeLinear(ql)), [0, 15, 8, -15, 0]);
});

Deno.test("quantizeLinear() clamps a group to [-clipMax, clipMax] before computing its scale", () => {
  // clipped to [-7.5, 0, 1, 7.5]: range 15 -> scale 1, zero = -round(-7.5) = 8.
  const s: QuantSettings = { bits: 4, groupSize: 0, zeroPoint: true };
  const ql = quantizeLinear(f32([-100, 0, 1, 7.5]), 1, 4, s, f32([7.5]));
  assert.deepEqual(Array.from(ql.scales), [1]);
  assert.deepEqual(Array.from(ql.zeros), [8]);
  assert.deepEqual(Array.from(ql.q), [0, 8, 9, 15]);
  assert.deepEqual(Array.from(dequantizeLinear(ql)), [-8, 0, 1, 7]);
});

Deno.test("quantizeLinear() clipping applies per (row, group)", () => {
  const s: QuantSettings = { bits: 4, groupSize: 2, zeroPoint: false };
  // row 0 group 0 capped at 7, group 1 uncapped (absmax 14 -> scale 2).
  const ql = quantizeLinear(f32([-70, 7, 14, 2]), 1, 4, s, f32([7, Infinity]));
  assert.deepEqual(Array.from(ql.scales), [1, 2]);
  assert.deepEqual(Array.from(dequantizeLinear(ql)), [-7, 7, 14, 2]);
});

Deno.test("quantizeLinear() guards an all-zero group with AutoAWQ's 1e-5 range", () => {
  const ql = quantizeLinear(f32([0, 0, 0, 0]), 1, 4, { bits: 4, groupSize: 0, zeroPoint: true });
  assert.equal(ql.scales[0], roundToF16(Math.fround(1e-5 / 15)));
  assert.ok(ql.scales[0] > 0);
  assert.deepEqual(Array.from(dequantizeLinear(ql)), [0, 0, 0, 0]);
});

Deno.test("quantizeLinear() keeps every error within half a step when groups span zero", () => {
  // (An asymmetric group entirely above or below zero clamps its zero point to
  // the code range, as in AutoAWQ, and can then err by more than half a step.)
  const rng = mulberry32(11);
  for (const bits of [3, 4, 8] as const) {
    for (const zeroPoint of [true, false]) {
      for (const groupSize of [0, 8, 7]) {
        const w = randomFloats(rng, 5 * 20, -2, 2);
        for (let r = 0; r < 5; r++) {
          for (let k = 0; k < 20; k += groupSize || 20) w[r * 20 + k] = 0;
        }
        const ql = quantizeLinear(w, 5, 20, { bits, groupSize, zeroPoint });
        const d = dequantizeLinear(ql);
        const nG = groupCount(20, groupSize);
        const g = groupSize || 20;
        for (let i = 0; i < w.length; i++) {
          const r = Math.floor(i / 20);
          const scale = ql.scales[r * nG + Math.floor((i % 20) / g)];
          assert.ok(
            // half a step, plus the f16 rounding of the scale over 2^bits steps
            Math.abs(w[i] - d[i]) <= scale * (0.5 + (1 << bits) * 2 ** -11) + 1e-6,
            `bits ${bits} zp ${zeroPoint} g ${groupSize} at ${i}: ${w[i]} -> ${d[i]}`,
          );
          assert.ok(ql.q[i] < 1 << bits);
        }
      }
    }
  }
});

Deno.test("quantizeLinear() stores f16-representable scales so roundScalesToF16 is a no-op", () => {
  const w = randomFloats(mulberry32(3), 4 * 16, -1, 1);
  const ql = quantizeLinear(w, 4, 16, { bits: 4, groupSize: 8, zeroPoint: true });
  assert.deepEqual(roundScalesToF16(ql).scales, ql.scales);
  assert.deepEqual(fakeQuantize(w, 4, 16, ql.settings), dequantizeLinear(ql));
});

Deno.test("roundScalesToF16() rounds scales and keeps codes", () => {
  const ql = roundScalesToF16({
    outFeatures: 1,
    inFeatures: 1,
    settings: { bits: 4, groupSize: 0, zeroPoint: true },
    q: new Uint8Array([3]),
    scales: f32([0.1]),
    zeros: new Uint8Array([1]),
  });
  assert.deepEqual(Array.from(ql.scales), [0.0999755859375]);
  assert.deepEqual(Array.from(ql.q), [3]);
});

Deno.test("quantizeLinear() rejects bits outside {3, 4, 8} and mismatched sizes", () => {
  const bad = { bits: 5, groupSize: 0, zeroPoint: true } as unknown as QuantSettings;
  assert.throws(() => quantizeLinear(f32([1, 2]), 1, 2, bad), /bits must be 3, 4 or 8/);
  assert.throws(
    () => quantizeLinear(f32([1, 2, 3]), 1, 2, { bits: 4, groupSize: 0, zeroPoint: true }),
    /expected 1 x 2/,
  );
});
