/**
 * TsKernels, the TypeScript reference of the CPU backend, against the
 * reference ops of src/model/reference_ops.ts.
 */

import assert from "node:assert/strict";
import { TsKernels } from "../src/cpu/ts_kernels.ts";
import { roundTripInt8 } from "../src/cpu/activation_quant.ts";
import { FormatError } from "../src/errors.ts";
import * as ref from "../src/model/reference_ops.ts";
import { quantizedTensor } from "../src/model/weights.ts";
import { dequantizeLinear } from "../src/quant/quantizer.ts";
import {
  assertClose,
  randomDenseTensor,
  randomFloats,
  randomInt4Tensor,
  randomQuantized,
  rng,
} from "./support/cpu_inputs.ts";

Deno.test("TsKernels.matmul of an f32 linear with bias and accumulate matches the reference", () => {
  const r = rng(1);
  const k = new TsKernels();
  const t = randomDenseTensor(r, 7, 13);
  const w = k.linear(t, "w");
  assert.equal(w.kind, "f32");
  const xs = randomFloats(r, 3 * 13);
  const bias = randomFloats(r, 7);
  const x = k.vector(xs);
  const y = k.vector(new Float32Array(3 * 7).fill(1));
  k.matmul(w, x, y, 3, { bias: k.vector(bias), accumulate: true });
  const want = ref.matmul(xs, t.data, 13, bias).map((v) => v + 1);
  assertClose(k.f32(y, 21), want, 1e-6, 1e-6, "y");
  k.destroy();
});

Deno.test("TsKernels.matmul of an int4 linear is exact on the codes (f32) and on int8 activations", () => {
  const r = rng(2);
  const ql = randomQuantized(r, 9, 100, 32);
  const t = quantizedTensor(ql, dequantizeLinear);
  const xs = randomFloats(r, 2 * 100);
  for (const activations of ["f32", "int8"] as const) {
    const k = new TsKernels({ activations });
    const w = k.linear(t, "w");
    assert.equal(w.kind, "int4");
    const x = k.vector(xs);
    const y = k.alloc(2 * 9 * 4);
    k.matmul(w, x, y, 2);
    const xin = activations === "f32" ? xs : new Float32Array([
      ...roundTripInt8(xs.subarray(0, 100), 32),
      ...roundTripInt8(xs.subarray(100), 32),
    ]);
    assertClose(k.f32(y, 18), ref.matmul(xin, dequantizeLinear(ql), 100), 1e-6, 1e-6, activations);
    k.destroy();
  }
});

Deno.test("TsKernels.linear rejects 3-bit weights naming the tensor", () => {
  const ql = randomQuantized(rng(3), 2, 32, 32);
  ql.settings = { ...ql.settings, bits: 3 };
  const k = new TsKernels();
  assert.throws(
    () => k.linear(quantizedTensor(ql, dequantizeLinear), "layers.0.wq"),
    (e: unknown) => e instanceof FormatError && /layers\.0\.wq.*3-bit/.test(e.message),
  );
  k.destroy();
});

Deno.test("TsKernels.embed copies dequantized rows and rejects bad ids", () => {
  const r = rng(4);
  const t = randomInt4Tensor(r, 10, 64, 32);
  const k = new TsKernels();
  const table = k.linear(t, "embed");
  const out = k.alloc(2 * 64 * 4);
  k.embed(table, [3, 9], out);
  assert.deepEqual(k.f32(out, 64), t.data.subarray(3 * 64, 4 * 64));
  assert.deepEqual(k.f32(out + 256, 64), t.data.subarray(9 * 64, 10 * 64));
  assert.throws(() => k.embed(table, [10], out), /embed: token id 10/);
  k.destroy();
});

Deno.test("TsKernels rmsnorm, rope, siluMul match the reference ops", () => {
  const r = rng(5);
  const k = new TsKernels();
  const xs = randomFloats(r, 3 * 16);
  const ws = randomFloats(r, 16);
  const out = k.alloc(3 * 16 * 4);
  k.rmsnorm(k.vector(xs), k.vector(ws), out, 3, 16, 1e-5);
  assertClose(k.f32(out, 48), ref.rmsnorm(xs, ws, 1e-5), 1e-6, 1e-6, "rmsnorm");

  const shape = { nHeads: 4, nKv: 2, headDim: 8 };
  const qs = randomFloats(r, 3 * 32);
  const ks = randomFloats(r, 3 * 16);
  const q = k.vector(qs);
  const kk = k.vector(ks);
  k.rope(q, kk, 3, 5, shape, 10000);
  assertClose(k.f32(q, 96), ref.ropeRotateHalf(qs, [5, 6, 7], 8, 10000), 1e-6, 1e-6, "rope q");
  assertClose(k.f32(kk, 48), ref.ropeRotateHalf(ks, [5, 6, 7], 8, 10000), 1e-6, 1e-6, "rope k");

  const g = randomFloats(r, 33, -6, 6);
  const u = randomFloats(r, 33);
  const gp = k.vector(g);
  k.siluMul(gp, k.vector(u), 33);
  assertClose(k.f32(gp, 33), ref.siluMul(g, u), 1e-6, 1e-6, "siluMul");
  k.destroy();
});

Deno.test("TsKernels.attention reads the first pos0 + T cache rows", () => {
  const r = rng(6);
  const k = new TsKernels();
  const shape = { nHeads: 4, nKv: 2, headDim: 8 };
  const maxSeq = 10;
  const kc = randomFloats(r, maxSeq * 16);
  const vc = randomFloats(r, maxSeq * 16);
  const qs = randomFloats(r, 3 * 32);
  const out = k.alloc(3 * 32 * 4);
  k.attention(k.vector(qs), k.vector(kc), k.vector(vc), out, 3, 4, shape);
  const want = ref.attention(qs, kc.subarray(0, 7 * 16), vc.subarray(0, 7 * 16), [4, 5, 6], {
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
  });
  assertClose(k.f32(out, 96), want, 1e-6, 1e-6, "attention");
  k.destroy();
});
