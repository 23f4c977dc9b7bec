/**
 * The sampler of shaders/sample.wgsl on the host, for the CPU backend: the
 * same steps in the same order (repetition penalty over the context, argmax
 * with the lowest id on ties for greedy, temperature, top-k, top-p, then a
 * draw in id order from the kept mass) and the same counter-based RNG keyed
 * by (seed, context length), so a seed picks the same ids on both backends
 * when their logits agree. Computed in f64 (the GPU in f32).
 *
 * @example
 * ```ts
 * import { sampleLogits } from "./host_sampler.ts";
 * import { resolveSampling } from "./sampling_options.ts";
 * const logits = new Float32Array([0.1, 2, 0.5]);
 * sampleLogits(logits, [1], resolveSampling()); // 1 (greedy)
 * sampleLogits(logits, [1], resolveSampling({ temperature: 1, seed: 3 })); // a seeded draw
 * ```
 * @module
 */

import type { ResolvedSampling } from "./sampling_options.ts";

function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/**
 * The uniform in [0, 1) the sampler draws for `seed` when the context holds
 * `end` tokens (bit for bit the GPU's).
 *
 * @example
 * ```ts
 * import { samplerDraw } from "./host_sampler.ts";
 * const u = samplerDraw(42, 5); // 0 <= u < 1
 * ```
 */
export function samplerDraw(seed: number, end: number): number {
  const r = pcg(pcg(seed) ^ pcg((Math.imul(end, 2654435761) + 12345) >>> 0)) >>> 0;
  return (r >>> 8) / 16777216;
}

/**
 * Picks the next id from one row of `logits` given the `context` (every
 * token so far, prompt included; its length is the draw's counter).
 */
export function sampleLogits(
  logits: ArrayLike<number>,
  context: ArrayLike<number>,
  s: ResolvedSampling,
): number {
  const V = logits.length;
  const end = context.length;
  if (!(s.temperature > 0) && s.repetitionPenalty === 1) {
    let best = 0; // greedy without a penalty: argmax of the logits as they are
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const work = Float64Array.from(logits);
  if (s.repetitionPenalty !== 1) {
    const start = s.repetitionWindow > 0 && end > s.repetitionWindow ? end - s.repetitionWindow : 0;
    for (let j = start; j < end; j++) {
      const tok = context[j];
      if (tok >= 0 && tok < V) {
        const l = logits[tok];
        work[tok] = l > 0 ? l / s.repetitionPenalty : l * s.repetitionPenalty;
      }
    }
  }
  let argmax = 0;
  for (let i = 1; i < V; i++) if (work[i] > work[argmax]) argmax = i;
  if (!(s.temperature > 0)) return argmax;

  // z_i = (work_i - max) / T; thresholds on z keep every tie, like the GPU's bisection.
  const mx = work[argmax];
  const invT = 1 / s.temperature;
  const z = work;
  for (let i = 0; i < V; i++) z[i] = (work[i] - mx) * invT;
  let tau = -Infinity;
  const needSort = (s.topK > 0 && s.topK < V) || s.topP < 1;
  const sorted = needSort ? Float64Array.from(z).sort().reverse() : undefined;
  if (sorted && s.topK > 0 && s.topK < V) tau = sorted[s.topK - 1];
  if (sorted && s.topP < 1) {
    let kept = 0;
    for (const v of sorted) {
      if (v < tau) break;
      kept += Math.exp(v);
    }
    const wanted = s.topP * kept;
    // The largest threshold whose kept mass still reaches `wanted` (ties stay together).
    let run = 0;
    for (let i = 0; i < sorted.length && sorted[i] >= tau; i++) {
      run += Math.exp(sorted[i]);
      const next = sorted[i + 1];
      if (run >= wanted && (next === undefined || next < sorted[i])) {
        tau = sorted[i];
        break;
      }
    }
  }
  let total = 0;
  for (let i = 0; i < V; i++) if (z[i] >= tau) total += Math.exp(z[i]);
  const u = samplerDraw(s.seed, end) * total;
  let run = 0;
  for (let i = 0; i < V; i++) {
    if (z[i] < tau) continue;
    run += Math.exp(z[i]);
    if (u < run) return i;
  }
  return argmax;
}
