/**
 * The WebAssembly kernels against TsKernels (same activation mode) on random
 * and edge inputs, for both instruction sets and 1 and 2 threads; and the
 * int8-activation path against the exact one.
 *
 * Tolerances: the WebAssembly kernels sum in f32 in another order than the
 * f64 reference, so results agree within 1e-5 absolute + 1e-5 relative on
 * these sizes (outputs of magnitude ≤ 10).
 */

import assert from "node:assert/strict";
import type { CpuKernels } from "../src/cpu/cpu_kernels.ts";
import { TsKernels } from "../src/cpu/ts_kernels.ts";
import { createWasmKernels, type WasmKernelsOptions } from "../src/cpu/wasm_kernels.ts";
import { detectWasmFeatures } from "../src/cpu/wasm/kernels_module.ts";
import { CHUNK_BYTES, rowsPerChunk } from "../src/cpu/wasm_tasks.ts";
import { AwqEdgeError } from "../src/errors.ts";
import type { HostTensor } from "../src/model/weights.ts";
import {
  assertClose,
  randomDenseTensor,
  randomFloats,
  randomInt4Tensor,
  rng,
} from "./support/cpu_inputs.ts";

const ATOL = 1e-5;
const RTOL = 1e-5;

interface MatmulCase {
  name: string;
  tensor: (r: () => number) => HostTensor;
  T: number;
  /** Input values (default: uniform in [-2, 2)). */
  x?: (n: number, r: () => number) => Float32Array;
}

const CASES: MatmulCase[] = [
  { name: "int4 67x100 g32 T1", tensor: (r) => randomInt4Tensor(r, 67, 100, 32), T: 1 },
  { name: "int4 130x256 g128 T3", tensor: (r) => randomInt4Tensor(r, 130, 256, 128), T: 3 },
  { name: "int4 1x300 per-channel T5", tensor: (r) => randomInt4Tensor(r, 1, 300, 0), T: 5 },
  { name: "int4 200x512 g64 T67", tensor: (r) => randomInt4Tensor(r, 200, 512, 64), T: 67 },
  { name: "int4 5x32 one group T1", tensor: (r) => randomInt4Tensor(r, 5, 32, 32), T: 1 },
  { name: "int4 9x64 g256 T2", tensor: (r) => randomInt4Tensor(r, 9, 64, 256), T: 2 },
  {
    name: "int4 zero scales",
    tensor: (r) => randomInt4Tensor(r, 70, 128, 128, { zeroScales: true }),
    T: 1,
  },
  {
    name: "int4 max codes",
    tensor: (r) => randomInt4Tensor(r, 66, 256, 128, { maxCodes: true }),
    T: 4,
  },
  {
    // every code 15 and every int8 activation ±127: the i16 block sums reach
    // ±16·15·127 = ±30480, the most a lane can hold without overflow
    name: "int4 max codes, extreme inputs",
    tensor: (r) => randomInt4Tensor(r, 8, 256, 128, { maxCodes: true }),
    T: 5,
    x: (n) => Float32Array.from({ length: n }, (_, i) => (Math.floor(i / 256) % 2 ? -3 : 3)),
  },
  {
    // groups of 48 have no int4 block: kept as exact f32 weights
    name: "int4 g48 (stored f32) T2",
    tensor: (r) => randomInt4Tensor(r, 10, 96, 48),
    T: 2,
  },
  { name: "f16 67x100 T3", tensor: (r) => randomDenseTensor(r, 67, 100, "F16"), T: 3 },
  { name: "f16 130x64 T1", tensor: (r) => randomDenseTensor(r, 130, 64, "F16"), T: 1 },
  { name: "f32 130x37 T5", tensor: (r) => randomDenseTensor(r, 130, 37, "F32"), T: 5 },
  { name: "f32 1x4 T1", tensor: (r) => randomDenseTensor(r, 1, 4, "F32"), T: 1 },
];

