// shaders/attention.wgsl, both entries (attention: workgroup online softmax;
// attention_rows: one invocation per (head, token)), against
// reference_ops.attention (f64). Tolerance: |gpu - ref| <= 2e-6 + 1e-4·|ref|.
// Cache rows past the last query's position hold large random values, so a
// kernel that looks past its causal window fails.

import assert from "node:assert/strict";
import { GpuError } from "../src/errors.ts";
import type { AttentionShape } from "../src/gpu/kernels.ts";
import { attention } from "../src/model/reference_ops.ts";
import { KV_DTYPES, roundKv, uploadCache } from "./support/kv_cache.ts";
import {
  assertClose,
  type KernelHarness,
  mulberry32,
  randomFloats,
  withKernels,
} from "./support/seeded.ts";

type Entry = "attention" | "attention_rows";
const ENTRIES: Entry[] = ["attention", "attention_rows"];
const TOL = { abs: 2e-6, rel: 1e-4 };

interface AttnCase {
  shape: AttentionShape;
  T: number;
  pos: number;
  /** q scale: larger makes the softmax peakier. */
  qScale: number;
}

async function runAttention(
  h: KernelHarness,
  entry: Entry,
  c: AttnCase,
  seed: number,
  edit?: (q: Float32Array, k: Float32Array, v: Float32Array) => void,
) {
  const { nHeads, nKv, headDim, maxSeq } = c.shape;
  const rng = mulberry32(seed);
  const kvDim = nKv * headDim;
  const q = randomFloats(rng, c.T * nHeads * headDim, -c.qScale, c.qScale);
  const k = randomFloats(rng, maxSeq * kvDim);
  const v = randomFloats(rng, maxSeq * kvDim);
  const last = c.pos + c.T; // rows >= last are outside every query's window
  for (let i = last * kvDim; i < k.length; i++) {
    k[i] = 50 * (rng() - 0.5);
    v[i] = 1000 + rng();
  }
  edit?.(q, k, v);
  const kv = c.shape.kv ?? "f32";
  const kr = roundKv(k, kv);
  const vr = roundKv(v, kv);
  const out = h.f32(new Float32Array(q.length).fill(NaN));
  const d = await h.kernels.attention(
    h.f32(q),
    uploadCache(h, k, kv),
    uploadCache(h, v, kv),
    out,
    h.u32([c.pos, c.T, 0, 0]),
    c.T,
    c.shape,
    { entry },
  );
  h.run(d);
  const positions = Array.from({ length: c.T }, (_, t) => c.pos + t);
  const heads = { numHeads: nHeads, numKvHeads: nKv, headDim };
  const ref = attention(
    q,
    kr.subarray(0, last * kvDim),
    vr.subarray(0, last * kvDim),
    positions,
    heads,
  );
  return { got: await h.readF32(out, q.length), ref, v: vr, kvDim };
}

const CASES: [string, AttnCase][] = [
  [
    "GQA 4/2 heads of 8, one query at pos 70 (keys cross the 64-key chunk)",
    { shape: { nHeads: 4, nKv: 2, headDim: 8, maxSeq: 96 }, T: 1, pos: 70, qScale: 3 },
  ],
  [
    "GQA 2/1 heads of 128, one query at pos 70",
    { shape: { nHeads: 2, nKv: 1, headDim: 128, maxSeq: 80 }, T: 1, pos: 70, qScale: 0.5 },
  ],
  [
    "GQA 6/2 heads of 8, 5 causal queries from pos 62 (straddling 64 keys)",
    { shape: { nHeads: 6, nKv: 2, headDim: 8, maxSeq: 96 }, T: 5, pos: 62, qScale: 2 },
  ],
  [
    "MHA 3/3 heads of 12, 7 causal queries from pos 0",
    { shape: { nHeads: 3, nKv: 3, headDim: 12, maxSeq: 16 }, T: 7, pos: 0, qScale: 2 },
  ],
  [
    "GQA 4/1 heads of 128, 3 causal queries from pos 128 (three chunks)",
    { shape: { nHeads: 4, nKv: 1, headDim: 128, maxSeq: 140 }, T: 3, pos: 128, qScale: 0.4 },
  ],
  [
    "GQA 2/1 heads of 256 (the largest head), 2 causal queries from pos 30",
    { shape: { nHeads: 2, nKv: 1, headDim: 256, maxSeq: 40 }, T: 2, pos: 30, qScale: 0.3 },
  ],
];

