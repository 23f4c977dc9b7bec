/**
 * The reference weight quantizer of AWQ (and of the RTN baseline): group-wise
 * integer quantization of a linear weight `W [out, in]` along its input
 * dimension, exactly as in `docs/awq.md` and AutoAWQ's `pseudo_quantize_tensor`.
 *
 * Asymmetric (zero point, the default):
 * `scale = max(max - min, 1e-5) / (2^b - 1)`,
 * `zero = clamp(-round(min / scale), 0, 2^b - 1)`,
 * `q = clamp(round(w / scale) + zero, 0, 2^b - 1)`, `w' = (q - zero) * scale`.
 *
 * Symmetric: `scale = max(absmax, 1e-5) / (2^(b-1) - 1)`,
 * `q = clamp(round(w / scale), -2^(b-1), 2^(b-1) - 1) + 2^(b-1)`,
 * `zero = 2^(b-1)`.
 *
 * The 1e-5 guard is AutoAWQ's: it clamps the range (max - min, or absmax)
 * before dividing by the number of steps, so an all-constant group gets a tiny
 * non-zero scale instead of a division by zero. `round` is round half to even,
 * like `torch.round`.
 *
 * Clipping: with `clipMax` ([out, nGroups]), the group's weights are first
 * clamped to `[-clipMax, clipMax]` (AutoAWQ's clip search applies it this way),
 * so its min and max are clamped too.
 *
 * Scales are stored as float16 in checkpoints. To make the file round trip
 * exact, `quantizeLinear` rounds each scale to the nearest f16 value *before*
 * choosing the zero point and the codes, so `scales` holds f16-representable
 * values and `dequantizeLinear` of the result equals what a loader of the
 * written checkpoint produces (in f32). `roundScalesToF16` does the same
 * rounding for a `QuantizedLinear` produced elsewhere (e.g. on the GPU);
 * it leaves this module's output unchanged. Arithmetic is float32
 * (`Math.fround`), as in a WGSL shader.
 *
 * @module
 */

import { roundToF16 } from "../formats/half.ts";
import type { QuantizedLinear, QuantSettings } from "./types.ts";

/** AutoAWQ's lower bound on a group's range before it is turned into a scale. */
export const MIN_RANGE = 1e-5;

/**
 * Round half to even, like `torch.round` (`Math.round` rounds half up).
 *
 * @example
 * ```ts
 * import { roundHalfEven } from "./quantizer.ts";
 * [roundHalfEven(0.5), roundHalfEven(1.5), roundHalfEven(-2.5)]; // [0, 2, -2]
 * ```
 */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Number of quantization groups per output row: `ceil(inF / groupSize)`, or 1
 * for `groupSize` 0 (per-channel). The last group is shorter when `inF` is not
 * a multiple of `groupSize`.
 *
 * @example
 * ```ts
 * import { groupCount } from "./quantizer.ts";
 * [groupCount(256, 128), groupCount(172, 64), groupCount(172, 0)]; // [2, 3, 1]
 * ```
 */
export function groupCount(inF: number, groupSize: number): number {
  if (!Number.isInteger(groupSize) || groupSize < 0) {
    throw new RangeError(`group size must be a non-negative integer, got ${groupSize}`);
  }
  if (groupSize === 0 || inF === 0) return inF === 0 ? 0 : 1;
  return Math.ceil(inF / groupSize);
}

/** The effective group length: `inF` for per-channel, else `groupSize`. */
function groupLength(inF: number, groupSize: number): number {
  return groupSize === 0 ? inF : groupSize;
}

function checkArgs(w: Float32Array, outF: number, inF: number, s: QuantSettings): void {
  if (s.bits !== 3 && s.bits !== 4 && s.bits !== 8) {
    throw new RangeError(`bits must be 3, 4 or 8, got ${s.bits}`);
  }
  if (w.length !== outF * inF) {
    throw new RangeError(`weight has ${w.length} values, expected ${outF} x ${inF}`);
  }
}

/**
 * Quantize `w` ([outF, inF], row-major) group-wise along the input dimension.
 * `clipMax` ([outF, nGroups]), when given, caps each group's absolute values
 * before its scale is computed. See the module doc for the exact formulas.
 *
 * @example
 * ```ts
 * import { quantizeLinear } from "./quantizer.ts";
 * const w = new Float32Array([-1, 0, 0.5, 2]);
 * const ql = quantizeLinear(w, 1, 4, { bits: 4, groupSize: 0, zeroPoint: true });
 * // scale = 3/15 = 0.2 (as f16: 0.199951171875), zero = 5, codes [0, 5, 8, 15]
 * ql.zeros[0]; // 5
 * ```
 */
