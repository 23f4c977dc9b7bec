// The AWQ search kernels (shaders/awq_*.wgsl through src/quant/awq_kernels.ts)
// against plain TypeScript references:
// - fake_quant vs quantizer.fakeQuantize (scaled: fakeQuantize(W*s)/s). Codes
//   may differ by one step only where the f32 quotient sits within 1e-3 of a
//   .5 rounding boundary (GPU division is not correctly rounded), on at most
//   0.2% of the elements; everything else agrees to 1e-6 relative.
// - abs_sum, row_sq_err + sum_into vs f64 sums (1e-5 relative).
// - rope_calib + attention_calib vs reference_ops.ropeRotateHalf + attention
//   per sequence (2e-5 absolute).
// - clip_search vs tests/support/reference_clip.ts on (row, group)s whose best
//   and second-best errors differ by more than 1%.

import assert from "node:assert/strict";
import { AwqKernels } from "../src/quant/awq_kernels.ts";
import { groupCount, quantizeLinear } from "../src/quant/quantizer.ts";
import type { QuantSettings } from "../src/quant/types.ts";
import { attention, ropeRotateHalf } from "../src/model/reference_ops.ts";
import { referenceClipSearch } from "./support/reference_clip.ts";
import {
  assertClose,
  type KernelHarness,
  mulberry32,
  randomFloats,
  withKernels,
} from "./support/seeded.ts";

const fr = Math.fround;

function withAwq(fn: (h: KernelHarness, awq: AwqKernels) => Promise<void>): Promise<void> {
  return withKernels(async (h) => {
    const awq = new AwqKernels(h.gpu);
    try {
      await fn(h, awq);
    } finally {
      awq.destroy();
    }
  });
}

interface FqCase {
  name: string;
  rows: number;
  cols: number;
  settings: QuantSettings;
  scaled?: boolean;
  clip?: "random" | "tight";
  /** Fill the weight with something other than uniform [-1, 1). */
  weight?: (rng: () => number, rows: number, cols: number) => Float32Array;
}

/** The reference of one fake_quant call, plus per-element info to judge mismatches. */
function referenceFakeQuant(
  w: Float32Array,
  s: Float32Array | null,
  caps: Float32Array | undefined,
  rows: number,
  cols: number,
  settings: QuantSettings,
): { out: Float32Array; step: Float32Array; ratio: Float32Array; loRatio: Float32Array } {
  const ws = s ? w.map((v, i) => fr(v * s[i % cols])) : w;
  const ql = quantizeLinear(ws, rows, cols, settings, caps);
  const nGroups = groupCount(cols, settings.groupSize);
  const g = settings.groupSize === 0 ? cols : settings.groupSize;
  const out = new Float32Array(rows * cols);
  const step = new Float32Array(rows * cols);
  const ratio = new Float32Array(rows * cols);
  const loRatio = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const gi = r * nGroups + Math.floor(c / g);
      const i = r * cols + c;
      const scale = ql.scales[gi];
      const cap = caps ? caps[gi] : Infinity;
      const d = fr((ql.q[i] - ql.zeros[gi]) * scale);
      out[i] = s ? fr(d / s[c]) : d;
      step[i] = s ? scale / s[c] : scale;
      ratio[i] = fr(Math.min(cap, Math.max(-cap, ws[i])) / scale);
      // the group's min over the scale decides the zero point
      let lo = Infinity;
      for (let k = Math.floor(c / g) * g; k < Math.min(cols, (Math.floor(c / g) + 1) * g); k++) {
        lo = Math.min(lo, Math.min(cap, Math.max(-cap, ws[r * cols + k])));
      }
      loRatio[i] = fr(lo / scale);
    }
  }
  return { out, step, ratio, loRatio };
}

const nearHalf = (v: number) => Math.abs(Math.abs(v - Math.floor(v)) - 0.5) < 1e-3;

/** Exact-ish comparison; one-step differences are allowed only at .5 rounding ties. */
function assertFakeQuantClose(
  got: Float32Array,
  ref: ReturnType<typeof referenceFakeQuant>,
  what: string,
): void {
  let ties = 0;
  for (let i = 0; i < got.length; i++) {
    const e = ref.out[i];
    const diff = Math.abs(got[i] - e);
    if (diff <= 1e-6 * Math.abs(e) + 1e-12) continue;
    const oneStep = Math.abs(diff - ref.step[i]) <= 1e-4 * ref.step[i];
    const tie = nearHalf(ref.ratio[i]) || nearHalf(ref.loRatio[i]);
    assert.ok(
      oneStep && tie,
      `${what}: element ${i} is ${got[i]}, expected ${e} (step ${ref.step[i]}, ` +
        `w/scale ${ref.ratio[i]}): not a rounding tie`,
    );
    ties++;
  }
  assert.ok(
    ties <= Math.max(1, 0.002 * got.length),
    `${what}: ${ties} of ${got.length} elements differ at rounding ties (allowed 0.2%)`,
  );
  assert.ok(ref.out.some((v) => v !== 0), `${what}: trivial reference`);
}

