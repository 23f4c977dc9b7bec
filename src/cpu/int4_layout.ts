/**
 * The int4 weight layout of the WebAssembly kernels, repacked at load from
 * an AutoAWQ {@link QuantizedLinear}.
 *
 * A row is cut into blocks of `block` input values (128, 64 or 32: the
 * largest that divides the quantization group; 128 for per-channel), the
 * unit in which the kernels accumulate integers and apply scales. The input
 * is padded with zero codes to a whole number of blocks. Within each 32
 * values, byte j holds value j in its low nibble and value j + 16 in its high
 * nibble, so one 16-byte load feeds two 16-lane dot products (the low nibbles
 * by a mask, the high ones by `i16x8.shr_u` and the mask) with no shuffle.
 * Per block the row keeps `s` (its scale) and `m = -s · zero`, so
 * `y = Σ_blocks s · Σ q·x + m · Σ x`.
 *
 * @module
 */

import { FormatError } from "../errors.ts";
import type { HostTensor } from "../model/weights.ts";
import type { QuantizedLinear } from "../quant/types.ts";

/** A repacked int4 weight. */
export interface Int4Packed {
  /** Output rows. */
  rows: number;
  /** Input values per row (unpadded). */
  cols: number;
  /** Values per block (32, 64 or 128). */
  block: number;
  /** Blocks per row (`ceil(cols / block)`). */
  blocks: number;
  /** Packed codes `[rows, blocks * block / 2]`. */
  codes: Uint8Array;
  /** Scale per block `[rows, blocks]`. */
  s: Float32Array;
  /** `-scale · zero` per block `[rows, blocks]`. */
  m: Float32Array;
}

/**
 * The block size for a row of `cols` values quantized in groups of
 * `groupSize` (0 = per channel), or undefined when no supported block fits
 * (a group size not a multiple of 32).
 *
 * @example
 * ```ts
 * import { int4BlockSize } from "./int4_layout.ts";
 * int4BlockSize(4096, 128); // 128
 * int4BlockSize(4096, 32); // 32
 * int4BlockSize(100, 0); // 128 (per channel)
 * int4BlockSize(4096, 48); // undefined
 * ```
 */
export function int4BlockSize(cols: number, groupSize: number): number | undefined {
  if (groupSize === 0 || groupSize >= cols) return 128;
  for (const b of [128, 64, 32]) if (groupSize % b === 0) return b;
  return undefined;
}

/**
 * Checks that `t` is a 2-D linear weight and returns its shape; an int4
 * tensor must have 4-bit codes.
 *
 * @example
 * ```ts
 * import { checkLinearTensor } from "./int4_layout.ts";
 * checkLinearTensor({ data: new Float32Array(6), shape: [2, 3], dtype: "F32" }, "w");
 * // { rows: 2, cols: 3 }
 * ```
 */
export function checkLinearTensor(t: HostTensor, label: string): { rows: number; cols: number } {
  if (t.shape.length !== 2) {
    throw new FormatError(`${label}: a linear weight must be 2-D, got shape [${t.shape}]`);
  }
  const [rows, cols] = t.shape;
  const ql = t.quantized;
  if (ql) {
    if (ql.settings.bits !== 4) {
      throw new FormatError(
        `${label}: ${ql.settings.bits}-bit weights are not supported by the CPU backend (4-bit only)`,
      );
    }
    if (ql.outFeatures !== rows || ql.inFeatures !== cols || ql.q.length !== rows * cols) {
      throw new FormatError(`${label}: quantized codes do not match shape [${rows}, ${cols}]`);
    }
  } else if (t.data.length !== rows * cols) {
    throw new FormatError(`${label}: ${t.data.length} values for shape [${rows}, ${cols}]`);
  }
  return { rows, cols };
}

/**
 * Repacks AutoAWQ codes into the kernels' layout (see the module doc).
 *
 * @example
 * ```ts
 * import { repackInt4 } from "./int4_layout.ts";
 * const p = repackInt4({
 *   outFeatures: 1, inFeatures: 2, settings: { bits: 4, groupSize: 0, zeroPoint: true },
 *   q: new Uint8Array([3, 5]), scales: new Float32Array([0.5]), zeros: new Uint8Array([8]),
 * }, "w");
 * p.codes[0]; // 3 (value 0 low, value 16 — padding — high)
 * p.m[0]; // -4
 * ```
 */
export function repackInt4(ql: QuantizedLinear, label: string): Int4Packed {
  const { outFeatures: rows, inFeatures: cols } = ql;
  const block = int4BlockSize(cols, ql.settings.groupSize);
  if (block === undefined) {
    throw new FormatError(
      `${label}: group size ${ql.settings.groupSize} is not a multiple of 32`,
    );
  }
  const group = ql.settings.groupSize || cols;
  const nGroups = Math.ceil(cols / group);
  const blocks = Math.ceil(cols / block);
  const rowBytes = (blocks * block) / 2;
  const codes = new Uint8Array(rows * rowBytes);
  const s = new Float32Array(rows * blocks);
  const m = new Float32Array(rows * blocks);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    const dst = r * rowBytes;
    for (let k = 0; k < cols; k++) {
      const c = ql.q[src + k];
      const j = k >> 5;
      const lane = k & 31;
      const at = dst + j * 16 + (lane & 15);
      codes[at] |= lane < 16 ? c : c << 4;
    }
    for (let b = 0; b < blocks; b++) {
      const g = r * nGroups + Math.floor((b * block) / group);
      s[r * blocks + b] = ql.scales[g];
      m[r * blocks + b] = -ql.scales[g] * ql.zeros[g];
    }
  }
  return { rows, cols, block, blocks, codes, s, m };
}
