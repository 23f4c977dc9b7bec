import assert from "node:assert/strict";
import { AwqEdgeError } from "../src/errors.ts";
import {
  attention,
  logSoftmaxNll,
  matmul,
  rmsnorm,
  ropeRotateHalf,
  siluMul,
} from "../src/model/reference_ops.ts";

function assertClose(actual: ArrayLike<number>, expected: number[], tol = 1e-6) {
  assert.equal(actual.length, expected.length, "length");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `index ${i}: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

const f32 = (xs: number[]) => new Float32Array(xs);

Deno.test("rmsnorm() of [3, 4] with unit weight divides by sqrt(12.5)", () => {
  const r = Math.sqrt(12.5);
  assertClose(rmsnorm(f32([3, 4]), f32([1, 1]), 0), [3 / r, 4 / r]);
});

Deno.test("rmsnorm() adds eps inside the root and scales by the weight", () => {
  // mean(x^2) = 12.5, + eps 3.5 = 16 -> scale 1/4.
  assertClose(rmsnorm(f32([3, 4]), f32([2, 10]), 3.5), [1.5, 10]);
});

Deno.test("rmsnorm() normalises each row on its own", () => {
  assertClose(rmsnorm(f32([3, 4, 0, 5]), f32([1, 1]), 0), [
    3 / Math.sqrt(12.5),
    4 / Math.sqrt(12.5),
    0,
    Math.sqrt(2),
  ]);
});

Deno.test("matmul() computes x · W^T with W stored [out, in]", () => {
  // W = [[1, 2], [3, 4], [5, 6]]; rows x = [1, 1] and [2, -1].
  const y = matmul(f32([1, 1, 2, -1]), f32([1, 2, 3, 4, 5, 6]), 2);
  assertClose(y, [3, 7, 11, 0, 2, 4]);
});

Deno.test("matmul() adds the bias to every row", () => {
  const y = matmul(f32([1, 1, 2, -1]), f32([1, 2, 3, 4, 5, 6]), 2, f32([10, 20, 30]));
  assertClose(y, [13, 27, 41, 10, 22, 34]);
});

Deno.test("matmul() rejects a weight whose size is not a multiple of the input width", () => {
  assert.throws(() => matmul(f32([1, 1]), f32([1, 2, 3]), 2), AwqEdgeError);
});

Deno.test("ropeRotateHalf() at position 0 is the identity", () => {
  const x = [1, 2, 3, 4, 5, 6, 7, 8];
  assertClose(ropeRotateHalf(f32(x), [0], 4, 10000), x);
});

Deno.test("ropeRotateHalf() at position 1 rotates pair (i, i + h/2) by theta^(-2i/h)", () => {
  // headDim 4, theta 100: pair 0 = (x0, x2) turns by 1 rad, pair 1 = (x1, x3) by 0.1 rad.
  const [c0, s0, c1, s1] = [Math.cos(1), Math.sin(1), Math.cos(0.1), Math.sin(0.1)];
  const y = ropeRotateHalf(f32([1, 2, 3, 4]), [1], 4, 100);
  assertClose(y, [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 1 * s0 + 3 * c0, 2 * s1 + 4 * c1]);
});

Deno.test("ropeRotateHalf() rotates every head of a row alike and uses each row's position", () => {
  // Two heads of size 2 (one pair each, freq 1); rows at positions 2 and 0.
  const y = ropeRotateHalf(f32([1, 0, 0, 1, 1, 0, 0, 1]), [2, 0], 2, 10000);
  const [c, s] = [Math.cos(2), Math.sin(2)];
  assertClose(y, [c, s, -s, c, 1, 0, 0, 1]);
});

Deno.test("ropeRotateHalf() can work in place", () => {
  const x = f32([1, 2, 3, 4]);
  const expected = Array.from(ropeRotateHalf(x, [3], 4, 10000));
  ropeRotateHalf(x, [3], 4, 10000, x);
  assertClose(x, expected);
});

Deno.test("attention() with a single key returns that key's value", () => {
  const heads = { numHeads: 1, numKvHeads: 1, headDim: 2 };
  assertClose(attention(f32([1, 2]), f32([3, 4]), f32([5, 6]), [0], heads), [5, 6]);
});

Deno.test("attention() averages values whose keys score equally", () => {
  const heads = { numHeads: 1, numKvHeads: 1, headDim: 2 };
  const y = attention(f32([1, 0]), f32([0, 1, 0, 2]), f32([2, 4, 6, 8]), [1], heads);
  assertClose(y, [4, 6]);
});

Deno.test("attention() weights keys by softmax(q·k / sqrt(headDim))", () => {
  // headDim 4 -> scale 1/2; scores 0 and ln 3 -> weights 1/4, 3/4.
  const heads = { numHeads: 1, numKvHeads: 1, headDim: 4 };
  const q = f32([2 * Math.log(3), 0, 0, 0]);
  const k = f32([0, 0, 0, 0, 1, 0, 0, 0]);
  const v = f32([4, 0, 0, 0, 0, 4, 0, 0]);
  assertClose(attention(q, k, v, [1], heads), [1, 3, 0, 0], 1e-6);
});

Deno.test("attention() is causal: a query never sees positions after its own", () => {
  const heads = { numHeads: 1, numKvHeads: 1, headDim: 1 };
  // Row 0 at position 0 sees only v0; row 1 at position 1 sees v0 and v1 equally (k = 0).
  const y = attention(f32([1, 1]), f32([0, 0]), f32([10, 20]), [0, 1], heads);
  assertClose(y, [10, 15]);
});

Deno.test("attention() maps query heads to kv heads in groups (GQA)", () => {
  // 4 query heads, 2 kv heads of size 1, one position: heads 0-1 read kv 0, 2-3 read kv 1.
  const heads = { numHeads: 4, numKvHeads: 2, headDim: 1 };
  const y = attention(f32([1, 1, 1, 1]), f32([0, 0]), f32([7, 9]), [0], heads);
  assertClose(y, [7, 7, 9, 9]);
});

Deno.test("attention() rejects a position past the cache", () => {
  const heads = { numHeads: 1, numKvHeads: 1, headDim: 1 };
  assert.throws(() => attention(f32([1]), f32([0]), f32([1]), [1], heads), AwqEdgeError);
});

Deno.test("siluMul() computes silu(gate) * up", () => {
  const y = siluMul(f32([0, 1, -2]), f32([5, 2, 3]));
  assertClose(y, [0, 2 / (1 + Math.exp(-1)), (3 * -2) / (1 + Math.exp(2))]);
});

Deno.test("logSoftmaxNll() of uniform logits is ln(vocab)", () => {
  assertClose(logSoftmaxNll(new Float32Array(2 * 7), [0, 6], 7), [Math.log(7), Math.log(7)]);
});

Deno.test("logSoftmaxNll() is -log of the target's softmax probability", () => {
  // softmax([0, ln 3]) = [1/4, 3/4]; large logits check stability.
  assertClose(logSoftmaxNll(f32([0, Math.log(3)]), [1], 2), [Math.log(4 / 3)]);
  assertClose(logSoftmaxNll(f32([1000, 1000 + Math.log(3)]), [0], 2), [Math.log(4)], 1e-4);
});

Deno.test("logSoftmaxNll() rejects a target outside the vocabulary", () => {
  assert.throws(() => logSoftmaxNll(new Float32Array(3), [3], 3), AwqEdgeError);
});
