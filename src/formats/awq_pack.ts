/**
 * Packing of a {@link QuantizedLinear} into the AutoAWQ checkpoint tensors
 * (`qweight`, `qzeros`, `scales`) and back, in the two layouts AutoAWQ writes.
 *
 * **GEMM** (`version: "gemm"`, what vLLM/transformers/TGI/SGLang read), W [out, in]:
 * - `qweight` int32 `[in, out / 8]`: word `[k, j]` holds the codes of the 8
 *   output columns `8j .. 8j + 7` of input row `k`; nibble slot `i`
 *   (bits `4i .. 4i + 3`) holds column `8j + ORDER[i]`,
 *   `ORDER = [0, 2, 4, 6, 1, 3, 5, 7]`;
 * - `qzeros` int32 `[in / g, out / 8]`, packed the same way;
 * - `scales` f16 `[in / g, out]`.
 *
 * **GEMV** (`version: "gemv"`, AutoAWQ's `WQLinear_GEMV`):
 * - `qweight` int32 `[out, in / 8]`, plain order: slot `i` of word `[n, j]`
 *   holds input column `8j + i`;
 * - `qzeros` int32 `[out, Z]`, slot `i` of word `[n, c]` holds group `8c + i`
 *   (0 past the last group);
 * - `scales` f16 `[out, 8Z]` (0 past the last group);
 * - `Z = ceil(nGroups / 8)` rounded up to a multiple of 1 (g >= 128), 2
 *   (g = 64) or 4 (g = 32), AutoAWQ's `calculate_zeros_width`; other group
 *   sizes (and per-channel) use a multiple of 1 (AutoAWQ has no GEMV kernel
 *   for them).
 *
 * Bits: AutoAWQ defines only 4-bit. 3-bit codes use exactly the 4-bit layout
 * (a nibble per code, values 0..7) and the config says `bits: 3`. 8-bit is this
 * project's extension: 4 codes per int32 (a byte each, slot `i` = bits
 * `8i .. 8i + 7`), plain order in both layouts, so "8" becomes "4" in every
 * shape above. Other tools will not load 3-bit or 8-bit checkpoints.
 *
 * Per-channel quantization (group size 0 here, `group_size: -1` in the
 * config) has one group per row: `qzeros`/`scales` have a single group row
 * (GEMM) or column (GEMV).
 *
 * Packing requires the shapes the format can hold (`out % 8 == 0` for GEMM,
 * `in % 8 == 0` for GEMV, `in % g == 0`); {@link padQuantized} extends a
 * weight to such a shape with codes equal to the zero point (dequantizing to
 * 0), which the checkpoint writer records as its own extension.
 *
 * @module
 */

import { FormatError } from "../errors.ts";
import { groupCount } from "../quant/quantizer.ts";
import type { QuantizedLinear, QuantSettings } from "../quant/types.ts";
import { f16ToF32, f32ToF16 } from "./half.ts";

/** AutoAWQ's GEMM nibble order: slot i holds output column 8j + AWQ_ORDER[i]. */
export const AWQ_ORDER: readonly number[] = Object.freeze([0, 2, 4, 6, 1, 3, 5, 7]);

/** The two AutoAWQ tensor layouts. */
export type AwqLayout = "gemm" | "gemv";

/** One packed tensor: row-major data and its 2-D shape. */
export interface PackedTensor<T> {
  /** Values (int32 codes, or f16 bit patterns for scales). */
  data: T;
  /** `[rows, cols]`. */
  shape: [number, number];
}

/** The three tensors of one quantized linear in a checkpoint. */
export interface PackedAwq {
  /** Packed codes (int32). */
  qweight: PackedTensor<Int32Array>;
  /** Packed zero points (int32). */
  qzeros: PackedTensor<Int32Array>;
  /** Scales as f16 bit patterns. */
  scales: PackedTensor<Uint16Array>;
}

