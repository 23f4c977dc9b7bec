/**
 * Int8 activations for the int4 matmuls (llama.cpp's Q8 way): a vector is
 * cut into blocks of `block` values; each block keeps one f32 scale
 * `d = amax / 127` and int8 codes `round(x * 127 / amax)` (ties to even,
 * computed in f32 exactly as the WebAssembly kernel does). The int4 kernels
 * then multiply integers and apply `d` once per block.
 *
 * This module is the definition both backends follow: the TypeScript kernels
 * use {@link roundTripInt8} as the reference of the WebAssembly int8 path.
 *
 * @module
 */

/** One vector quantized to int8 per block. */
export interface Int8Activations {
  /** Codes in [-127, 127], one per value. */
  q: Int8Array;
  /** One scale per block (`amax / 127`, 0 for an all-zero block). */
  d: Float32Array;
}

/**
 * Quantizes `x` to int8 per block of `block` values (the last block may be
 * shorter).
 *
 * @example
 * ```ts
 * import { quantizeInt8 } from "./activation_quant.ts";
 * const { q, d } = quantizeInt8(new Float32Array([1, -0.5, 0, 0.25]), 4);
 * // q = [127, -64, 0, 32], d = [1 / 127]
 * ```
 */
export function quantizeInt8(x: Float32Array, block: number): Int8Activations {
  const n = x.length;
  const nBlocks = Math.ceil(n / block);
  const q = new Int8Array(n);
  const d = new Float32Array(nBlocks);
  for (let b = 0; b < nBlocks; b++) {
    const end = Math.min(n, (b + 1) * block);
    let amax = 0;
    for (let i = b * block; i < end; i++) amax = Math.max(amax, Math.abs(x[i]));
    const inv = amax === 0 ? 0 : Math.fround(127 / amax);
    d[b] = Math.fround(amax / 127);
    for (let i = b * block; i < end; i++) {
      const v = roundTiesToEven(Math.fround(x[i] * inv));
      q[i] = Math.max(-127, Math.min(127, v));
    }
  }
  return { q, d };
}

/**
 * What an int8 kernel effectively multiplies: `x` quantized per block and
 * dequantized again (`q * d`).
 *
 * @example
 * ```ts
 * import { roundTripInt8 } from "./activation_quant.ts";
 * roundTripInt8(new Float32Array([1, 0.3]), 2); // ≈ [1, 0.2992]
 * ```
 */
export function roundTripInt8(x: Float32Array, block: number): Float32Array {
  const { q, d } = quantizeInt8(x, block);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = q[i] * d[Math.floor(i / block)];
  return out;
}

/** Rounds to the nearest integer, ties to even (like `f32x4.nearest`). */
function roundTiesToEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
