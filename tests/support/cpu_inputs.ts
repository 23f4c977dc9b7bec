/**
 * Seeded inputs for the CPU kernel tests: random f32/f16/int4 linear
 * weights as the loaders produce them, random vectors, and a tolerance
 * comparison that names the worst element.
 *
 * @example
 * ```ts
 * import { randomInt4Tensor, rng } from "./cpu_inputs.ts";
 * const t = randomInt4Tensor(rng(1), 8, 64, 32); // 8 x 64, groups of 32
 * ```
 * @module
 */

import assert from "node:assert/strict";
import { roundToF16 } from "../../src/formats/half.ts";
import type { HostTensor } from "../../src/model/weights.ts";
import { quantizedTensor } from "../../src/model/weights.ts";
import { seededRandom } from "../../src/quant/calibration.ts";
import { randomFloats } from "./seeded.ts";
import { dequantizeLinear } from "../../src/quant/quantizer.ts";
import type { QuantizedLinear } from "../../src/quant/types.ts";

/** mulberry32: a seeded PRNG of floats in [0, 1) (the calibration sampler's). */
export const rng: (seed: number) => () => number = seededRandom;

export { randomFloats };

/** An F32 (or F16-valued, tagged F16) linear weight. */
export function randomDenseTensor(
  r: () => number,
  rows: number,
  cols: number,
  dtype: "F32" | "F16" = "F32",
): HostTensor {
  const data = randomFloats(r, rows * cols, -0.5, 0.5);
  if (dtype === "F16") { for (let i = 0; i < data.length; i++) data[i] = roundToF16(data[i]); }
  return { data, shape: [rows, cols], dtype };
}

/** Codes and settings of a random 4-bit AWQ linear; `opts` forces edge values. */
export function randomQuantized(
  r: () => number,
  rows: number,
  cols: number,
  groupSize: number,
  opts: { maxCodes?: boolean; zeroScales?: boolean } = {},
): QuantizedLinear {
  const nGroups = groupSize === 0 ? 1 : Math.ceil(cols / groupSize);
  const q = new Uint8Array(rows * cols);
  for (let i = 0; i < q.length; i++) q[i] = opts.maxCodes ? 15 : Math.floor(r() * 16);
  const scales = new Float32Array(rows * nGroups);
  const zeros = new Uint8Array(rows * nGroups);
  for (let i = 0; i < scales.length; i++) {
    scales[i] = opts.zeroScales ? 0 : roundToF16(0.001 + 0.02 * r());
    zeros[i] = opts.maxCodes ? 0 : Math.floor(r() * 16);
  }
  return {
    outFeatures: rows,
    inFeatures: cols,
    settings: { bits: 4, groupSize, zeroPoint: true },
    q,
    scales,
    zeros,
  };
}

/** A random int4 HostTensor as the AWQ loader returns it. */
export function randomInt4Tensor(
  r: () => number,
  rows: number,
  cols: number,
  groupSize: number,
  opts: { maxCodes?: boolean; zeroScales?: boolean } = {},
): HostTensor {
  return quantizedTensor(randomQuantized(r, rows, cols, groupSize, opts), dequantizeLinear);
}

/**
 * Asserts |actual - expected| <= atol + rtol·|expected| everywhere, naming
 * the worst element.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const excess = err - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(atol ${atol}, rtol ${rtol})`,
    );
  }
}