/**
 * Codes per int32 word: 8 for 3- and 4-bit (a nibble each), 4 for 8-bit.
 *
 * @example
 * ```ts
 * import { codesPerWord } from "./awq_pack.ts";
 * [codesPerWord(3), codesPerWord(4), codesPerWord(8)]; // [8, 8, 4]
 * ```
 */
export function codesPerWord(bits: number): 8 | 4 {
  if (bits === 3 || bits === 4) return 8;
  if (bits === 8) return 4;
  throw new RangeError(`bits must be 3, 4 or 8, got ${bits}`);
}

/** Slot order within a word: AutoAWQ's interleave for GEMM 3/4-bit, plain otherwise. */
function slotOrder(layout: AwqLayout, bits: number): readonly number[] {
  if (layout === "gemm" && bits !== 8) return AWQ_ORDER;
  return Array.from({ length: codesPerWord(bits) }, (_, i) => i);
}

/**
 * AutoAWQ's GEMV zero-point width (`calculate_zeros_width`): words per row of
 * `qzeros`; `scales` has `width * codesPerWord(bits)` columns.
 *
 * @example
 * ```ts
 * import { gemvZerosWidth } from "./awq_pack.ts";
 * [gemvZerosWidth(4096, 128, 4), gemvZerosWidth(4096, 64, 4), gemvZerosWidth(64, 32, 4)];
 * // [4, 8, 4]
 * ```
 */
export function gemvZerosWidth(inF: number, groupSize: number, bits: number): number {
  const pack = codesPerWord(bits);
  const nGroups = groupCount(inF, groupSize);
  const multiplier = groupSize >= 128 ? 1 : groupSize === 64 ? 2 : groupSize === 32 ? 4 : 1;
  return Math.ceil(Math.ceil(nGroups / pack) / multiplier) * multiplier;
}

/**
 * The shapes of `qweight`, `qzeros` and `scales` for a linear of this size
 * (which must be packable: see {@link checkPackable}).
 *
 * @example
 * ```ts
 * import { awqTensorShapes } from "./awq_pack.ts";
 * const s = awqTensorShapes(64, 256, { bits: 4, groupSize: 128, zeroPoint: true }, "gemm");
 * s.qweight; // [256, 8]
 * ```
 */
export function awqTensorShapes(
  outF: number,
  inF: number,
  s: QuantSettings,
  layout: AwqLayout,
): { qweight: [number, number]; qzeros: [number, number]; scales: [number, number] } {
  const pack = codesPerWord(s.bits);
  const nGroups = groupCount(inF, s.groupSize);
  if (layout === "gemm") {
    return {
      qweight: [inF, outF / pack],
      qzeros: [nGroups, outF / pack],
      scales: [nGroups, outF],
    };
  }
  const z = gemvZerosWidth(inF, s.groupSize, s.bits);
  return { qweight: [outF, inF / pack], qzeros: [outF, z], scales: [outF, z * pack] };
}

/**
 * Why a linear of this size cannot be packed as is (undefined when it can):
 * GEMM needs `out % pack == 0`, GEMV `in % pack == 0`, both `in % g == 0`.
 *
 * @example
 * ```ts
 * import { checkPackable } from "./awq_pack.ts";
 * checkPackable(172, 64, { bits: 4, groupSize: 64, zeroPoint: true }, "gemm");
 * // "out_features 172 is not a multiple of 8"
 * ```
 */
export function checkPackable(
  outF: number,
  inF: number,
  s: QuantSettings,
  layout: AwqLayout,
): string | undefined {
  const pack = codesPerWord(s.bits);
  if (layout === "gemm" && outF % pack !== 0) {
    return `out_features ${outF} is not a multiple of ${pack}`;
  }
  if (layout === "gemv" && inF % pack !== 0) {
    return `in_features ${inF} is not a multiple of ${pack}`;
  }
  if (s.groupSize > 0 && inF % s.groupSize !== 0) {
    return `in_features ${inF} is not a multiple of the group size ${s.groupSize}`;
  }
  return undefined;
}

