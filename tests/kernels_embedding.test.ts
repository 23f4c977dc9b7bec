// shaders/embedding.wgsl (entry embed): gathers rows of E; exact for f32,
// and exact against f16-rounded rows for f16 weights.

import assert from "node:assert/strict";
import { roundToF16 } from "../src/formats/half.ts";
import { uploadWeight } from "../src/gpu/gpu_weight.ts";
import { mulberry32, randomFloats, randomInts, withKernels } from "./support/seeded.ts";

function gather(
  E: Float32Array,
  dim: number,
  tokens: readonly number[],
  vocab: number,
): Float32Array {
  const out = new Float32Array(tokens.length * dim);
  tokens.forEach((tok, t) => {
    const row = Math.min(tok, vocab - 1);
    out.set(E.subarray(row * dim, (row + 1) * dim), t * dim);
  });
  return out;
}

for (const dtype of ["f32", "f16"] as const) {
  Deno.test(`embed gathers the token rows of ${dtype} embeddings exactly`, () =>
    withKernels(async (h) => {
      const rng = mulberry32(dtype === "f32" ? 1 : 2);
      const vocab = 97;
      const dim = 61; // odd: f16 rows start mid-u32
      const E = randomFloats(rng, vocab * dim, -2, 2);
      const tokens = [...randomInts(rng, 10, vocab), 0, vocab - 1, 0];
      const W = uploadWeight(
        h.gpu,
        h.pool,
        { data: E, shape: [vocab, dim], dtype: "F32" },
        dtype,
        "E",
      );
      const x = h.pool.acquire(tokens.length * dim * 4, "x");
      h.run(await h.kernels.embed(W, h.u32(tokens), x, tokens.length));
      const ref = gather(dtype === "f16" ? E.map(roundToF16) : E, dim, tokens, vocab);
      assert.deepEqual(await h.readF32(x, tokens.length * dim), ref);
    }));
}

Deno.test("embed clamps out-of-range token ids to the last row", () =>
  withKernels(async (h) => {
    const rng = mulberry32(3);
    const vocab = 13;
    const dim = 8;
    const E = randomFloats(rng, vocab * dim);
    const tokens = [vocab, 0xffffffff, 3, vocab + 100];
    const W = uploadWeight(
      h.gpu,
      h.pool,
      { data: E, shape: [vocab, dim], dtype: "F32" },
      "f32",
      "E",
    );
    const x = h.pool.acquire(tokens.length * dim * 4, "x");
    h.run(await h.kernels.embed(W, h.u32(tokens), x, tokens.length));
    const out = await h.readF32(x, tokens.length * dim);
    const last = E.subarray((vocab - 1) * dim, vocab * dim);
    assert.deepEqual(out.subarray(0, dim), last);
    assert.deepEqual(out.subarray(dim, 2 * dim), last);
    assert.deepEqual(out.subarray(2 * dim, 3 * dim), E.subarray(3 * dim, 4 * dim));
    assert.deepEqual(out.subarray(3 * dim), last);
  }));

Deno.test("embed writes only T rows of x", () =>
  withKernels(async (h) => {
    const rng = mulberry32(4);
    const vocab = 5;
    const dim = 9;
    const E = randomFloats(rng, vocab * dim);
    const W = uploadWeight(
      h.gpu,
      h.pool,
      { data: E, shape: [vocab, dim], dtype: "F32" },
      "f32",
      "E",
    );
    const x = h.f32(new Float32Array(3 * dim).fill(42));
    h.run(await h.kernels.embed(W, h.u32([4, 1, 2]), x, 2));
    const out = await h.readF32(x, 3 * dim);
    assert.deepEqual(out.subarray(0, 2 * dim), gather(E, dim, [4, 1], vocab));
    assert.deepEqual(out.subarray(2 * dim), new Float32Array(dim).fill(42));
  }));
