// shaders/rope_store.wgsl against reference_ops.ropeRotateHalf: q rotated in
// place, k rotated into kCache and v copied into vCache at rows state.pos + t.
// Tolerance: |gpu - ref| <= 2e-6·(1 + pos) absolute on O(1) inputs, since the
// f32 angle pos·freq carries an error that grows with the position; v copies
// and untouched rows are compared exactly.

import assert from "node:assert/strict";
import type { AttentionShape } from "../src/gpu/kernels.ts";
import { ropeRotateHalf } from "../src/model/reference_ops.ts";
import { readCache, roundKv, uploadCache } from "./support/kv_cache.ts";
import {
  assertClose,
  type KernelHarness,
  mulberry32,
  randomFloats,
  withKernels,
} from "./support/seeded.ts";

interface RopeCase {
  shape: AttentionShape;
  T: number;
  pos: number;
  theta: number;
}

async function runRope(h: KernelHarness, c: RopeCase, seed: number) {
  const { nHeads, nKv, headDim, maxSeq } = c.shape;
  const rng = mulberry32(seed);
  const kvDim = nKv * headDim;
  const q = randomFloats(rng, c.T * nHeads * headDim);
  const k = randomFloats(rng, c.T * kvDim);
  const v = randomFloats(rng, c.T * kvDim);
  const kCache0 = randomFloats(rng, maxSeq * kvDim, 5, 6);
  const vCache0 = randomFloats(rng, maxSeq * kvDim, -6, -5);
  const kv = c.shape.kv ?? "f32";
  const qb = h.f32(q);
  const kCache = uploadCache(h, kCache0, kv);
  const vCache = uploadCache(h, vCache0, kv);
  const state = h.u32([c.pos, c.T, 0, 0]);
  const d = await h.kernels.ropeStore(
    qb,
    h.f32(k),
    h.f32(v),
    kCache,
    vCache,
    state,
    c.T,
    c.shape,
    c.theta,
  );
  h.run(d);
  return {
    q,
    k,
    v,
    kCache0: roundKv(kCache0, kv),
    vCache0: roundKv(vCache0, kv),
    qOut: await h.readF32(qb, q.length),
    kOut: await readCache(h, kCache, kCache0.length, kv),
    vOut: await readCache(h, vCache, vCache0.length, kv),
    state: await h.readU32(state, 4),
  };
}

const CASES: RopeCase[] = [
  { shape: { nHeads: 4, nKv: 2, headDim: 8, maxSeq: 16 }, T: 3, pos: 5, theta: 10000 },
  { shape: { nHeads: 2, nKv: 1, headDim: 128, maxSeq: 80 }, T: 2, pos: 70, theta: 1e6 },
  { shape: { nHeads: 6, nKv: 2, headDim: 10, maxSeq: 64 }, T: 5, pos: 0, theta: 10000 },
];

for (const c of CASES) {
  const label = `nHeads ${c.shape.nHeads}, nKv ${c.shape.nKv}, headDim ${c.shape.headDim}, ` +
    `T ${c.T} at pos ${c.pos}`;
  const positions = Array.from({ length: c.T }, (_, t) => c.pos + t);
  const tol = { abs: 2e-6 * (1 + c.pos + c.T), rel: 0 };

  Deno.test(`ropeStore rotates q in place like ropeRotateHalf (${label})`, () =>
    withKernels(async (h) => {
      const r = await runRope(h, c, 1);
      const ref = ropeRotateHalf(r.q, positions, c.shape.headDim, c.theta);
      assertClose(r.qOut, ref, tol, "q");
    }));

  Deno.test(`ropeStore writes rotated k and copied v to cache rows pos..pos+T-1 only (${label})`, () =>
    withKernels(async (h) => {
      const r = await runRope(h, c, 2);
      const kvDim = c.shape.nKv * c.shape.headDim;
      const lo = c.pos * kvDim;
      const hi = (c.pos + c.T) * kvDim;
      const kRef = ropeRotateHalf(r.k, positions, c.shape.headDim, c.theta);
      assertClose(r.kOut.subarray(lo, hi), kRef, tol, "kCache rows");
      assert.deepEqual(r.vOut.subarray(lo, hi), r.v, "vCache rows");
      assert.deepEqual(r.kOut.subarray(0, lo), r.kCache0.subarray(0, lo), "kCache before");
      assert.deepEqual(r.kOut.subarray(hi), r.kCache0.subarray(hi), "kCache after");
      assert.deepEqual(r.vOut.subarray(0, lo), r.vCache0.subarray(0, lo), "vCache before");
      assert.deepEqual(r.vOut.subarray(hi), r.vCache0.subarray(hi), "vCache after");
      assert.deepEqual([...r.state], [c.pos, c.T, 0, 0], "state is read-only");
    }));
}

Deno.test("ropeStore leaves q and the caches alone for tokens at or past maxSeq", () =>
  withKernels(async (h) => {
    const shape = { nHeads: 2, nKv: 1, headDim: 8, maxSeq: 6 };
    const r = await runRope(h, { shape, T: 3, pos: 4, theta: 10000 }, 3);
    const qw = shape.nHeads * shape.headDim;
    const kvw = shape.nKv * shape.headDim;
    const ref = ropeRotateHalf(r.q.subarray(0, 2 * qw), [4, 5], shape.headDim, 10000);
    assertClose(r.qOut.subarray(0, 2 * qw), ref, { abs: 2e-5, rel: 0 }, "q rows in range");
    assert.deepEqual(r.qOut.subarray(2 * qw), r.q.subarray(2 * qw), "q row past maxSeq");
    const kRef = ropeRotateHalf(r.k.subarray(0, 2 * kvw), [4, 5], shape.headDim, 10000);
    assertClose(r.kOut.subarray(4 * kvw), kRef, { abs: 2e-5, rel: 0 }, "kCache rows 4..5");
    assert.deepEqual(r.vOut.subarray(4 * kvw), r.v.subarray(0, 2 * kvw), "vCache rows 4..5");
  }));

Deno.test("ropeStore into an f16 KV cache stores the f16 rounding of rotated k and of v, rows pos..pos+T-1 only", () =>
  withKernels(async (h) => {
    for (const c0 of CASES) {
      const c = { ...c0, shape: { ...c0.shape, kv: "f16" as const } };
      const r = await runRope(h, c, 4);
      const kvDim = c.shape.nKv * c.shape.headDim;
      const lo = c.pos * kvDim;
      const hi = (c.pos + c.T) * kvDim;
      const positions = Array.from({ length: c.T }, (_, t) => c.pos + t);
      const kRef = ropeRotateHalf(r.k, positions, c.shape.headDim, c.theta);
      // f16 keeps 11 significant bits: half an ulp is 2^-11 relative.
      assertClose(r.kOut.subarray(lo, hi), kRef, { abs: 2e-6 * (1 + hi), rel: 2 ** -11 }, "k f16");
      assert.deepEqual(r.vOut.subarray(lo, hi), roundKv(r.v, "f16"), "v f16");
      assert.deepEqual(r.kOut.subarray(0, lo), r.kCache0.subarray(0, lo), "kCache before");
      assert.deepEqual(r.kOut.subarray(hi), r.kCache0.subarray(hi), "kCache after");
      assert.deepEqual(r.vOut.subarray(hi), r.vCache0.subarray(hi), "vCache after");
    }
  }));
