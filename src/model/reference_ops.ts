/**
 * Plain TypeScript reference implementations of the operations in a
 * Llama-family forward pass. They are the ground truth the GPU kernels are
 * tested against, and `ReferenceLlama` is built from them.
 *
 * Conventions: activations are row-major `Float32Array`s of shape
 * `[rows, width]`; linear weights are Hugging Face `[out, in]` row-major; sums
 * are accumulated in JS numbers (f64) and stored as f32. Every op returns a
 * fresh array unless an `out` array is passed (which may alias the input where
 * the op says so).
 *
 * @module
 */

import { AwqEdgeError } from "../errors.ts";

/** Shape of the attention heads (grouped-query when numKvHeads < numHeads). */
export interface HeadShape {
  /** Number of query heads. */
  numHeads: number;
  /** Number of key/value heads; must divide numHeads. */
  numKvHeads: number;
  /** Size of one head. */
  headDim: number;
}

function rowsOf(length: number, width: number, what: string): number {
  if (width <= 0 || length % width !== 0) {
    throw new AwqEdgeError(`${what}: length ${length} is not a multiple of width ${width}`);
  }
  return length / width;
}

function outArray(out: Float32Array | undefined, length: number, what: string): Float32Array {
  if (out === undefined) return new Float32Array(length);
  if (out.length !== length) {
    throw new AwqEdgeError(`${what}: out has length ${out.length}, expected ${length}`);
  }
  return out;
}

/**
 * RMSNorm of every row: `x * 1/sqrt(mean(x^2) + eps) * weight`. The row width
 * is `weight.length`. `out` may alias `x`.
 *
 * @example
 * ```ts
 * import { rmsnorm } from "./reference_ops.ts";
 * rmsnorm(new Float32Array([3, 4]), new Float32Array([1, 1]), 0);
 * // ≈ [0.8485, 1.1314]  (rms of [3, 4] is sqrt(12.5))
 * ```
 */
export function rmsnorm(
  x: Float32Array,
  weight: Float32Array,
  eps: number,
  out?: Float32Array,
): Float32Array {
  const dim = weight.length;
  const rows = rowsOf(x.length, dim, "rmsnorm");
  const y = outArray(out, x.length, "rmsnorm");
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[base + i] * x[base + i];
    const scale = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[base + i] = x[base + i] * scale * weight[i];
  }
  return y;
}

/**
 * Linear layer: `y[T, out] = x[T, in] · W[out, in]^T (+ bias[out])`. The output
 * width is `w.length / inDim`. `out` must not alias `x`.
 *
 * @example
 * ```ts
 * import { matmul } from "./reference_ops.ts";
 * // W = [[1, 2], [3, 4], [5, 6]] (out 3, in 2), x = [1, 1]
 * matmul(new Float32Array([1, 1]), new Float32Array([1, 2, 3, 4, 5, 6]), 2);
 * // [3, 7, 11]
 * ```
 */
export function matmul(
  x: Float32Array,
  w: Float32Array,
  inDim: number,
  bias?: Float32Array,
  out?: Float32Array,
): Float32Array {
  const rows = rowsOf(x.length, inDim, "matmul x");
  const outDim = rowsOf(w.length, inDim, "matmul w");
  if (bias !== undefined && bias.length !== outDim) {
    throw new AwqEdgeError(`matmul: bias has length ${bias.length}, expected ${outDim}`);
  }
  const y = outArray(out, rows * outDim, "matmul");
  for (let r = 0; r < rows; r++) {
    const xb = r * inDim;
    const yb = r * outDim;
    for (let o = 0; o < outDim; o++) {
      const wb = o * inDim;
      let acc = 0;
      for (let i = 0; i < inDim; i++) acc += x[xb + i] * w[wb + i];
      y[yb + o] = bias === undefined ? acc : acc + bias[o];
    }
  }
  return y;
}

/**
 * Hugging Face `rotate_half` RoPE applied to every head of every row.
 * Row t is at position `positions[t]`; within a head, dimension i pairs with
 * i + headDim/2 and is rotated by angle `pos * theta^(-2i/headDim)`:
 * `(a, b) -> (a cos - b sin, a sin + b cos)`. `out` may alias `x`.
 *
 * @example
 * ```ts
 * import { ropeRotateHalf } from "./reference_ops.ts";
 * // one head of size 2 at position 1: (1, 0) rotates by 1 radian
 * ropeRotateHalf(new Float32Array([1, 0]), [1], 2, 10000);
 * // ≈ [cos(1), sin(1)]
 * ```
 */
export function ropeRotateHalf(
  x: Float32Array,
  positions: readonly number[],
  headDim: number,
  theta: number,
  out?: Float32Array,
): Float32Array {
  if (headDim % 2 !== 0) throw new AwqEdgeError(`ropeRotateHalf: headDim ${headDim} is odd`);
  const rows = positions.length;
  const width = rowsOf(x.length, rows, "ropeRotateHalf");
  const numHeads = rowsOf(width, headDim, "ropeRotateHalf row");
  const y = outArray(out, x.length, "ropeRotateHalf");
  const half = headDim / 2;
  for (let t = 0; t < rows; t++) {
    const pos = positions[t];
    for (let i = 0; i < half; i++) {
      const angle = pos * Math.pow(theta, (-2 * i) / headDim);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      for (let h = 0; h < numHeads; h++) {
        const a = t * width + h * headDim + i;
        const b = a + half;
        const xa = x[a];
        const xb = x[b];
        y[a] = xa * c - xb * s;
        y[b] = xa * s + xb * c;
      }
    }
  }
  return y;
}

