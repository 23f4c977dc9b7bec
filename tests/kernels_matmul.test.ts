// shaders/matmul.wgsl (gemv, gemm, gemm_reg) against reference_ops.matmul.
// Tolerance: |gpu - ref| <= 1e-5 + 1e-4·|ref| (f32 accumulation over K <= 61
// terms of O(1) values). f16 weights are compared against a reference built
// from the same f16-rounded weights, so the tolerance stays the same.

import assert from "node:assert/strict";
import { GpuError } from "../src/errors.ts";
import { roundToF16 } from "../src/formats/half.ts";
import { uploadWeight } from "../src/gpu/gpu_weight.ts";
import type { MatmulKernel } from "../src/gpu/kernels.ts";
import { matmul } from "../src/model/reference_ops.ts";
import {
  assertClose,
  type KernelHarness,
  mulberry32,
  randomFloats,
  withKernels,
} from "./support/seeded.ts";

type Entry = MatmulKernel["entry"];
const ENTRIES: Entry[] = ["gemv", "gemm", "gemm_reg", "gemv4", "gemm4", "gemv4_ux", "gemv8_ux"];
/** Entries that load x and W four at a time and need K % 4 == 0. */
const VEC4: ReadonlySet<Entry> = new Set(["gemv4", "gemm4", "gemv4_ux", "gemv8_ux"]);
/** gemv8_ux reads f16 weights 8 at a time: K % 8 == 0, f16 only. */
const only8 = (entry: Entry, K: number, dtype: "f32" | "f16") =>
  entry !== "gemv8_ux" || (K % 8 === 0 && dtype === "f16");
/** gemv4_ux reads x through a 64 KiB uniform binding: T * K <= 16384. */
const fitsUx = (entry: Entry, T: number, K: number) => entry !== "gemv4_ux" || T * K <= 16384;

/** x padded to the 64 KiB the uniform-input entry binds. */
function xBuffer(h: KernelHarness, x: Float32Array): GPUBuffer {
  const padded = new Float32Array(Math.max(x.length, 16384));
  padded.set(x);
  return h.f32(padded);
}
const TOL = { abs: 1e-5, rel: 1e-4 };

/** [T, K, N]: K not a multiple of 4, N = 1 and N past a 64-wide tile, T = 1, 3, 5, 67. */
const SHAPES: [number, number, number][] = [
  [1, 7, 1],
  [1, 61, 65],
  [3, 7, 65],
  [5, 61, 1],
  [5, 8, 3],
  [67, 61, 65],
  [67, 7, 2],
];

/** The same edge cases with K a multiple of 4, for the vec4 entries. */
const SHAPES4: [number, number, number][] = [
  [1, 8, 1],
  [1, 60, 65],
  [3, 4, 65],
  [5, 64, 1],
  [67, 60, 65],
  [67, 8, 2],
];

/** K for `entry`: as given, or rounded up to a multiple of 4 for the vec4 entries. */
function k(entry: Entry, K: number): number {
  if (entry === "gemv8_ux") return Math.ceil(K / 8) * 8;
  return VEC4.has(entry) ? Math.ceil(K / 4) * 4 : K;
}

interface Case {
  T: number;
  K: number;
  N: number;
  dtype: "f32" | "f16";
  bias?: boolean;
  accumulate?: boolean;
}

