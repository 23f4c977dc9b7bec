/**
 * The tensor element types our safetensors reader and writer handle, and
 * their sizes in bytes.
 *
 * @example
 * ```ts
 * import { DTYPE_SIZES, isSafetensorsDtype } from "./dtype.ts";
 * if (isSafetensorsDtype("F16")) console.log(DTYPE_SIZES.F16); // 2
 * ```
 * @module
 */

/** A safetensors dtype name we support. */
export type SafetensorsDtype = "F32" | "F16" | "BF16" | "I32" | "I8" | "U8";

/**
 * Bytes per element of each supported dtype.
 *
 * @example
 * ```ts
 * import { DTYPE_SIZES } from "./dtype.ts";
 * console.log(DTYPE_SIZES.BF16); // 2
 * ```
 */
export const DTYPE_SIZES: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I8: 1,
  U8: 1,
});

/**
 * Whether `s` names a supported dtype.
 *
 * @example
 * ```ts
 * import { isSafetensorsDtype } from "./dtype.ts";
 * console.log(isSafetensorsDtype("F64")); // false
 * ```
 */
export function isSafetensorsDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZES, s);
}

/**
 * Number of elements of a tensor of the given shape (1 for a scalar `[]`).
 *
 * @example
 * ```ts
 * import { numElements } from "./dtype.ts";
 * console.log(numElements([2, 3])); // 6
 * ```
 */
export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
