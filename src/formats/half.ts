/**
 * Half-precision conversions on typed arrays: float32 <-> IEEE float16
 * (round-to-nearest-even, with infinities, NaNs and subnormals handled) and
 * bfloat16 <-> float32. Bit patterns are carried in `Uint16Array`s.
 *
 * @example
 * ```ts
 * import { f16ToF32, f32ToF16 } from "./half.ts";
 * const h = f32ToF16(new Float32Array([1, 0.5, 65504]));
 * console.log(Array.from(f16ToF32(h))); // [1, 0.5, 65504]
 * ```
 * @module
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * Converts the bits of one float32 (as an unsigned 32-bit integer) to the bits
 * of the nearest float16, rounding to nearest, ties to even. Values beyond the
 * f16 range become infinities; NaNs stay (quiet) NaNs.
 *
 * @example
 * ```ts
 * import { f32BitsToF16Bits } from "./half.ts";
 * console.log(f32BitsToF16Bits(0x3f800000).toString(16)); // "3c00" (1.0)
 * ```
 */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // Infinity, or NaN (keep the top payload bits, force quiet).
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // biased f16 exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // f16 subnormal (or zero): value = m * 2^-24 with m = full >> shift.
    const shift = 14 - e;
    if (shift > 24) return sign;
    const full = mant | 0x800000;
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) !== 0)) m++;
    return sign | m; // m may carry into the smallest normal: still correct
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // carry may give inf: correct
  return h;
}

/**
 * Converts the bits of one float16 to the bits of the exactly equal float32.
 *
 * @example
 * ```ts
 * import { f16BitsToF32Bits } from "./half.ts";
 * console.log(f16BitsToF32Bits(0x3c00).toString(16)); // "3f800000"
 * ```
 */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // Subnormal: normalise.
    let e = -1;
    do {
      e++;
      mant <<= 1;
    } while ((mant & 0x400) === 0);
    mant &= 0x3ff;
    return (sign | ((127 - 15 - e) << 23) | (mant << 13)) >>> 0;
  }
  return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
}

let f16Table: Uint32Array | undefined;

function table(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/**
 * Converts float32 values to float16 bit patterns (round-to-nearest-even).
 *
 * @example
 * ```ts
 * import { f32ToF16 } from "./half.ts";
 * console.log(f32ToF16(new Float32Array([1, -2]))); // Uint16Array [15360, 49152]
 * ```
 */
export function f32ToF16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

/**
 * Converts float16 bit patterns to float32 values (exact; NaN payloads kept).
 *
 * @example
 * ```ts
 * import { f16ToF32 } from "./half.ts";
 * console.log(f16ToF32(new Uint16Array([0x3c00, 0x0001]))); // [1, 5.960464477539063e-8]
 * ```
 */
export function f16ToF32(src: Uint16Array): Float32Array {
  const t = table();
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = t[src[i]];
  return out;
}

/**
 * Converts bfloat16 bit patterns to float32 values (exact: bf16 is the top
 * half of a float32).
 *
 * @example
 * ```ts
 * import { bf16ToF32 } from "./half.ts";
 * console.log(bf16ToF32(new Uint16Array([0x3f80]))); // Float32Array [1]
 * ```
 */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

/**
 * Converts float32 values to bfloat16 bit patterns (round-to-nearest-even;
 * NaNs stay quiet NaNs).
 *
 * @example
 * ```ts
 * import { f32ToBf16 } from "./half.ts";
 * console.log(f32ToBf16(new Float32Array([1]))); // Uint16Array [16256]
 * ```
 */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const b = bits[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) {
      out[i] = (b >>> 16) | 0x40;
    } else {
      out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/**
 * Rounds one number to the nearest float16 and back (handy for tolerances).
 *
 * @example
 * ```ts
 * import { roundToF16 } from "./half.ts";
 * console.log(roundToF16(0.1)); // 0.0999755859375
 * ```
 */
export function roundToF16(x: number): number {
  scratchF32[0] = x;
  scratchU32[0] = f16BitsToF32Bits(f32BitsToF16Bits(scratchU32[0]));
  return scratchF32[0];
}
