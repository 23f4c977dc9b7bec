/**
 * KV caches in either element type for the kernel tests: upload f32 values as
 * f32 or f16 (two per u32), read them back as f32, and the f16 rounding the
 * reference applies to what an f16 cache holds.
 *
 * @example
 * ```ts ignore
 * const k = uploadCache(h, data, "f16");
 * const back = await readCache(h, k, data.length, "f16"); // equals roundKv(data, "f16")
 * ```
 * @module
 */

import { f16ToF32, f32ToF16 } from "../../src/formats/half.ts";
import type { KvDType } from "../../src/gpu/shader_source.ts";
import type { KernelHarness } from "./seeded.ts";

/** Both KV cache element types, f32 first. */
export const KV_DTYPES: readonly KvDType[] = ["f32", "f16"];

/** `data` as an f16 cache stores it (f32: unchanged). */
export function roundKv(data: Float32Array, kv: KvDType): Float32Array {
  return kv === "f32" ? data : f16ToF32(f32ToF16(data));
}

/** Uploads `data` as a cache of element type `kv`. */
export function uploadCache(h: KernelHarness, data: Float32Array, kv: KvDType): GPUBuffer {
  if (kv === "f32") return h.f32(data);
  const half = new Uint16Array(Math.ceil(data.length / 2) * 2);
  half.set(f32ToF16(data));
  return h.pool.upload(half, "test f16 cache");
}

/** Reads `n` values of a cache of element type `kv` as f32. */
export async function readCache(
  h: KernelHarness,
  buffer: GPUBuffer,
  n: number,
  kv: KvDType,
): Promise<Float32Array> {
  if (kv === "f32") return await h.readF32(buffer, n);
  const words = await h.readU32(buffer, Math.ceil(n / 2));
  return f16ToF32(new Uint16Array(words.buffer, 0, n));
}
