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

import { GpuError } from "../errors.ts";
import { f32ToF16 } from "../formats/half.ts";
import type { HostTensor } from "../model/weights.ts";
import type { BufferPool } from "./buffer_pool.ts";
import type { GpuContext } from "./device.ts";
import type { WeightDType } from "./shader_source.ts";

/** Rows [row0, row0 + rows) of a weight split across storage bindings. */
export interface WeightChunk {
  /** The chunk's storage buffer. */
  readonly buffer: GPUBuffer;
  /** Its first row. */
  readonly row0: number;
  /** Its rows. */
  readonly rows: number;
}

/** A row-major [rows, cols] weight on the GPU (a 1-D vector has rows = 1). */
export interface GpuWeight {
  /** The storage buffer (the first chunk's when split). */
  readonly buffer: GPUBuffer;
  /**
   * Present when the weight is larger than one storage binding: row chunks of
   * at most the binding limit, each a multiple of 64 rows but the last.
   */
  readonly chunks?: readonly WeightChunk[];
  /** How the kernels read it. */
  readonly dtype: WeightDType;
  /** Number of rows (output features). */
  readonly rows: number;
  /** Number of columns (input features). */
  readonly cols: number;
}

/**
 * Uploads `t` as `dtype` (f16 values are packed two per u32, low half first).
 * A tensor larger than the device's storage binding limit is split into row
 * chunks (a multiple of 64 rows each, so a chunk's outputs start at a
 * 256-byte offset); one row larger than the limit raises a GpuError naming
 * `label`.
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
  const elem = dtype === "f16" ? 2 : 4;
  const limit = gpu.limits.maxStorageBufferBindingSize;
  const encode = (values: Float32Array): ArrayBufferView => {
    if (dtype !== "f16") return values;
    const half = f32ToF16(values);
    const padded = new Uint16Array(Math.ceil(half.length / 2) * 2);
    padded.set(half);
    return padded;
  };
  if (rows * cols * elem <= limit) {
    return { buffer: pool.upload(encode(t.data), label), dtype, rows, cols };
  }
  const perChunk = Math.floor(limit / (cols * elem) / 64) * 64;
  if (perChunk < 1) {
    throw new GpuError(
      `${label}: 64 rows of ${cols} ${dtype} values exceed this adapter's storage binding ` +
        `limit of ${limit} bytes`,
    );
  }
  const chunks: WeightChunk[] = [];
  for (let row0 = 0; row0 < rows; row0 += perChunk) {
    const n = Math.min(perChunk, rows - row0);
    const values = t.data.subarray(row0 * cols, (row0 + n) * cols);
    chunks.push({ buffer: pool.upload(encode(values), `${label} rows ${row0}..`), row0, rows: n });
  }
  return { buffer: chunks[0].buffer, chunks, dtype, rows, cols };
}

/** Uploads a float32 vector (norm weights, biases) as a plain storage buffer. */
export function uploadVector(pool: BufferPool, t: HostTensor, label: string): GPUBuffer {
  return pool.upload(t.data, label);
}