/**
 * The smallest `[out, in]` at or above the given size that `layout` can hold
 * for these settings (equal to the input when no padding is needed).
 *
 * @example
 * ```ts
 * import { paddedShape } from "./awq_pack.ts";
 * paddedShape(172, 60, { bits: 4, groupSize: 32, zeroPoint: true }, "gemm"); // [176, 64]
 * ```
 */
export function paddedShape(
  outF: number,
  inF: number,
  s: QuantSettings,
  layout: AwqLayout,
): [number, number] {
  const pack = codesPerWord(s.bits);
  const up = (x: number, m: number) => Math.ceil(x / m) * m;
  const g = s.groupSize;
  if (layout === "gemm") return [up(outF, pack), g > 0 ? up(inF, g) : inF];
  const m = g > 0 ? lcm(g, pack) : pack;
  return [outF, up(inF, m)];
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a / gcd(a, b)) * b;
}

/**
 * Extends `ql` to `[outP, inP]` (at least its size). New input columns join
 * the row's last group (or new groups) and get codes equal to that group's
 * zero point; new rows and new groups get zero point 0, scale 0 and code 0.
 * Every added weight dequantizes to exactly 0. With per-channel quantization
 * the one group simply becomes longer.
 *
 * @example
 * ```ts
 * import { padQuantized } from "./awq_pack.ts";
 * import { quantizeLinear } from "../quant/quantizer.ts";
 * const ql = quantizeLinear(new Float32Array(6), 2, 3, { bits: 4, groupSize: 2, zeroPoint: true });
 * padQuantized(ql, 8, 4).q.length; // 32
 * ```
 */
export function padQuantized(ql: QuantizedLinear, outP: number, inP: number): QuantizedLinear {
  const { outFeatures: outF, inFeatures: inF, settings } = ql;
  if (outP < outF || inP < inF) {
    throw new RangeError(`cannot pad [${outF}, ${inF}] down to [${outP}, ${inP}]`);
  }
  if (outP === outF && inP === inF) return ql;
  const g = settings.groupSize;
  const nG = groupCount(inF, g);
  const nGP = groupCount(inP, g);
  const gl = g === 0 ? inF : g;
  const q = new Uint8Array(outP * inP);
  const scales = new Float32Array(outP * nGP);
  const zeros = new Uint8Array(outP * nGP);
  for (let r = 0; r < outF; r++) {
    for (let gi = 0; gi < nG; gi++) {
      scales[r * nGP + gi] = ql.scales[r * nG + gi];
      zeros[r * nGP + gi] = ql.zeros[r * nG + gi];
    }
    q.set(ql.q.subarray(r * inF, (r + 1) * inF), r * inP);
    for (let k = inF; k < inP; k++) {
      const gi = g === 0 ? 0 : Math.floor(k / gl);
      q[r * inP + k] = zeros[r * nGP + gi];
    }
  }
  return { outFeatures: outP, inFeatures: inP, settings: { ...settings }, q, scales, zeros };
}

/**
 * The inverse of {@link padQuantized}: the top-left `[outF, inF]` part.
 *
 * @example
 * ```ts
 * import { padQuantized, sliceQuantized } from "./awq_pack.ts";
 * import { quantizeLinear } from "../quant/quantizer.ts";
 * const ql = quantizeLinear(new Float32Array(6), 2, 3, { bits: 4, groupSize: 2, zeroPoint: true });
 * sliceQuantized(padQuantized(ql, 8, 4), 2, 3).q.length; // 6
 * ```
 */
