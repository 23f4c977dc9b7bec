/**
 * Seeded inputs and a small GPU harness for the kernel-by-kernel tests
 * (`tests/kernels_*.test.ts`): a mulberry32 PRNG, random arrays, a
 * tolerance comparison that names the worst element, and helpers that
 * upload arrays, run one dispatch and read results back.
 *
 * @example
 * ```ts
 * import { mulberry32, randomFloats } from "./seeded.ts";
 * const rng = mulberry32(7);
 * const x = randomFloats(rng, 5, -1, 1); // the same five values for seed 7
 * ```
 * @module
 */

import assert from "node:assert/strict";
import { BufferPool } from "../../src/gpu/buffer_pool.ts";
import { CommandBatch, type Dispatch } from "../../src/gpu/command_batch.ts";
import { acquireGpu, type GpuContext } from "../../src/gpu/device.ts";
import { seededRandom } from "../../src/quant/calibration.ts";
import { WebGpuKernels } from "../../src/gpu/kernels.ts";
import { readBuffer } from "../../src/gpu/readback.ts";

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1) (the calibration sampler's). */
export const mulberry32: (seed: number) => () => number = seededRandom;

/** `n` floats uniform in [lo, hi). */
export function randomFloats(rng: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng();
  return out;
}

/** `n` integers uniform in [0, bound). */
export function randomInts(rng: () => number, n: number, bound: number): number[] {
  return Array.from({ length: n }, () => Math.floor(rng() * bound));
}

/**
 * Asserts `|actual[i] - expected[i]| <= abs + rel * |expected[i]|` for every
 * i, reporting the worst element. Also asserts the expected values are not
 * all zero, so a kernel that writes nothing cannot pass.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { abs: number; rel: number },
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = -1;
  let worstExcess = 0;
  let nonzero = false;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] !== 0) nonzero = true;
    const excess = Math.abs(actual[i] - expected[i]) - (tol.abs + tol.rel * Math.abs(expected[i]));
    if (!(excess <= worstExcess)) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  assert.ok(nonzero, `${what}: expected values are all zero (the comparison would be trivial)`);
  assert.ok(
    worst < 0,
    `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
      `(tolerance ${tol.abs} + ${tol.rel}·|expected|)`,
  );
}

/** A device, a buffer pool and a kernel set, released together. */
export interface KernelHarness {
  /** The device. */
  gpu: GpuContext;
  /** Storage buffers for the test. */
  pool: BufferPool;
  /** The kernels under test. */
  kernels: WebGpuKernels;
  /** Uploads f32 values to a fresh storage buffer. */
  f32(data: ArrayLike<number>): GPUBuffer;
  /** Uploads u32 values to a fresh storage buffer. */
  u32(data: ArrayLike<number>): GPUBuffer;
  /** Runs dispatches in one batch. */
  run(...ds: Dispatch[]): void;
  /** Reads `n` f32 values back. */
  readF32(buffer: GPUBuffer, n: number): Promise<Float32Array>;
  /** Reads `n` u32 values back. */
  readU32(buffer: GPUBuffer, n: number): Promise<Uint32Array>;
}

/** Runs `fn` with a fresh device and kernel set, releasing them afterwards. */
export async function withKernels(fn: (h: KernelHarness) => Promise<void>): Promise<void> {
  const gpu = await acquireGpu();
  const pool = new BufferPool(gpu);
  const kernels = new WebGpuKernels(gpu);
  const h: KernelHarness = {
    gpu,
    pool,
    kernels,
    f32: (data) => pool.upload(Float32Array.from(data), "test f32"),
    u32: (data) => pool.upload(Uint32Array.from(data), "test u32"),
    run: (...ds) => new CommandBatch(gpu).runAll(ds).submit(),
    readF32: async (b, n) => new Float32Array(await readBuffer(gpu, b, 0, n * 4)),
    readU32: async (b, n) => new Uint32Array(await readBuffer(gpu, b, 0, n * 4)),
  };
  try {
    await fn(h);
    gpu.check();
  } finally {
    kernels.destroy();
    pool.destroy();
    gpu.destroy();
  }
}
