/**
 * A pool of storage buffers, so transient buffers are reused instead of
 * re-allocated, and every buffer a model owns is released together.
 *
 * @example
 * ```ts ignore
 * const pool = new BufferPool(gpu);
 * const a = pool.acquire(1024, "scratch");
 * pool.release(a);
 * const b = pool.acquire(1000, "again"); // the same GPUBuffer as a
 * pool.destroy();
 * ```
 * @module
 */

import { GpuError } from "../errors.ts";
import type { GpuContext } from "./device.ts";

/**
 * Storage buffers usable as kernel inputs/outputs, copy sources and targets,
 * and as uniform inputs (the int4 GEMV reads its input vector through a
 * uniform binding of the first 64 KiB on CPU-backed adapters). The WebGPU
 * spec's bit values (STORAGE | COPY_SRC | COPY_DST | UNIFORM), so that this
 * module loads where WebGPU is absent and the CPU backend runs.
 */
export const STORAGE_USAGE = 0x0080 | 0x0004 | 0x0008 | 0x0040;

/** Hands out storage buffers, reusing released ones of sufficient size. */
export class BufferPool {
  #gpu: GpuContext;
  #free: GPUBuffer[] = [];
  #all = new Set<GPUBuffer>();
  /** Bytes currently allocated through this pool. */
  allocatedBytes = 0;

  /** Creates an empty pool on `gpu`'s device. */
  constructor(gpu: GpuContext) {
    this.#gpu = gpu;
  }

  /**
   * Returns a storage buffer of at least `size` bytes (rounded up to 16). Throws
   * GpuError naming `label` when the size exceeds the device's binding limit.
   */
  acquire(size: number, label: string): GPUBuffer {
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    const limit = this.#gpu.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new GpuError(
        `${label}: ${bytes} bytes exceed this adapter's storage binding limit of ${limit} bytes`,
      );
    }
    const i = this.#free.findIndex((b) => b.size >= bytes && b.size <= bytes * 2);
    if (i >= 0) return this.#free.splice(i, 1)[0];
    const buffer = this.#gpu.device.createBuffer({ label, size: bytes, usage: STORAGE_USAGE });
    this.#all.add(buffer);
    this.allocatedBytes += bytes;
    return buffer;
  }

  /** Returns a buffer with `data` uploaded. */
  upload(data: ArrayBufferView, label: string): GPUBuffer {
    const buffer = this.acquire(data.byteLength, label);
    this.#gpu.device.queue.writeBuffer(
      buffer,
      0,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      Math.ceil(data.byteLength / 4) * 4,
    );
    return buffer;
  }

  /** Gives a buffer back for reuse. */
  release(buffer: GPUBuffer): void {
    if (this.#all.has(buffer)) this.#free.push(buffer);
  }

  /** Destroys every buffer the pool handed out. */
  destroy(): void {
    for (const b of this.#all) b.destroy();
    this.#all.clear();
    this.#free = [];
    this.allocatedBytes = 0;
  }
}