/**
 * Causal grouped-query attention with scale `1/sqrt(headDim)`.
 * `q` is `[T, numHeads*headDim]`; `kCache` and `vCache` are
 * `[S, numKvHeads*headDim]` indexed by position. Query row t, at position
 * `positions[t]`, attends to cache positions `0..positions[t]` inclusive;
 * query head h reads kv head `floor(h / (numHeads/numKvHeads))`.
 * Returns `[T, numHeads*headDim]`.
 *
 * @example
 * ```ts
 * import { attention } from "./reference_ops.ts";
 * // one head, one key: the output is that key's value
 * attention(
 *   new Float32Array([1, 2]), new Float32Array([3, 4]), new Float32Array([5, 6]),
 *   [0], { numHeads: 1, numKvHeads: 1, headDim: 2 },
 * ); // [5, 6]
 * ```
 */
export function attention(
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  positions: readonly number[],
  heads: HeadShape,
  out?: Float32Array,
): Float32Array {
  const { numHeads, numKvHeads, headDim } = heads;
  if (numHeads % numKvHeads !== 0) {
    throw new AwqEdgeError(`attention: ${numKvHeads} kv heads do not divide ${numHeads} heads`);
  }
  const qWidth = numHeads * headDim;
  const kvWidth = numKvHeads * headDim;
  const rows = rowsOf(q.length, qWidth, "attention q");
  if (rows !== positions.length) {
    throw new AwqEdgeError(`attention: ${rows} query rows but ${positions.length} positions`);
  }
  const cached = rowsOf(kCache.length, kvWidth, "attention kCache");
  if (vCache.length < kCache.length) {
    throw new AwqEdgeError(`attention: vCache shorter than kCache`);
  }
  const y = outArray(out, q.length, "attention");
  const group = numHeads / numKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  let maxPos = -1;
  for (const p of positions) maxPos = Math.max(maxPos, p);
  if (maxPos >= cached) {
    throw new AwqEdgeError(`attention: position ${maxPos} is past the ${cached} cached rows`);
  }
  const scores = new Float64Array(maxPos + 1);
  for (let t = 0; t < rows; t++) {
    const pos = positions[t];
    for (let h = 0; h < numHeads; h++) {
      const qb = t * qWidth + h * headDim;
      const kvOff = Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let s = 0; s <= pos; s++) {
        const kb = s * kvWidth + kvOff;
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += q[qb + i] * kCache[kb + i];
        dot *= scale;
        scores[s] = dot;
        if (dot > max) max = dot;
      }
      let sum = 0;
      for (let s = 0; s <= pos; s++) {
        scores[s] = Math.exp(scores[s] - max);
        sum += scores[s];
      }
      for (let i = 0; i < headDim; i++) {
        let acc = 0;
        for (let s = 0; s <= pos; s++) acc += scores[s] * vCache[s * kvWidth + kvOff + i];
        y[qb + i] = acc / sum;
      }
    }
  }
  return y;
}

/**
 * SwiGLU gate: `silu(gate) * up` elementwise, with `silu(g) = g / (1 + e^-g)`.
 * `out` may alias either input.
 *
 * @example
 * ```ts
 * import { siluMul } from "./reference_ops.ts";
 * siluMul(new Float32Array([0, 1]), new Float32Array([5, 2])); // ≈ [0, 1.4621]
 * ```
 */
export function siluMul(gate: Float32Array, up: Float32Array, out?: Float32Array): Float32Array {
  if (gate.length !== up.length) {
    throw new AwqEdgeError(`siluMul: gate length ${gate.length} != up length ${up.length}`);
  }
  const y = outArray(out, gate.length, "siluMul");
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    y[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
  return y;
}

/**
 * Negative log-likelihood of a target id under each row's softmax:
 * `logsumexp(logits[t]) - logits[t][targets[t]]`, computed stably in f64.
 * `logits` is `[targets.length, vocab]`.
 *
 * @example
 * ```ts
 * import { logSoftmaxNll } from "./reference_ops.ts";
 * logSoftmaxNll(new Float32Array(4), [2], 4); // [ln 4] ≈ [1.3863]
 * ```
 */
export function logSoftmaxNll(
  logits: Float32Array,
  targets: readonly number[],
  vocab: number,
): Float64Array {
  const rows = rowsOf(logits.length, vocab, "logSoftmaxNll");
  if (rows !== targets.length) {
    throw new AwqEdgeError(`logSoftmaxNll: ${rows} rows but ${targets.length} targets`);
  }
  const nll = new Float64Array(rows);
  for (let t = 0; t < rows; t++) {
    const target = targets[t];
    if (!Number.isInteger(target) || target < 0 || target >= vocab) {
      throw new AwqEdgeError(`logSoftmaxNll: target ${target} is outside [0, ${vocab})`);
    }
    const base = t * vocab;
    let max = -Infinity;
    for (let i = 0; i < vocab; i++) if (logits[base + i] > max) max = logits[base + i];
    let sum = 0;
    for (let i = 0; i < vocab; i++) sum += Math.exp(logits[base + i] - max);
    nll[t] = max + Math.log(sum) - logits[base + target];
  }
  return nll;
}