const uniform = (rng: () => number, rows: number, cols: number) =>
  randomFloats(rng, rows * cols, -1, 1);

/** Heavy-tailed rows with a few outliers, some all-zero / constant / same-sign groups. */
const awkward = (rng: () => number, rows: number, cols: number) => {
  const w = randomFloats(rng, rows * cols, -1, 1);
  for (let i = 0; i < w.length; i++) if (rng() < 0.03) w[i] *= 12;
  w.fill(0, 0, cols); // row 0: zeros (range guard)
  if (rows > 1) w.fill(0.37, cols, 2 * cols); // row 1: constant
  if (rows > 2) { for (let c = 0; c < cols; c++) w[2 * cols + c] = 0.5 + 0.5 * rng(); // positive
   }
  return w;
};

const CASES: FqCase[] = [
  {
    name: "g32 cols 70 4-bit zp",
    rows: 9,
    cols: 70,
    settings: { bits: 4, groupSize: 32, zeroPoint: true },
  },
  {
    name: "g32 cols 70 3-bit sym",
    rows: 9,
    cols: 70,
    settings: { bits: 3, groupSize: 32, zeroPoint: false },
  },
  {
    name: "per-channel 8-bit zp",
    rows: 7,
    cols: 70,
    settings: { bits: 8, groupSize: 0, zeroPoint: true },
  },
  {
    name: "per-channel 4-bit sym",
    rows: 7,
    cols: 70,
    settings: { bits: 4, groupSize: 0, zeroPoint: false },
  },
  {
    name: "g16 3-bit zp awkward",
    rows: 11,
    cols: 70,
    settings: { bits: 3, groupSize: 16, zeroPoint: true },
    weight: awkward,
  },
  {
    name: "g32 4-bit zp scaled",
    rows: 80, // > 64 (row, group) invocations: several workgroups
    cols: 70,
    settings: { bits: 4, groupSize: 32, zeroPoint: true },
    scaled: true,
  },
  {
    name: "per-channel 8-bit sym scaled",
    rows: 5,
    cols: 70,
    settings: { bits: 8, groupSize: 0, zeroPoint: false },
    scaled: true,
  },
  {
    name: "g32 4-bit zp clip",
    rows: 9,
    cols: 70,
    settings: { bits: 4, groupSize: 32, zeroPoint: true },
    clip: "random",
  },
  {
    name: "g32 3-bit sym clip",
    rows: 9,
    cols: 70,
    settings: { bits: 3, groupSize: 32, zeroPoint: false },
    clip: "random",
  },
  {
    name: "g16 4-bit zp clip below a same-sign group's minimum",
    rows: 4,
    cols: 70,
    settings: { bits: 4, groupSize: 16, zeroPoint: true },
    clip: "tight",
    weight: awkward,
  },
  {
    name: "g16 4-bit sym clip below a same-sign group's minimum",
    rows: 4,
    cols: 70,
    settings: { bits: 4, groupSize: 16, zeroPoint: false },
    clip: "tight",
    weight: awkward,
  },
];

Deno.test("fake_quant matches fakeQuantize: short last group, per-channel, 3/4/8 bits, zp on/off, clip", () =>
  withAwq(async (h, awq) => {
    const rng = mulberry32(11);
    for (const k of CASES) {
      const { rows, cols, settings } = k;
      const w = (k.weight ?? uniform)(rng, rows, cols);
      const nGroups = groupCount(cols, settings.groupSize);
      let caps: Float32Array | undefined;
      if (k.clip) {
        caps = new Float32Array(rows * nGroups);
        const g = settings.groupSize === 0 ? cols : settings.groupSize;
        for (let r = 0; r < rows; r++) {
          for (let gi = 0; gi < nGroups; gi++) {
            let amax = 0;
            for (let c = gi * g; c < Math.min(cols, (gi + 1) * g); c++) {
              amax = Math.max(amax, Math.abs(w[r * cols + c]));
            }
            // "tight": 0.55 of absmax, below the minimum of the all-positive row 2
            caps[r * nGroups + gi] = fr(amax * (k.clip === "tight" ? 0.55 : 0.55 + 0.45 * rng()));
          }
        }
      }
      // three candidate scale vectors; the kernel must read the one at sOffset
      const sAll = randomFloats(rng, 3 * cols, 0.25, 4);
      const which = 2;
      const s = k.scaled ? sAll.subarray(which * cols, (which + 1) * cols) : null;
      const out = h.f32(new Float32Array(rows * cols).fill(NaN));
      h.run(
        await awq.fakeQuant(
          h.f32(w),
          k.scaled ? h.f32(sAll) : null,
          caps ? h.f32(caps) : null,
          out,
          rows,
          cols,
          settings,
          k.scaled ? which * cols : 0,
        ),
      );
      const got = await h.readF32(out, rows * cols);
      const ref = referenceFakeQuant(w, s, caps, rows, cols, settings);
      assertFakeQuantClose(got, ref, k.name);
      // the comparison can fail: a different candidate gives a different result
      if (k.scaled) {
        const other = referenceFakeQuant(w, sAll.subarray(0, cols), caps, rows, cols, settings);
        assert.throws(() => assertFakeQuantClose(got, other, "other candidate"));
      }
    }
  }));