export function sliceQuantized(ql: QuantizedLinear, outF: number, inF: number): QuantizedLinear {
  const { outFeatures: outP, inFeatures: inP, settings } = ql;
  if (outF > outP || inF > inP) {
    throw new RangeError(`cannot slice [${outP}, ${inP}] up to [${outF}, ${inF}]`);
  }
  if (outF === outP && inF === inP) return ql;
  const g = settings.groupSize;
  const nGP = groupCount(inP, g);
  const nG = groupCount(inF, g);
  const q = new Uint8Array(outF * inF);
  const scales = new Float32Array(outF * nG);
  const zeros = new Uint8Array(outF * nG);
  for (let r = 0; r < outF; r++) {
    q.set(ql.q.subarray(r * inP, r * inP + inF), r * inF);
    for (let gi = 0; gi < nG; gi++) {
      scales[r * nG + gi] = ql.scales[r * nGP + gi];
      zeros[r * nG + gi] = ql.zeros[r * nGP + gi];
    }
  }
  return { outFeatures: outF, inFeatures: inF, settings: { ...settings }, q, scales, zeros };
}

/** Packs `codes(row, slotIndex)` of `rows x words*pack` into words. */
function packWords(
  rows: number,
  words: number,
  pack: number,
  order: readonly number[],
  code: (row: number, col: number) => number,
): Int32Array {
  const slotBits = 32 / pack;
  const out = new Int32Array(rows * words);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < words; j++) {
      let w = 0;
      for (let i = 0; i < pack; i++) w |= code(r, pack * j + order[i]) << (slotBits * i);
      out[r * words + j] = w;
    }
  }
  return out;
}

/** Unpacks words into `set(row, col, value)` calls. */
function unpackWords(
  data: Int32Array,
  rows: number,
  words: number,
  pack: number,
  order: readonly number[],
  set: (row: number, col: number, value: number) => void,
): void {
  const slotBits = 32 / pack;
  const mask = (1 << slotBits) - 1;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < words; j++) {
      const w = data[r * words + j];
      for (let i = 0; i < pack; i++) set(r, pack * j + order[i], (w >>> (slotBits * i)) & mask);
    }
  }
}

/**
 * Packs a quantized linear into AutoAWQ tensors. Throws RangeError when the
 * shape cannot be held (pad first with {@link padQuantized}).
 *
 * @example
 * ```ts
 * import { packAwq } from "./awq_pack.ts";
 * import { quantizeLinear } from "../quant/quantizer.ts";
 * const s = { bits: 4, groupSize: 4, zeroPoint: true } as const;
 * const p = packAwq(quantizeLinear(new Float32Array(8 * 4), 8, 4, s), "gemm");
 * p.qweight.shape; // [4, 1]
 * ```
 */
export function packAwq(ql: QuantizedLinear, layout: AwqLayout): PackedAwq {
  const { outFeatures: outF, inFeatures: inF, settings: s } = ql;
  const why = checkPackable(outF, inF, s, layout);
  if (why) throw new RangeError(`cannot pack a [${outF}, ${inF}] weight as AWQ ${layout}: ${why}`);
  const pack = codesPerWord(s.bits);
  const order = slotOrder(layout, s.bits);
  const nG = groupCount(inF, s.groupSize);
  const shapes = awqTensorShapes(outF, inF, s, layout);
  const scales16 = f32ToF16(ql.scales); // [out, nG]
  if (layout === "gemm") {
    const qweight = packWords(inF, outF / pack, pack, order, (k, n) => ql.q[n * inF + k]);
    const qzeros = packWords(nG, outF / pack, pack, order, (gi, n) => ql.zeros[n * nG + gi]);
    const scales = new Uint16Array(nG * outF);
    for (let n = 0; n < outF; n++) {
      for (let gi = 0; gi < nG; gi++) scales[gi * outF + n] = scales16[n * nG + gi];
    }
    return {
      qweight: { data: qweight, shape: shapes.qweight },
      qzeros: { data: qzeros, shape: shapes.qzeros },
      scales: { data: scales, shape: shapes.scales },
    };
  }
  const z = shapes.qzeros[1];
  const qweight = packWords(outF, inF / pack, pack, order, (n, k) => ql.q[n * inF + k]);
  const qzeros = packWords(
    outF,
    z,
    pack,
    order,
    (n, gi) => (gi < nG ? ql.zeros[n * nG + gi] : 0),
  );
  const scales = new Uint16Array(outF * z * pack);
  for (let n = 0; n < outF; n++) {
    for (let gi = 0; gi < nG; gi++) scales[n * z * pack + gi] = scales16[n * nG + gi];
  }
  return {
    qweight: { data: qweight, shape: shapes.qweight },
    qzeros: { data: qzeros, shape: shapes.qzeros },
    scales: { data: scales, shape: shapes.scales },
  };
}