async function runCase(h: KernelHarness, entry: Entry, c: Case, seed: number): Promise<void> {
  if (!only8(entry, c.K, c.dtype)) return; // gemv8_ux: f16 with K % 8 == 0 only
  const rng = mulberry32(seed);
  const w = randomFloats(rng, c.N * c.K);
  const x = randomFloats(rng, c.T * c.K);
  const bias = c.bias ? randomFloats(rng, c.N, -2, 2) : undefined;
  const y0 = c.accumulate ? randomFloats(rng, c.T * c.N, -3, 3) : new Float32Array(c.T * c.N);
  const wRef = c.dtype === "f16" ? w.map(roundToF16) : w;
  const expected = matmul(x, wRef, c.K, bias);
  if (c.accumulate) { for (let i = 0; i < expected.length; i++) expected[i] += y0[i]; }

  const W = uploadWeight(h.gpu, h.pool, { data: w, shape: [c.N, c.K], dtype: "F32" }, c.dtype, "W");
  // y starts as y0 (random when accumulating, NaN-free zeros otherwise) plus
  // a sentinel tail that must stay untouched.
  const sentinel = 12345.5;
  const yInit = new Float32Array(c.T * c.N + 5).fill(sentinel);
  yInit.set(y0);
  const y = h.f32(yInit);
  const d = await h.kernels.matmul(W, xBuffer(h, x), y, c.T, {
    entry,
    bias: bias && h.f32(bias),
    accumulate: c.accumulate,
  });
  h.run(d);
  const out = await h.readF32(y, yInit.length);
  const what = `${entry} ${c.dtype} T=${c.T} K=${c.K} N=${c.N}` +
    `${c.bias ? " +bias" : ""}${c.accumulate ? " +accumulate" : ""}`;
  assertClose(out.subarray(0, c.T * c.N), expected, TOL, what);
  assertClose(
    out.subarray(c.T * c.N),
    new Float32Array(5).fill(sentinel),
    { abs: 0, rel: 0 },
    `${what} tail`,
  );
}

for (const entry of ENTRIES) {
  for (const dtype of ["f32", "f16"] as const) {
    Deno.test(`matmul ${entry} with ${dtype} weights matches the reference on awkward shapes`, () =>
      withKernels(async (h) => {
        let seed = 1;
        for (const [T, K, N] of VEC4.has(entry) ? SHAPES4 : SHAPES) {
          if (fitsUx(entry, T, K)) await runCase(h, entry, { T, K, N, dtype }, seed++);
        }
      }));
  }

  Deno.test(`matmul ${entry} adds the bias to every token's output`, () =>
    withKernels(async (h) => {
      await runCase(h, entry, { T: 5, K: k(entry, 61), N: 65, dtype: "f32", bias: true }, 21);
      await runCase(h, entry, { T: 1, K: k(entry, 7), N: 3, dtype: "f16", bias: true }, 22);
    }));

  Deno.test(`matmul ${entry} with accumulate adds the product to y's previous contents`, () =>
    withKernels(async (h) => {
      await runCase(h, entry, { T: 3, K: k(entry, 7), N: 65, dtype: "f32", accumulate: true }, 31);
      await runCase(h, entry, { T: 67, K: k(entry, 61), N: 5, dtype: "f16", accumulate: true }, 32);
    }));

  Deno.test(`matmul ${entry} with bias and accumulate applies both once`, () =>
    withKernels(async (h) => {
      await runCase(
        h,
        entry,
        { T: 5, K: k(entry, 61), N: 65, dtype: "f16", bias: true, accumulate: true },
        41,
      );
    }));
}

Deno.test("matmul without an entry override uses the kernel table and matches the reference", () =>
  withKernels(async (h) => {
    const rng = mulberry32(51);
    for (const [T, K] of [[1, 61], [1, 64], [67, 61], [67, 64]]) {
      const N = 65;
      const w = randomFloats(rng, N * K);
      const x = randomFloats(rng, T * K);
      const W = uploadWeight(h.gpu, h.pool, { data: w, shape: [N, K], dtype: "F32" }, "f32", "W");
      const y = h.pool.acquire(T * N * 4, "y");
      h.run(await h.kernels.matmul(W, h.f32(x), y, T));
      assertClose(await h.readF32(y, T * N), matmul(x, w, K), TOL, `table T=${T} K=${K}`);
    }
  }));

for (const entry of VEC4) {
  Deno.test(`matmul ${entry} rejects K that is not a multiple of 4`, () =>
    withKernels(async (h) => {
      const w = new Float32Array(2 * 7).fill(1);
      const W = uploadWeight(h.gpu, h.pool, { data: w, shape: [2, 7], dtype: "F32" }, "f32", "W");
      const x = h.f32(new Float32Array(7));
      const y = h.pool.acquire(8, "y");
      await assert.rejects(() => h.kernels.matmul(W, x, y, 1, { entry }), GpuError);
    }));
}