Deno.test("fake_quant leaves all-zero and constant groups finite", () =>
  withAwq(async (h, awq) => {
    for (const zeroPoint of [true, false]) {
      for (const bits of [3, 4, 8] as const) {
        const cols = 40;
        const w = new Float32Array(3 * cols);
        w.fill(0.37, cols, 2 * cols);
        w.fill(-2.5, 2 * cols);
        const settings = { bits, groupSize: 16, zeroPoint };
        const out = h.f32(new Float32Array(w.length).fill(NaN));
        h.run(await awq.fakeQuant(h.f32(w), null, null, out, 3, cols, settings));
        const got = await h.readF32(out, w.length);
        const ref = referenceFakeQuant(w, null, undefined, 3, cols, settings);
        assert.ok(got.every(Number.isFinite), `bits ${bits} zp ${zeroPoint}: non-finite output`);
        assertClose(got, ref.out, { abs: 1e-6, rel: 1e-3 }, `bits ${bits} zp ${zeroPoint}`);
      }
    }
  }));

Deno.test("abs_sum accumulates Σ|x| per channel onto the existing values", () =>
  withAwq(async (h, awq) => {
    const rng = mulberry32(21);
    for (const [rows, cols] of [[1, 3], [37, 70], [5, 150]]) {
      const x = randomFloats(rng, rows * cols, -3, 3);
      const init = randomFloats(rng, cols, 0, 10);
      const out = h.f32(init);
      const d = await awq.absSum(h.f32(x), out, rows, cols);
      h.run(d);
      h.run(d); // a second time adds again
      const expected = new Float32Array(cols);
      for (let c = 0; c < cols; c++) {
        let acc = 0;
        for (let r = 0; r < rows; r++) acc += Math.abs(x[r * cols + c]);
        expected[c] = init[c] + 2 * acc;
      }
      assertClose(
        await h.readF32(out, cols),
        expected,
        { abs: 1e-5, rel: 1e-5 },
        `${rows}x${cols}`,
      );
    }
  }));

Deno.test("row_sq_err + sum_into add the squared error into one loss slot, twice", () =>
  withAwq(async (h, awq) => {
    const rng = mulberry32(31);
    const rows = 130, cols = 33;
    const init = [1.5, 2.5, 3.5, 4.5];
    const loss = h.f32(init);
    const scratch = h.pool.acquire(rows * 4, "scratch");
    const errs: Float32Array[] = [];
    let total = init[2];
    for (let call = 0; call < 2; call++) {
      const a = randomFloats(rng, rows * cols, -2, 2);
      const b = randomFloats(rng, rows * cols, -2, 2);
      h.run(...await awq.squaredError(h.f32(a), h.f32(b), scratch, loss, 2, rows, cols));
      const rowErr = new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        for (let c = 0; c < cols; c++) acc += (a[r * cols + c] - b[r * cols + c]) ** 2;
        rowErr[r] = acc;
        total += acc;
      }
      errs.push(rowErr);
      assertClose(await h.readF32(scratch, rows), rowErr, { abs: 1e-5, rel: 1e-5 }, `rows ${call}`);
    }
    const got = await h.readF32(loss, 4);
    assertClose(got, [init[0], init[1], total, init[3]], { abs: 0, rel: 1e-5 }, "loss slots");
  }));

