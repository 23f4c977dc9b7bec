/**
 * Weight matrices and vectors resident on the GPU.
 *
 * @example
 * ```ts ignore
 * const w = uploadWeight(gpu, pool, layer.wq, "f16", "layers.0.wq");
 * console.log(w.rows, w.cols, w.dtype);
 * ```
 * @module
 */

import { f32ToF16 } from "../formats/half.ts";
import type { HostTensor } from "../model/weights.ts";
import type { BufferPool } from "./buffer_pool.ts";
import type { GpuContext } from "./device.ts";
import type { WeightDType } from "./shader_source.ts";

/** A row-major [rows, cols] weight on the GPU (a 1-D vector has rows = 1). */
export interface GpuWeight {
  /** The storage buffer. */
  readonly buffer: GPUBuffer;
  /** How the kernels read it. */
  readonly dtype: WeightDType;
  /** Number of rows (output features). */
  readonly rows: number;
  /** Number of columns (input features). */
  readonly cols: number;
}

/**
 * Uploads `t` as `dtype` (f16 values are packed two per u32, low half first).
 * Tensors larger than the device's storage binding limit raise a GpuError
 * naming `label`.
 */
export function uploadWeight(
  gpu: GpuContext,
  pool: BufferPool,
  t: HostTensor,
  dtype: WeightDType,
  label: string,
): GpuWeight {
  const rows = t.shape.length === 2 ? t.shape[0] : 1;
  const cols = t.shape[t.shape.length - 1];
  let data: ArrayBufferView = t.data;
  if (dtype === "f16") {
    const half = f32ToF16(t.data);
    const padded = new Uint16Array(Math.ceil(half.length / 2) * 2);
    padded.set(half);
    data = padded;
  }
  void gpu;
  return { buffer: pool.upload(data, label), dtype, rows, cols };
}

/** Uploads a float32 vector (norm weights, biases) as a plain storage buffer. */
export function uploadVector(pool: BufferPool, t: HostTensor, label: string): GPUBuffer {
  return pool.upload(t.data, label);
}