/**
 * Unpacks AutoAWQ tensors of a `[outF, inF]` linear. Throws
 * {@link FormatError} (prefixed with `name`) when a tensor's shape is not
 * what the settings imply or a code or zero point is out of range for `bits`.
 *
 * @example
 * ```ts
 * import { packAwq, unpackAwq } from "./awq_pack.ts";
 * import { quantizeLinear } from "../quant/quantizer.ts";
 * const s = { bits: 4, groupSize: 8, zeroPoint: true } as const;
 * const ql = quantizeLinear(new Float32Array(4 * 8).fill(1), 4, 8, s);
 * unpackAwq(packAwq(ql, "gemv"), 4, 8, s, "gemv").q; // equal to ql.q
 * ```
 */
export function unpackAwq(
  p: PackedAwq,
  outF: number,
  inF: number,
  s: QuantSettings,
  layout: AwqLayout,
  name = "weight",
): QuantizedLinear {
  const why = checkPackable(outF, inF, s, layout);
  if (why) throw new FormatError(`${name}: cannot hold a [${outF}, ${inF}] weight: ${why}`);
  const shapes = awqTensorShapes(outF, inF, s, layout);
  for (const key of ["qweight", "qzeros", "scales"] as const) {
    const got = p[key].shape;
    const want = shapes[key];
    if (got.length !== 2 || got[0] !== want[0] || got[1] !== want[1]) {
      throw new FormatError(
        `${name}.${key}: shape [${got}], expected [${want}] for ${layout} ` +
          `[${outF}, ${inF}] ${s.bits}-bit group ${s.groupSize || "per-channel"}`,
      );
    }
    if (p[key].data.length !== want[0] * want[1]) {
      throw new FormatError(`${name}.${key}: ${p[key].data.length} values for shape [${want}]`);
    }
  }
  const pack = codesPerWord(s.bits);
  const order = slotOrder(layout, s.bits);
  const nG = groupCount(inF, s.groupSize);
  const maxCode = (1 << s.bits) - 1;
  const q = new Uint8Array(outF * inF);
  const zeros = new Uint8Array(outF * nG);
  const scales = new Float32Array(outF * nG);
  const check = (key: string, v: number) => {
    if (v > maxCode) {
      throw new FormatError(`${name}.${key}: value ${v} out of range for ${s.bits}-bit codes`);
    }
    return v;
  };
  const f32 = f16ToF32(p.scales.data);
  if (layout === "gemm") {
    unpackWords(p.qweight.data, inF, outF / pack, pack, order, (k, n, v) => {
      q[n * inF + k] = check("qweight", v);
    });
    unpackWords(p.qzeros.data, nG, outF / pack, pack, order, (gi, n, v) => {
      zeros[n * nG + gi] = check("qzeros", v);
    });
    for (let n = 0; n < outF; n++) {
      for (let gi = 0; gi < nG; gi++) scales[n * nG + gi] = f32[gi * outF + n];
    }
  } else {
    const z = shapes.qzeros[1];
    unpackWords(p.qweight.data, outF, inF / pack, pack, order, (n, k, v) => {
      q[n * inF + k] = check("qweight", v);
    });
    unpackWords(p.qzeros.data, outF, z, pack, order, (n, gi, v) => {
      if (gi < nG) zeros[n * nG + gi] = check("qzeros", v);
    });
    for (let n = 0; n < outF; n++) {
      for (let gi = 0; gi < nG; gi++) scales[n * nG + gi] = f32[n * z * pack + gi];
    }
  }
  return { outFeatures: outF, inFeatures: inF, settings: { ...s }, q, scales, zeros };
}
