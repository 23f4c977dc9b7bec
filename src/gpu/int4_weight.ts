/**
 * 4-bit linear weights resident on the GPU. At load, a {@link QuantizedLinear}
 * (the codes, scales and zeros the AWQ loader unpacked from AutoAWQ GEMM/GEMV
 * tensors; the file format is untouched) is repacked into the layout the
 * int4 kernels read (shaders/matmul_int4*.wgsl):
 *
 * - `codes`: u32 words, row-major `[rows, chunks * 4]` with `chunks =
 *   ceil(cols / 32)`: word `j` of a row holds the codes of input columns
 *   `8j .. 8j + 7`, column `8j + i` in bits `4i .. 4i + 3`. One `vec4<u32>`
 *   is a chunk of 32 consecutive columns, so a row is read as contiguous
 *   16-byte loads. Columns past `cols` hold code 0 (the kernels mask them).
 * - `sz`: u32 `[rows, nGroups]`, the f16 scale in the low half and the zero
 *   point (as an f16, exact for 4-bit) in the high half, so one load gives
 *   both (`unpack2x16float`).
 *
 * Several linears with the same input (q/k/v, gate/up) can be packed as one
 * weight whose rows are the concatenation, so one dispatch computes all of
 * them ({@link packInt4}). A group length must be a multiple of 32 (or 0, per
 * channel), so a 32-column chunk never straddles two groups; the last group
 * of a row may be shorter. Other bit widths and group sizes are refused by
 * {@link int4Unsupported} with the reason.
 *
 * @example
 * ```ts
 * import { packInt4 } from "./int4_weight.ts";
 * const ql = {
 *   outFeatures: 1, inFeatures: 3, settings: { bits: 4 as const, groupSize: 0, zeroPoint: true },
 *   q: new Uint8Array([1, 2, 15]), scales: new Float32Array([0.5]), zeros: new Uint8Array([8]),
 * };
 * const p = packInt4([ql], "w");
 * p.codes[0].toString(16); // "f21"
 * ```
 * @module
 */

import { GpuError } from "../errors.ts";
import { f32ToF16 } from "../formats/half.ts";
import type { QuantizedLinear } from "../quant/types.ts";
import type { BufferPool } from "./buffer_pool.ts";

/**
 * Columns per 16-byte chunk of codes.
 *
 * @example
 * ```ts
 * import { INT4_CHUNK } from "./int4_weight.ts";
 * Math.ceil(4096 / INT4_CHUNK) * 16; // 2048 bytes of codes per row of 4096
 * ```
 */
export const INT4_CHUNK = 32;

/** The host side of a repacked int4 weight (see the module doc). */
export interface PackedInt4 {
  /** Output features (rows), all parts together. */
  rows: number;
  /** Input features. */
  cols: number;
  /** Effective group length (cols for per-channel). */
  groupSize: number;
  /** Groups per row. */
  nGroups: number;
  /** Codes, `[rows, ceil(cols / 32) * 4]` u32. */
  codes: Uint32Array;
  /** f16 scale | f16 zero << 16, `[rows, nGroups]`. */
  sz: Uint32Array;
  /** Rows of each part (for a fused q/k/v: [qDim, kvDim, kvDim]). */
  parts: number[];
}

/** A repacked int4 weight on the GPU, read by the int4 matmul kernels. */
export interface GpuInt4Weight {
  /** Tells it apart from a float {@link GpuWeight}. */
  readonly dtype: "int4";
  /** Codes (see {@link PackedInt4.codes}). */
  readonly codes: GPUBuffer;
  /** Scales and zeros (see {@link PackedInt4.sz}). */
  readonly sz: GPUBuffer;
  /** Output features (rows), all parts together. */
  readonly rows: number;
  /** Input features. */
  readonly cols: number;
  /** Effective group length (cols for per-channel). */
  readonly groupSize: number;
  /** Rows of each part; one entry unless several linears were packed together. */
  readonly parts: readonly number[];
  /** Bytes resident on the device (codes + scales/zeros). */
  readonly bytes: number;
  /** Bytes the same rows would take as f16. */
  readonly f16Bytes: number;
}

/**
 * Why `ql` cannot be kept as int4 on the GPU, or undefined when it can:
 * 4-bit only (3- and 8-bit checkpoints are dequantized to f16 instead),
 * group length a multiple of 32 or per-channel.
 *
 * @example
 * ```ts
 * import { int4Unsupported } from "./int4_weight.ts";
 * const s = { bits: 8 as const, groupSize: 128, zeroPoint: true };
 * int4Unsupported({ outFeatures: 1, inFeatures: 128, settings: s,
 *   q: new Uint8Array(128), scales: new Float32Array(1), zeros: new Uint8Array(1) });
 * // "8-bit codes (the int4 kernels read 4-bit only)"
 * ```
 */
export function int4Unsupported(ql: QuantizedLinear): string | undefined {
  const { bits, groupSize } = ql.settings;
  if (bits !== 4) return `${bits}-bit codes (the int4 kernels read 4-bit only)`;
  if (groupSize !== 0 && groupSize % INT4_CHUNK !== 0) {
    return `group size ${groupSize} (the int4 kernels need a multiple of ${INT4_CHUNK} or per-channel)`;
  }
  if (ql.inFeatures < 1 || ql.outFeatures < 1) return "an empty weight";
  return undefined;
}