for (const entry of ENTRIES) {
  for (const [label, c] of CASES) {
    Deno.test(`${entry} matches the reference: ${label}`, () =>
      withKernels(async (h) => {
        const r = await runAttention(h, entry, c, 1);
        assertClose(r.got, r.ref, TOL, entry);
      }));
  }

  Deno.test(`${entry} with an f16 KV cache matches the reference on the f16-rounded keys and values`, () =>
    withKernels(async (h) => {
      for (const [label, c] of CASES) {
        const r = await runAttention(
          h,
          entry,
          { ...c, shape: { ...c.shape, kv: KV_DTYPES[1] } },
          3,
        );
        assertClose(r.got, r.ref, TOL, `${entry} f16 ${label}`);
      }
    }));

  Deno.test(`${entry} finds a dominant key in the second 64-key chunk (online-softmax rescale)`, () =>
    withKernels(async (h) => {
      const shape = { nHeads: 2, nKv: 1, headDim: 8, maxSeq: 80 };
      const c = { shape, T: 1, pos: 70, qScale: 1 };
      // key 69 aligns with head 0's query, scaled so its score dominates
      const r = await runAttention(h, entry, c, 2, (q, k) => {
        for (let d = 0; d < 8; d++) k[69 * 8 + d] = 30 * q[d];
      });
      assertClose(r.got, r.ref, TOL, entry);
      // the reference agrees that head 0 attends almost only to key 69
      const v69 = r.v.subarray(69 * 8, 70 * 8);
      for (let d = 0; d < 8; d++) assert.ok(Math.abs(r.ref[d] - v69[d]) < 1e-3, `ref dim ${d}`);
    }));

  Deno.test(`${entry} stays finite for large scores (max subtracted before exp)`, () =>
    withKernels(async (h) => {
      const shape = { nHeads: 2, nKv: 2, headDim: 8, maxSeq: 72 };
      const r = await runAttention(h, entry, { shape, T: 2, pos: 66, qScale: 60 }, 3);
      assert.ok(r.got.every(Number.isFinite), "outputs are finite");
      assertClose(r.got, r.ref, { abs: 1e-5, rel: 1e-4 }, entry);
    }));
}

Deno.test("attention (workgroup entry) handles a head size that is not a multiple of 4", () =>
  withKernels(async (h) => {
    const shape = { nHeads: 6, nKv: 2, headDim: 10, maxSeq: 72 };
    const r = await runAttention(h, "attention", { shape, T: 3, pos: 64, qScale: 2 }, 5);
    assertClose(r.got, r.ref, TOL, "headDim 10");
  }));

Deno.test("attention_rows rejects a head size that is not a multiple of 4", () =>
  withKernels(async (h) => {
    const shape = { nHeads: 2, nKv: 1, headDim: 10, maxSeq: 8 };
    await assert.rejects(
      () => runAttention(h, "attention_rows", { shape, T: 1, pos: 0, qScale: 1 }, 6),
      GpuError,
    );
  }));

Deno.test("attention without an entry override uses the kernel table and matches the reference", () =>
  withKernels(async (h) => {
    const shape = { nHeads: 4, nKv: 2, headDim: 8, maxSeq: 80 };
    const c = { shape, T: 2, pos: 65, qScale: 2 };
    const rng = mulberry32(4);
    const q = randomFloats(rng, 2 * 32, -2, 2);
    const k = randomFloats(rng, 80 * 16);
    const v = randomFloats(rng, 80 * 16);
    const out = h.pool.acquire(q.length * 4, "out");
    const d = await h.kernels.attention(
      h.f32(q),
      h.f32(k),
      h.f32(v),
      out,
      h.u32([65, 2, 0, 0]),
      2,
      shape,
    );
    h.run(d);
    const heads = { numHeads: 4, numKvHeads: 2, headDim: 8 };
    const ref = attention(q, k.subarray(0, 67 * 16), v.subarray(0, 67 * 16), [65, 66], heads);
    assertClose(await h.readF32(out, q.length), ref, TOL, `table (${c.T} queries)`);
  }));