Deno.test("rope_calib + attention_calib match ropeRotateHalf + attention per sequence (GQA)", () =>
  withAwq(async (h, awq) => {
    const rng = mulberry32(41);
    const L = 5, nSeq = 3, N = L * nSeq, theta = 10000;
    for (
      const [nHeads, nKv, headDim] of [[4, 2, 8], [4, 2, 16], [6, 1, 16], [3, 3, 8]] as const
    ) {
      const qW = nHeads * headDim, kW = nKv * headDim;
      const q = randomFloats(rng, N * qW, -2, 2);
      const k = randomFloats(rng, N * kW, -2, 2);
      const v = randomFloats(rng, N * kW, -1, 1);
      const qb = h.f32(q), kb = h.f32(k), out = h.f32(new Float32Array(N * qW).fill(NaN));
      h.run(await awq.ropeCalib(qb, kb, N, L, nHeads, nKv, headDim, theta));
      const qRot = await h.readF32(qb, N * qW);
      const kRot = await h.readF32(kb, N * kW);
      h.run(await awq.attentionCalib(qb, kb, h.f32(v), out, N, L, nHeads, nKv, headDim));
      const got = await h.readF32(out, N * qW);
      const pos = Array.from({ length: L }, (_, t) => t);
      const expQ = new Float32Array(N * qW), expK = new Float32Array(N * kW);
      const expA = new Float32Array(N * qW);
      for (let sq = 0; sq < nSeq; sq++) {
        const qs = ropeRotateHalf(q.slice(sq * L * qW, (sq + 1) * L * qW), pos, headDim, theta);
        const ks = ropeRotateHalf(k.slice(sq * L * kW, (sq + 1) * L * kW), pos, headDim, theta);
        const vs = v.slice(sq * L * kW, (sq + 1) * L * kW);
        expQ.set(qs, sq * L * qW);
        expK.set(ks, sq * L * kW);
        expA.set(
          attention(qs, ks, vs, pos, { numHeads: nHeads, numKvHeads: nKv, headDim }),
          sq * L * qW,
        );
      }
      const what = `heads ${nHeads}/${nKv} hd ${headDim}`;
      const tol = { abs: 2e-5, rel: 1e-5 };
      assertClose(qRot, expQ, tol, `${what} rope q`);
      assertClose(kRot, expK, tol, `${what} rope k`);
      assertClose(got, expA, tol, `${what} attention`);
    }
  }));

Deno.test("clip_search picks the reference's best cap per (row, group)", () =>
  withAwq(async (h, awq) => {
    const rng = mulberry32(51);
    const cases: Array<[number, number, number, QuantSettings]> = [
      [24, 70, 16, { bits: 4, groupSize: 32, zeroPoint: true }],
      [20, 70, 12, { bits: 3, groupSize: 16, zeroPoint: false }],
      [70, 48, 8, { bits: 4, groupSize: 0, zeroPoint: true }], // > 64 invocations
      [12, 64, 10, { bits: 8, groupSize: 32, zeroPoint: true }],
    ];
    let clipped = 0, compared = 0, total = 0;
    for (const [rows, cols, n, settings] of cases) {
      const w = randomFloats(rng, rows * cols, -1, 1);
      for (let i = 0; i < w.length; i++) if (rng() < 0.04) w[i] *= 6; // outliers worth clipping
      // a few rows of same-sign groups whose every |w| exceeds the smaller caps
      for (let r = 0; r < rows; r += 5) {
        const sign = r % 2 ? -1 : 1;
        for (let c = 0; c < cols; c++) w[r * cols + c] = sign * (0.8 + 0.2 * rng());
      }
      const x = randomFloats(rng, n * cols, -1, 1);
      const ref = referenceClipSearch(w, x, rows, cols, n, settings);
      const count = rows * ref.nGroups;
      const best = h.f32(new Float32Array(count).fill(NaN));
      h.run(await awq.clipSearch(h.f32(w), h.f32(x), best, rows, cols, n, settings));
      const got = await h.readF32(best, count);
      for (let i = 0; i < count; i++) {
        total++;
        const errs = ref.errors[i];
        const sorted = [...errs].sort((a, b) => a - b);
        const separated = sorted[1] > sorted[0] * 1.01 + 1e-12;
        if (!separated) continue;
        compared++;
        if (ref.bestIndex[i] > 0) clipped++;
        const exp = ref.best[i];
        assert.ok(
          Math.abs(got[i] - exp) <= 1e-6 * exp,
          `bits ${settings.bits} g ${settings.groupSize} (row, group) ${i}: cap ${got[i]}, ` +
            `expected ${exp} (shrink index ${ref.bestIndex[i]}; candidates ${
              Array.from(ref.caps[i]).join(", ")
            })`,
        );
      }
    }
    assert.ok(compared >= 0.8 * total, `only ${compared} of ${total} groups are well separated`);
    assert.ok(
      clipped >= 0.1 * compared,
      `only ${clipped} of ${compared} groups chose a cap < absmax`,
    );
  }));