/** Checks one part's arrays against its shape; throws GpuError naming `label`. */
function checkConsistent(ql: QuantizedLinear, label: string): void {
  const why = int4Unsupported(ql);
  if (why) throw new GpuError(`${label}: cannot be kept as int4 on the GPU: ${why}`);
  const { outFeatures: n, inFeatures: k } = ql;
  const nGroups = ql.settings.groupSize === 0 ? 1 : Math.ceil(k / ql.settings.groupSize);
  const bad = ql.q.length !== n * k
    ? `codes have ${ql.q.length} values, expected ${n} x ${k}`
    : ql.scales.length !== n * nGroups
    ? `scales have ${ql.scales.length} values, expected ${n} x ${nGroups}`
    : ql.zeros.length !== n * nGroups
    ? `zeros have ${ql.zeros.length} values, expected ${n} x ${nGroups}`
    : undefined;
  if (bad) throw new GpuError(`${label}: inconsistent quantized tensor: ${bad}`);
}

/**
 * Repacks one or more 4-bit linears with the same input size and settings
 * into one {@link PackedInt4} whose rows are theirs, in order. Throws
 * {@link GpuError} naming `label` when a part is not 4-bit, has a group
 * length the kernels cannot read, or its arrays do not match its shape.
 */
export function packInt4(parts: readonly QuantizedLinear[], label: string): PackedInt4 {
  if (!parts.length) throw new GpuError(`${label}: nothing to pack`);
  const first = parts[0];
  for (const ql of parts) {
    checkConsistent(ql, label);
    if (
      ql.inFeatures !== first.inFeatures ||
      ql.settings.groupSize !== first.settings.groupSize
    ) {
      throw new GpuError(
        `${label}: parts packed together need the same input size and group size ` +
          `([${ql.outFeatures}, ${ql.inFeatures}] g${ql.settings.groupSize} vs ` +
          `[${first.outFeatures}, ${first.inFeatures}] g${first.settings.groupSize})`,
      );
    }
  }
  const cols = first.inFeatures;
  const groupSize = first.settings.groupSize === 0 ? cols : first.settings.groupSize;
  const nGroups = Math.ceil(cols / groupSize);
  const rows = parts.reduce((a, p) => a + p.outFeatures, 0);
  const words = Math.ceil(cols / INT4_CHUNK) * 4;
  const codes = new Uint32Array(rows * words);
  const sz = new Uint32Array(rows * nGroups);
  let r0 = 0;
  for (const ql of parts) {
    const q = ql.q;
    for (let r = 0; r < ql.outFeatures; r++) {
      const src = r * cols;
      const dst = (r0 + r) * words;
      const full = cols >> 3;
      for (let j = 0; j < full; j++) {
        const s = src + 8 * j;
        codes[dst + j] = (q[s] | (q[s + 1] << 4) | (q[s + 2] << 8) | (q[s + 3] << 12) |
          (q[s + 4] << 16) | (q[s + 5] << 20) | (q[s + 6] << 24) | (q[s + 7] << 28)) >>> 0;
      }
      if (cols & 7) {
        let w = 0;
        for (let i = 0; i < (cols & 7); i++) w |= q[src + 8 * full + i] << (4 * i);
        codes[dst + full] = w >>> 0;
      }
    }
    const scales = f32ToF16(ql.scales);
    const zeros = f32ToF16(Float32Array.from(ql.zeros));
    const off = r0 * nGroups;
    for (let i = 0; i < scales.length; i++) sz[off + i] = (scales[i] | (zeros[i] << 16)) >>> 0;
    r0 += ql.outFeatures;
  }
  return { rows, cols, groupSize, nGroups, codes, sz, parts: parts.map((p) => p.outFeatures) };
}

/**
 * Uploads a {@link PackedInt4}. The codes buffer must fit one storage
 * binding; the pool raises a GpuError naming `label` otherwise.
 *
 * @example
 * ```ts ignore
 * const w = uploadInt4(pool, packInt4([ql], "model.layers.0.mlp.down_proj"), "down");
 * console.log(w.bytes / w.f16Bytes); // about 0.27 for g128
 * ```
 */
export function uploadInt4(pool: BufferPool, packed: PackedInt4, label: string): GpuInt4Weight {
  const codes = pool.upload(packed.codes, `${label} (int4 codes)`);
  const sz = pool.upload(packed.sz, `${label} (int4 scales/zeros)`);
  return {
    dtype: "int4",
    codes,
    sz,
    rows: packed.rows,
    cols: packed.cols,
    groupSize: packed.groupSize,
    parts: packed.parts,
    bytes: packed.codes.byteLength + packed.sz.byteLength,
    f16Bytes: packed.rows * packed.cols * 2,
  };
}

/**
 * The float32 weight `[rows, cols]` a {@link PackedInt4} stands for:
 * `(code - zero) * scale` with the f16 scale and zero it stores. The
 * TypeScript reference of what the int4 kernels read.
 *
 * @example
 * ```ts
 * import { dequantizePacked, packInt4 } from "./int4_weight.ts";
 * const ql = {
 *   outFeatures: 1, inFeatures: 2, settings: { bits: 4 as const, groupSize: 0, zeroPoint: true },
 *   q: new Uint8Array([0, 15]), scales: new Float32Array([0.5]), zeros: new Uint8Array([8]),
 * };
 * dequantizePacked(packInt4([ql], "w")); // Float32Array [-4, 3.5]
 * ```
 */
export function dequantizePacked(p: PackedInt4): Float32Array {
  const out = new Float32Array(p.rows * p.cols);
  const words = Math.ceil(p.cols / INT4_CHUNK) * 4;
  const half = new Uint16Array(2);
  const f = new Float16Array(half.buffer);
  for (let r = 0; r < p.rows; r++) {
    for (let k = 0; k < p.cols; k++) {
      const code = (p.codes[r * words + (k >> 3)] >>> (4 * (k & 7))) & 15;
      const packed = p.sz[r * p.nGroups + Math.floor(k / p.groupSize)];
      half[0] = packed & 0xffff;
      half[1] = packed >>> 16;
      out[r * p.cols + k] = (code - f[1]) * f[0];
    }
  }
  return out;
}
