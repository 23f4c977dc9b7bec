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
 * The tokens of the penalty window of `context` (its last `repetitionWindow`
 * ids, or all) that are in the vocabulary, each with its penalised logit:
 * the repetition penalty (positive logits divided, negative multiplied),
 * minus the presence penalty once, minus the frequency penalty per
 * occurrence, as shaders/sample.wgsl computes them. Empty when no penalty is on.
 *
 * @example
 * ```ts
 * import { penalisedWindow } from "./host_sampler.ts";
 * import { resolveSampling } from "./sampling_options.ts";
 * const s = resolveSampling({ presencePenalty: 0.5, frequencyPenalty: 0.25 });
 * penalisedWindow(new Float32Array([2, 1, 0]), [0, 0], s); // Map { 0 => 1 } (2 - 0.5 - 2 · 0.25)
 * ```
 */
export function penalisedWindow(
  logits: ArrayLike<number>,
  context: ArrayLike<number>,
  s: ResolvedSampling,
): Map<number, number> {
  const out = new Map<number, number>();
  const rep = s.repetitionPenalty;
  if (rep === 1 && s.presencePenalty === 0 && s.frequencyPenalty === 0) return out;
  const V = logits.length;
  const end = context.length;
  const start = s.repetitionWindow > 0 && end > s.repetitionWindow ? end - s.repetitionWindow : 0;
  const counts = new Map<number, number>();
  for (let j = start; j < end; j++) {
    const tok = context[j];
    if (Number.isInteger(tok) && tok >= 0 && tok < V) counts.set(tok, (counts.get(tok) ?? 0) + 1);
  }
  for (const [tok, n] of counts) {
    const l = logits[tok];
    const v = rep === 1 ? l : l > 0 ? l / rep : l * rep;
    out.set(tok, v - s.presencePenalty - s.frequencyPenalty * n);
  }
  return out;
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
  const penalties = s.repetitionPenalty !== 1 || s.presencePenalty !== 0 ||
    s.frequencyPenalty !== 0;
  if (!(s.temperature > 0) && !penalties) {
    let best = 0; // greedy without a penalty: argmax of the logits as they are
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const work = Float64Array.from(logits);
  for (const [tok, v] of penalisedWindow(logits, context, s)) work[tok] = v;
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
