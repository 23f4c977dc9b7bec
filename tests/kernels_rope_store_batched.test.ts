// shaders/rope_store.wgsl over rows of several slots, against tests/support/reference_batched.ts:
// rows of different slots at different positions, each rotated at its own
// position and stored in its own slot's region of [slots, maxSeq, kvDim]
// caches; every other cache row stays as it was. Tolerance as in
// kernels_rope_store.test.ts: 2e-6·(1 + pos) absolute.

import assert from "node:assert/strict";
import type { AttentionShape } from "../src/gpu/kernels.ts";
import { type BatchRow, ropeStoreBatchedRef } from "./support/reference_batched.ts";
import { assertClose, mulberry32, randomFloats, withKernels } from "./support/seeded.ts";

async function check(shape: AttentionShape, slots: number, slotPos: number[], rows: BatchRow[]) {
  await withKernels(async (h) => {
    const { nHeads, nKv, headDim, maxSeq } = shape;
    const rng = mulberry32(slots * 31 + rows.length);
    const T = rows.length;
    const kvDim = nKv * headDim;
    const q = randomFloats(rng, T * nHeads * headDim);
    const k = randomFloats(rng, T * kvDim);
    const v = randomFloats(rng, T * kvDim);
    const kCache0 = randomFloats(rng, slots * maxSeq * kvDim, 5, 6);
    const vCache0 = randomFloats(rng, slots * maxSeq * kvDim, -6, -5);
    const qb = h.f32(q);
    const kc = h.f32(kCache0);
    const vc = h.f32(vCache0);
    const states = h.u32(slotPos.flatMap((p) => [p, 1, 0, 0]));
    const d = await h.kernels.ropeStoreBatched(
      qb,
      h.f32(k),
      h.f32(v),
      kc,
      vc,
      states,
      h.u32(rows.flat()),
      T,
      shape,
      10000,
    );
    h.run(d);
    const ref = ropeStoreBatchedRef(q, k, v, kCache0, vCache0, rows, slotPos, shape, 10000);
    const tol = { abs: 2e-6 * (1 + maxSeq), rel: 0 };
    assertClose(await h.readF32(qb, q.length), ref.q, tol, "q");
    assertClose(await h.readF32(kc, kCache0.length), ref.kCache, tol, "kCache");
    // v is copied, so it and every untouched row compare exactly
    assert.deepEqual(await h.readF32(vc, vCache0.length), ref.vCache, "vCache");
  });
}

Deno.test("ropeStoreBatched rotates each row at its slot's position and stores it in that slot only", () =>
  check(
    { nHeads: 4, nKv: 2, headDim: 8, maxSeq: 16 },
    3,
    [7, 3, 12],
    [[2, 0], [0, 0], [1, 0], [1, 1], [1, 2]],
  ));

Deno.test("ropeStoreBatched handles a prompt chunk of one slot (offsets 0..T-1) with head size 128", () =>
  check(
    { nHeads: 2, nKv: 1, headDim: 128, maxSeq: 80 },
    2,
    [0, 70],
    Array.from({ length: 6 }, (_, t): BatchRow => [1, t]),
  ));

Deno.test("ropeStoreBatched leaves q and the caches alone for rows at or past maxSeq", () =>
  check(
    { nHeads: 2, nKv: 1, headDim: 8, maxSeq: 6 },
    2,
    [5, 2],
    [[0, 0], [0, 1], [1, 0], [0, 3]],
  ));