export function quantizeLinear(
  w: Float32Array,
  outF: number,
  inF: number,
  s: QuantSettings,
  clipMax?: Float32Array,
): QuantizedLinear {
  checkArgs(w, outF, inF, s);
  const nGroups = groupCount(inF, s.groupSize);
  const g = groupLength(inF, s.groupSize);
  if (clipMax && clipMax.length !== outF * nGroups) {
    throw new RangeError(`clipMax has ${clipMax.length} values, expected ${outF} x ${nGroups}`);
  }
  const q = new Uint8Array(outF * inF);
  const scales = new Float32Array(outF * nGroups);
  const zeros = new Uint8Array(outF * nGroups);
  const fr = Math.fround;
  for (let r = 0; r < outF; r++) {
    for (let gi = 0; gi < nGroups; gi++) {
      const start = r * inF + gi * g;
      const end = r * inF + Math.min(inF, (gi + 1) * g);
      const cap = clipMax ? clipMax[r * nGroups + gi] : Infinity;
      const value = (k: number) => Math.min(cap, Math.max(-cap, w[k]));
      let scale: number;
      let zero: number;
      let lo: number;
      let hi: number;
      if (s.zeroPoint) {
        const maxInt = (1 << s.bits) - 1;
        let mn = Infinity;
        let mx = -Infinity;
        for (let k = start; k < end; k++) {
          const v = value(k);
          if (v < mn) mn = v;
          if (v > mx) mx = v;
        }
        scale = roundToF16(fr(Math.max(fr(mx - mn), MIN_RANGE) / maxInt));
        zero = Math.min(maxInt, Math.max(0, -roundHalfEven(fr(mn / scale))));
        lo = 0;
        hi = maxInt;
      } else {
        const half = 1 << (s.bits - 1);
        let amax = 0;
        for (let k = start; k < end; k++) amax = Math.max(amax, Math.abs(value(k)));
        scale = roundToF16(fr(Math.max(amax, MIN_RANGE) / (half - 1)));
        zero = half;
        lo = 0;
        hi = 2 * half - 1;
      }
      scales[r * nGroups + gi] = scale;
      zeros[r * nGroups + gi] = zero;
      for (let k = start; k < end; k++) {
        const c = roundHalfEven(fr(value(k) / scale)) + zero;
        q[k] = Math.min(hi, Math.max(lo, c));
      }
    }
  }
  return { outFeatures: outF, inFeatures: inF, settings: { ...s }, q, scales, zeros };
}

/**
 * Dequantize to a float32 `[out, in]` weight: `w'[n, k] = (q - zero) * scale`
 * with the stored scales (f16-representable when they come from
 * `quantizeLinear` or `roundScalesToF16`).
 *
 * @example
 * ```ts
 * import { dequantizeLinear, quantizeLinear } from "./quantizer.ts";
 * const s = { bits: 8, groupSize: 0, zeroPoint: true } as const;
 * const w = dequantizeLinear(quantizeLinear(new Float32Array([0, 1]), 1, 2, s));
 * w[1]; // ~1
 * ```
 */
export function dequantizeLinear(ql: QuantizedLinear): Float32Array {
  const { outFeatures: outF, inFeatures: inF } = ql;
  const nGroups = groupCount(inF, ql.settings.groupSize);
  const g = groupLength(inF, ql.settings.groupSize);
  const out = new Float32Array(outF * inF);
  for (let r = 0; r < outF; r++) {
    for (let k = 0; k < inF; k++) {
      const gi = r * nGroups + Math.floor(k / g);
      out[r * inF + k] = (ql.q[r * inF + k] - ql.zeros[gi]) * ql.scales[gi];
    }
  }
  return out;
}

/**
 * Quantize then dequantize (the "fake quantization" AWQ's searches measure).
 *
 * @example
 * ```ts
 * import { fakeQuantize } from "./quantizer.ts";
 * const w = fakeQuantize(new Float32Array([-1, 0, 0.5, 2]), 1, 4, {
 *   bits: 4, groupSize: 0, zeroPoint: true,
 * });
 * w[3]; // 1.99951171875 (10 * the f16 scale 0.199951171875)
 * ```
 */
export function fakeQuantize(
  w: Float32Array,
  outF: number,
  inF: number,
  s: QuantSettings,
  clipMax?: Float32Array,
): Float32Array {
  return dequantizeLinear(quantizeLinear(w, outF, inF, s, clipMax));
}

/**
 * A copy of `ql` whose scales are rounded to the nearest float16, i.e. what a
 * checkpoint stores and a loader reads back. The codes are kept as they are.
 *
 * @example
 * ```ts
 * import { roundScalesToF16 } from "./quantizer.ts";
 * const ql = roundScalesToF16({
 *   outFeatures: 1, inFeatures: 1, settings: { bits: 4, groupSize: 0, zeroPoint: true },
 *   q: new Uint8Array([1]), scales: new Float32Array([0.1]), zeros: new Uint8Array([0]),
 * });
 * ql.scales[0]; // 0.0999755859375
 * ```
 */
export function roundScalesToF16(ql: QuantizedLinear): QuantizedLinear {
  return { ...ql, scales: ql.scales.map(roundToF16) };
}
