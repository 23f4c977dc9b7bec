import assert from "node:assert/strict";
import {
  awqTensorShapes,
  checkPackable,
  gemvZerosWidth,
  packAwq,
  paddedShape,
  padQuantized,
  sliceQuantized,
  unpackAwq,
} from "../src/formats/awq_pack.ts";
import { FormatError } from "../src/errors.ts";
import { dequantizeLinear, quantizeLinear } from "../src/quant/quantizer.ts";
import type { QuantizedLinear, QuantSettings } from "../src/quant/types.ts";
import { mulberry32, randomFloats } from "./support/seeded.ts";

/** A hand-built quantized linear with the given codes and one group per row. */
function handBuilt(outF: number, inF: number, bits: 3 | 4 | 8, codes: number[]): QuantizedLinear {
  return {
    outFeatures: outF,
    inFeatures: inF,
    settings: { bits, groupSize: 0, zeroPoint: true },
    q: new Uint8Array(codes),
    scales: new Float32Array(outF).fill(1),
    zeros: new Uint8Array(outF).fill(bits === 8 ? 9 : 5),
  };
}

const hex = (x: number) => (x >>> 0).toString(16);

Deno.test("packAwq() GEMM puts column 8j + [0,2,4,6,1,3,5,7][i] in nibble slot i", () => {
  // out 8, in 1: column n holds code n + 1.
  const p = packAwq(handBuilt(8, 1, 4, [1, 2, 3, 4, 5, 6, 7, 8]), "gemm");
  assert.deepEqual(p.qweight.shape, [1, 1]);
  // slots 0..7 hold columns 0,2,4,6,1,3,5,7 -> codes 1,3,5,7,2,4,6,8 (slot 0 lowest).
  assert.equal(hex(p.qweight.data[0]), "86427531");
  assert.equal(hex(p.qzeros.data[0]), "55555555");
  assert.deepEqual(p.scales.shape, [1, 8]);
});

Deno.test("packAwq() GEMM packs each input row k into its own word row", () => {
  // out 8, in 2: W[n, k] = n + 8k (codes 0..15).
  const codes = Array.from({ length: 16 }, (_, i) => (i >> 1) + 8 * (i & 1));
  const p = packAwq(handBuilt(8, 2, 4, codes), "gemm");
  assert.deepEqual(p.qweight.shape, [2, 1]);
  assert.deepEqual(Array.from(p.qweight.data, hex), ["75316420", "fdb9eca8"]);
});