function runMatmul(k: CpuKernels, t: HostTensor, xs: Float32Array, T: number, bias: Float32Array) {
  const rows = t.shape[0];
  const w = k.linear(t, "w");
  const x = k.vector(xs);
  const y = k.vector(new Float32Array(T * rows).fill(0.5));
  k.matmul(w, x, y, T, { accumulate: true, bias: k.vector(bias) });
  const plain = k.alloc(T * rows * 4);
  k.matmul(w, x, plain, T);
  return { acc: k.f32(y, T * rows).slice(), plain: k.f32(plain, T * rows).slice() };
}

/**
 * matmuls() (one job of several linears, and the split fallbacks) and
 * swiglu() on awkward shapes: rows not a multiple of 4, several chunks per
 * linear, mixed kinds, more linears than one job takes.
 */
function fusedOps(k: CpuKernels): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  const run = (name: string, tensors: HostTensor[], T: number, biased: boolean) => {
    const cols = tensors[0].shape[1];
    const x = k.vector(randomFloats(rng(name.length), T * cols, -2, 2));
    const outs = tensors.map((t, i) => ({
      w: k.linear(t, `${name}.${i}`),
      y: k.alloc(T * t.shape[0] * 4),
      bias: biased ? k.vector(randomFloats(rng(i + 40), t.shape[0])) : undefined,
    }));
    k.matmuls(x, T, outs);
    outs.forEach((o, i) => out[`${name}.${i}`] = k.f32(o.y, T * o.w.rows).slice());
  };
  const r = rng(31);
  const qkv = [randomInt4Tensor(r, 130, 256, 128), randomInt4Tensor(r, 34, 256, 128)];
  qkv.push(randomInt4Tensor(r, 34, 256, 128));
  run("qkv T1", qkv, 1, true);
  run("qkv T5", qkv, 5, true);
  run("many rows", [randomInt4Tensor(r, 1001, 512, 64), randomInt4Tensor(r, 7, 512, 64)], 2, false);
  const mixed = [
    randomInt4Tensor(r, 9, 64, 32),
    randomDenseTensor(r, 5, 64, "F16"),
    randomDenseTensor(r, 6, 64, "F32"),
    randomInt4Tensor(r, 11, 64, 64),
  ];
  run("mixed kinds, four linears", mixed, 3, true);
  const swiglu = (name: string, g: HostTensor, u: HostTensor, T: number) => {
    const [n, cols] = g.shape;
    const x = k.vector(randomFloats(rng(name.length + 5), T * cols, -2, 2));
    const gate = k.alloc(T * n * 4), up = k.alloc(T * n * 4);
    k.swiglu(k.linear(g, `${name}.gate`), k.linear(u, `${name}.up`), x, gate, up, T);
    out[name] = k.f32(gate, T * n).slice();
  };
  const gate = randomInt4Tensor(r, 301, 256, 64), up = randomInt4Tensor(r, 301, 256, 64);
  swiglu("swiglu T1", gate, up, 1);
  swiglu("swiglu T6", gate, up, 6);
  swiglu(
    "swiglu many chunks",
    randomInt4Tensor(r, 1203, 128, 128),
    randomInt4Tensor(r, 1203, 128, 128),
    3,
  );
  swiglu("swiglu int4 gate, f16 up", gate, randomDenseTensor(r, 301, 256, "F16"), 2);
  return out;
}

