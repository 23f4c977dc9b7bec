/**
 * Uniform parameter blocks for kernels: a list of typed fields packed into a
 * 16-byte-aligned uniform buffer, in the order the WGSL struct declares them.
 *
 * @example
 * ```ts ignore
 * const params = createUniform(gpu, [u32(T), u32(K), u32(N), u32(0)]);
 * ```
 * @module
 */

import type { GpuContext } from "./device.ts";

/** One uniform field. */
export type UniformField = { u32: number } | { f32: number };

/** A u32 field. */
export function u32(value: number): UniformField {
  return { u32: value >>> 0 };
}

/** An f32 field. */
export function f32(value: number): UniformField {
  return { f32: value };
}

/** Packs `fields` (4 bytes each) into bytes padded to a multiple of 16. */
export function packUniform(fields: readonly UniformField[]): ArrayBuffer {
  const size = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(size);
  const view = new DataView(buf);
  fields.forEach((f, i) => {
    if ("u32" in f) view.setUint32(i * 4, f.u32, true);
    else view.setFloat32(i * 4, f.f32, true);
  });
  return buf;
}

/**
 * Creates a uniform buffer holding `fields`; with `storage` it can also be
 * bound as a read-only storage buffer (e.g. one element of an array the
 * batch kernels index per slot).
 */
export function createUniform(
  gpu: GpuContext,
  fields: readonly UniformField[],
  options: { storage?: boolean } = {},
): GPUBuffer {
  const data = packUniform(fields);
  const buffer = gpu.device.createBuffer({
    size: data.byteLength,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST |
      (options.storage ? GPUBufferUsage.STORAGE : 0),
  });
  gpu.device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}