Deno.test("packAwq() GEMV packs 8 input columns per word in plain order", () => {
  const p = packAwq(handBuilt(1, 8, 4, [1, 2, 3, 4, 5, 6, 7, 8]), "gemv");
  assert.deepEqual(p.qweight.shape, [1, 1]);
  assert.equal(hex(p.qweight.data[0]), "87654321");
  // per-channel: one group, Z = 1 word, scales padded to 8 columns with 0.
  assert.deepEqual(p.qzeros.shape, [1, 1]);
  assert.equal(hex(p.qzeros.data[0]), "5");
  assert.deepEqual(Array.from(p.scales.data), [0x3c00, 0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("packAwq() 3-bit uses the 4-bit nibble layout", () => {
  const p = packAwq(handBuilt(8, 1, 3, [0, 1, 2, 3, 4, 5, 6, 7]), "gemm");
  assert.equal(hex(p.qweight.data[0]), "75316420");
});

Deno.test("packAwq() 8-bit packs 4 bytes per word in plain order", () => {
  const gemm = packAwq(handBuilt(4, 1, 8, [1, 2, 3, 200]), "gemm");
  assert.deepEqual(gemm.qweight.shape, [1, 1]);
  assert.equal(hex(gemm.qweight.data[0]), "c8030201");
  assert.equal(hex(gemm.qzeros.data[0]), "9090909");
  const gemv = packAwq(handBuilt(1, 4, 8, [1, 2, 3, 200]), "gemv");
  assert.equal(hex(gemv.qweight.data[0]), "c8030201");
});

Deno.test("unpackAwq() inverts the hand-built GEMM nibble order", () => {
  const ql = handBuilt(8, 1, 4, [1, 2, 3, 4, 5, 6, 7, 8]);
  const back = unpackAwq(packAwq(ql, "gemm"), 8, 1, ql.settings, "gemm");
  assert.deepEqual(Array.from(back.q), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(Array.from(back.zeros), [5, 5, 5, 5, 5, 5, 5, 5]);
});

Deno.test("packAwq() then unpackAwq() round-trips random weights in every layout and bit width", () => {
  const rng = mulberry32(5);
  for (const layout of ["gemm", "gemv"] as const) {
    for (const bits of [3, 4, 8] as const) {
      for (const [groupSize, outF, inF] of [[32, 16, 128], [64, 24, 128], [0, 8, 40]]) {
        for (const zeroPoint of [true, false]) {
          const s: QuantSettings = { bits, groupSize, zeroPoint };
          const ql = quantizeLinear(randomFloats(rng, outF * inF), outF, inF, s);
          const p = packAwq(ql, layout);
          assert.deepEqual(p.qweight.shape, awqTensorShapes(outF, inF, s, layout).qweight);
          const back = unpackAwq(p, outF, inF, s, layout);
          const what = `${layout} ${bits}-bit g${groupSize} zp ${zeroPoint}`;
          assert.deepEqual(back.q, ql.q, what);
          assert.deepEqual(back.zeros, ql.zeros, what);
          assert.deepEqual(back.scales, ql.scales, what);
        }
      }
    }
  }
});

Deno.test("gemvZerosWidth() follows AutoAWQ's calculate_zeros_width", () => {
  assert.equal(gemvZerosWidth(4096, 128, 4), 4);
  assert.equal(gemvZerosWidth(11008, 128, 4), 11); // 86 groups -> 11 words
  assert.equal(gemvZerosWidth(4096, 64, 4), 8);
  assert.equal(gemvZerosWidth(4096, 32, 4), 16);
  assert.equal(gemvZerosWidth(128, 32, 4), 4); // 4 groups -> 1 word -> multiple of 4
  assert.deepEqual(awqTensorShapes(8, 128, { bits: 4, groupSize: 32, zeroPoint: true }, "gemv"), {
    qweight: [8, 16],
    qzeros: [8, 4],
    scales: [8, 32],
  });
});

Deno.test("checkPackable() names the dimension the format cannot hold", () => {
  const s: QuantSettings = { bits: 4, groupSize: 64, zeroPoint: true };
  assert.match(checkPackable(172, 64, s, "gemm")!, /out_features 172 is not a multiple of 8/);
  assert.match(checkPackable(64, 172, s, "gemm")!, /in_features 172 .* group size 64/);
  assert.match(checkPackable(64, 60, { ...s, groupSize: 0 }, "gemv")!, /in_features 60/);
  assert.equal(checkPackable(64, 128, s, "gemm"), undefined);
  assert.throws(
    () => packAwq(quantizeLinear(new Float32Array(172), 172, 1, s), "gemm"),
    RangeError,
  );
});

Deno.test("padQuantized() adds codes at the zero point so padded weights dequantize to 0", () => {
  const s: QuantSettings = { bits: 4, groupSize: 32, zeroPoint: true };
  const w = randomFloats(mulberry32(9), 6 * 44);
  const ql = quantizeLinear(w, 6, 44, s);
  const [outP, inP] = paddedShape(6, 44, s, "gemm");
  assert.deepEqual([outP, inP], [8, 64]);
  const padded = padQuantized(ql, outP, inP);
  const d = dequantizeLinear(padded);
  const orig = dequantizeLinear(ql);
  for (let r = 0; r < outP; r++) {
    for (let k = 0; k < inP; k++) {
      const want = r < 6 && k < 44 ? orig[r * 44 + k] : 0;
      assert.equal(d[r * inP + k], want, `[${r}, ${k}]`);
    }
  }
  assert.deepEqual(sliceQuantized(padded, 6, 44), { ...ql, settings: { ...s } });
});

Deno.test("paddedShape() for GEMV pads in to a multiple of both the group size and 8", () => {
  const s: QuantSettings = { bits: 4, groupSize: 0, zeroPoint: true };
  assert.deepEqual(paddedShape(172, 60, s, "gemv"), [172, 64]);
  assert.deepEqual(paddedShape(172, 60, { ...s, groupSize: 12 }, "gemv"), [172, 72]);
  assert.deepEqual(paddedShape(64, 128, { ...s, groupSize: 128 }, "gemm"), [64, 128]);
});

Deno.test("unpackAwq() rejects a wrong shape and an out-of-range 3-bit code, naming the tensor", () => {
  const s: QuantSettings = { bits: 3, groupSize: 0, zeroPoint: true };
  const p = packAwq(handBuilt(8, 1, 3, [0, 1, 2, 3, 4, 5, 6, 7]), "gemm");
  assert.throws(
    () =>
      unpackAwq(
        { ...p, scales: { data: new Uint16Array(4), shape: [1, 4] } },
        8,
        1,
        s,
        "gemm",
        "m.q_proj",
      ),
    (e) =>
      e instanceof FormatError &&
      /m\.q_proj\.scales: shape \[1,4\], expected \[1,8\]/.test(e.message),
  );
  const bad = { ...p, qweight: { data: new Int32Array([0xf]), shape: [1, 1] as [number, number] } };
  assert.throws(
    () => unpackAwq(bad, 8, 1, s, "gemm", "m.q_proj"),
    (e) => e instanceof FormatError && /m\.q_proj\.qweight: value 15 out of range/.test(e.message),
  );
});