function otherOps(k: CpuKernels): Record<string, Float32Array> {
  const xs = randomFloats(rng(11), 3 * 68, -3, 3);
  const norm = k.alloc(3 * 68 * 4);
  k.rmsnorm(k.vector(xs), k.vector(randomFloats(rng(12), 68)), norm, 3, 68, 1e-5);
  const g = k.vector(randomFloats(rng(13), 101, -20, 20));
  k.siluMul(g, k.vector(randomFloats(rng(14), 101)), 101);
  const shape = { nHeads: 8, nKv: 2, headDim: 16 };
  const q = k.vector(randomFloats(rng(15), 3 * 128));
  const kk = k.vector(randomFloats(rng(16), 3 * 32));
  k.rope(q, kk, 3, 9, shape, 10000);
  // a head size whose half is not a multiple of 4 (scalar tail), far positions
  const odd = { nHeads: 2, nKv: 1, headDim: 12 };
  const q12 = k.vector(randomFloats(rng(24), 2 * 24));
  const k12 = k.vector(randomFloats(rng(25), 2 * 12));
  k.rope(q12, k12, 2, 700, odd, 500000);
  const kc = k.vector(randomFloats(rng(17), 20 * 32, -3, 3));
  const vc = k.vector(randomFloats(rng(18), 20 * 32));
  const att = k.alloc(3 * 128 * 4);
  k.attention(q, kc, vc, att, 3, 9, shape);
  // a long context, threaded over heads
  const long = { nHeads: 32, nKv: 4, headDim: 64 };
  const lq = k.vector(randomFloats(rng(19), 2 * 32 * 64));
  const lk = k.vector(randomFloats(rng(20), 300 * 4 * 64, -1, 1));
  const lv = k.vector(randomFloats(rng(21), 300 * 4 * 64));
  const latt = k.alloc(2 * 32 * 64 * 4);
  k.attention(lq, lk, lv, latt, 2, 297, long);
  const embTable = k.linear(randomInt4Tensor(rng(22), 10, 96, 32), "embed");
  const embF16 = k.linear(randomDenseTensor(rng(23), 10, 40, "F16"), "embed16");
  const e4 = k.alloc(2 * 96 * 4), e16 = k.alloc(2 * 40 * 4);
  k.embed(embTable, [7, 2], e4);
  k.embed(embF16, [9, 0], e16);
  return {
    rmsnorm: k.f32(norm, 3 * 68).slice(),
    siluMul: k.f32(g, 101).slice(),
    ropeQ: k.f32(q, 3 * 128).slice(),
    ropeK: k.f32(kk, 3 * 32).slice(),
    ropeOddQ: k.f32(q12, 2 * 24).slice(),
    ropeOddK: k.f32(k12, 2 * 12).slice(),
    attention: k.f32(att, 3 * 128).slice(),
    attentionLong: k.f32(latt, 2 * 32 * 64).slice(),
    embedInt4: k.f32(e4, 2 * 96).slice(),
    embedF16: k.f32(e16, 2 * 40).slice(),
  };
}

for (const simd of ["relaxed", "plain"] as const) {
  for (const threads of [1, 2]) {
    for (const activations of ["int8", "f32"] as const) {
      const opts: WasmKernelsOptions = { simd, threads, activations };
      Deno.test(`WasmKernels (${simd}, ${threads} thread(s), ${activations}) match TsKernels`, async (t) => {
        const wk = await createWasmKernels(opts);
        const tk = new TsKernels({ activations });
        try {
          assert.equal(wk.threads, threads);
          assert.equal(wk.variant, simd);
          for (const c of CASES) {
            await t.step(`matmul ${c.name}`, () => {
              const r = rng(c.name.length * 31 + c.T);
              const tensor = c.tensor(r);
              const cols = tensor.shape[1];
              const xs = c.x ? c.x(c.T * cols, r) : randomFloats(r, c.T * cols, -2, 2);
              const bias = randomFloats(r, tensor.shape[0]);
              const got = runMatmul(wk, tensor, xs, c.T, bias);
              const want = runMatmul(tk, tensor, xs, c.T, bias);
              assertClose(got.acc, want.acc, ATOL, RTOL, `${c.name} (bias, accumulate)`);
              assertClose(got.plain, want.plain, ATOL, RTOL, c.name);
            });
          }
          await t.step("matmuls (fused and split) and swiglu", () => {
            const got = fusedOps(wk);
            const want = fusedOps(tk);
            assert.equal(Object.keys(got).length, 16);
            for (const name of Object.keys(want)) {
              assertClose(got[name], want[name], ATOL, RTOL, name);
            }
          });
          await t.step("rmsnorm, siluMul, rope, attention, embed", () => {
            const got = otherOps(wk);
            const want = otherOps(tk);
            for (const name of Object.keys(want)) {
              assertClose(got[name], want[name], ATOL, RTOL, name);
            }
          });
        } finally {
          wk.destroy();
          tk.destroy();
        }
      });
    }
  }
}

Deno.test("int8 activations stay within 1% relative RMS of the exact f32 path", async () => {
  const r = rng(99);
  const tensor = randomInt4Tensor(r, 256, 1024, 128);
  const xs = randomFloats(r, 2 * 1024, -2, 2);
  const bias = new Float32Array(256);
  const int8 = await createWasmKernels({ threads: 1, activations: "int8" });
  const exact = await createWasmKernels({ threads: 1, activations: "f32" });
  try {
    const a = runMatmul(int8, tensor, xs, 2, bias).plain;
    const b = runMatmul(exact, tensor, xs, 2, bias).plain;
    let num = 0, den = 0;
    for (let i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) ** 2;
      den += b[i] ** 2;
    }
    const rel = Math.sqrt(num / den);
    assert.ok(rel > 0 && rel < 0.01, `relative RMS error ${rel}`);
  } finally {
    int8.destroy();
    exact.destroy();
  }
});

Deno.test("sharedMemory: false falls back to one thread with a note", async () => {
  const k = await createWasmKernels({ threads: 2, sharedMemory: false });
  try {
    assert.equal(k.threads, 1);
    assert.match(k.notes.join("\n"), /1 thread/);
    const w = k.linear(randomInt4Tensor(rng(1), 3, 64, 32), "w");
    const x = k.vector(new Float32Array(64).fill(1));
    const y = k.alloc(12);
    k.matmul(w, x, y, 1);
    assert.ok(k.f32(y, 3).every(Number.isFinite));
  } finally {
    k.destroy();
  }
});

Deno.test("WasmKernels.alloc past 4 GiB is a clear error naming the buffer", async () => {
  const k = await createWasmKernels({ threads: 1 });
  try {
    assert.throws(
      () => k.alloc(5 * 2 ** 30, "KV cache"),
      (e: unknown) => e instanceof AwqEdgeError && /KV cache needs 5120 MiB/.test(e.message),
    );
  } finally {
    k.destroy();
  }
});

Deno.test("a runtime without relaxed SIMD gets the plain kernels, with a note", async () => {
  const k = await createWasmKernels({
    threads: 1,
    features: { simd: true, relaxed: false, sharedMemory: true },
  });
  try {
    assert.equal(k.variant, "plain");
    assert.match(k.notes.join("\n"), /no relaxed SIMD/);
    assert.match(k.description, /^wasm simd128, /);
  } finally {
    k.destroy();
  }
});

Deno.test("a runtime without SharedArrayBuffer runs one thread, with a note", async () => {
  const k = await createWasmKernels({
    threads: 2,
    features: { simd: true, relaxed: true, sharedMemory: false },
  });
  try {
    assert.equal(k.threads, 1);
    assert.match(k.notes.join("\n"), /no SharedArrayBuffer in this runtime: 1 thread/);
  } finally {
    k.destroy();
  }
});

Deno.test("a runtime without SIMD is a clear error", async () => {
  await assert.rejects(
    () => createWasmKernels({ features: { simd: false, relaxed: false, sharedMemory: true } }),
    (e: unknown) => e instanceof AwqEdgeError && /no WebAssembly SIMD/.test(e.message),
  );
});

Deno.test("detectWasmFeatures finds SIMD, relaxed SIMD and shared memory in this Deno", () => {
  assert.deepEqual(detectWasmFeatures(), { simd: true, relaxed: true, sharedMemory: true });
});

Deno.test("rowsPerChunk aims at CHUNK_BYTES in whole 4-row tiles, two chunks per thread at least", () => {
  assert.equal(rowsPerChunk(5632, 1152, 2), 140); // 2048-wide int4 rows: ~158 KiB chunks
  assert.equal(rowsPerChunk(32000, 4096, 2), 40); // fp16 lm_head rows
  assert.equal(rowsPerChunk(256, 1152, 2), 64); // k/v: 4 chunks, not 2
  assert.equal(rowsPerChunk(3, 64, 2), 4); // fewer rows than a tile
  assert.equal(rowsPerChunk(100, CHUNK_BYTES * 2, 1), 4); // rows larger than a chunk
  for (const [rows, bytes, threads] of [[1001, 256, 2], [11008, 2048, 8], [7, 4096, 1]]) {
    const r = rowsPerChunk(rows, bytes, threads);
    assert.equal(r % 4, 0);
    assert.ok(r * bytes <= Math.max(CHUNK_BYTES, 4 * bytes));
  }
});
