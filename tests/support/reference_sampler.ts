/**
 * A plain TypeScript reference of the GPU sampler (shaders/sample.wgsl), in
 * Hugging Face's order: repetition penalty over the context tokens (positive
 * logits divided, negative multiplied, once per distinct token; then the
 * presence and frequency penalties over the same window), temperature,
 * top-k, top-p over the renormalised top-k set. Temperature 0 is greedy:
 * argmax, lowest id on ties. Computed in f64.
 *
 * @example
 * ```ts
 * import { samplerDistribution } from "./reference_sampler.ts";
 * import { resolveSampling } from "../../src/engine/sampling_options.ts";
 * const p = samplerDistribution(new Float32Array([0, 1, 2]), [], resolveSampling({ temperature: 1, topK: 2 }));
 * // p[0] === 0; p[1] + p[2] === 1
 * ```
 * @module
 */

import type { ResolvedSampling } from "../../src/engine/sampling_options.ts";

/**
 * Logits after the penalties over the last `window` (0 = all) context
 * tokens: the repetition penalty once per distinct token, then minus
 * `presence` once and `frequency` per occurrence (OpenAI's penalties).
 */
export function penalised(
  logits: ArrayLike<number>,
  context: readonly number[],
  penalty: number,
  window = 0,
  presence = 0,
  frequency = 0,
): Float64Array {
  const out = Float64Array.from(logits);
  const start = window > 0 ? Math.max(0, context.length - window) : 0;
  const inWindow = context.slice(start).filter((tok) => tok >= 0 && tok < out.length);
  for (const tok of new Set(inWindow)) {
    const l = logits[tok];
    const n = inWindow.filter((t) => t === tok).length;
    out[tok] = (penalty === 1 ? l : l > 0 ? l / penalty : l * penalty) - presence - frequency * n;
  }
  return out;
}

/** Index of the largest value, the lowest index on ties. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * The probability of each id under the sampler's settings (0 outside the
 * kept set). Greedy settings give a one-hot distribution at the argmax.
 * Tokens of equal probability are ordered by id for top-p.
 */
export function samplerDistribution(
  logits: ArrayLike<number>,
  context: readonly number[],
  s: ResolvedSampling,
): Float64Array {
  const scores = penalised(
    logits,
    context,
    s.repetitionPenalty,
    s.repetitionWindow,
    s.presencePenalty,
    s.frequencyPenalty,
  );
  const V = scores.length;
  const probs = new Float64Array(V);
  if (s.temperature <= 0) {
    probs[argmax(scores)] = 1;
    return probs;
  }
  for (let i = 0; i < V; i++) scores[i] /= s.temperature;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) =>
    scores[b] - scores[a] || a - b
  );
  const keep = new Uint8Array(V).fill(1);
  if (s.topK > 0 && s.topK < V) {
    const kth = scores[order[s.topK - 1]];
    for (let i = 0; i < V; i++) if (scores[i] < kth) keep[i] = 0;
  }
  const max = scores[order[0]];
  let total = 0;
  for (let i = 0; i < V; i++) if (keep[i]) total += Math.exp(scores[i] - max);
  if (s.topP < 1) {
    // keep a token iff the mass of the tokens before it (descending) is < topP
    let before = 0;
    for (const i of order) {
      if (!keep[i]) continue;
      if (before >= s.topP) keep[i] = 0;
      before += Math.exp(scores[i] - max) / total;
    }
  }
  let kept = 0;
  for (let i = 0; i < V; i++) if (keep[i]) kept += Math.exp(scores[i] - max);
  for (let i = 0; i < V; i++) probs[i] = keep[i] ? Math.exp(scores[i] - max) / kept : 0;
  return probs;
}

/** The id a uniform draw `u` in [0, 1) picks: the first id whose cumulative probability exceeds u. */
export function drawFrom(probs: ArrayLike<number>, u: number): number {
  let run = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    run += probs[i];
    last = i;
    if (u < run) return i;
  }
  return last;
}

function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/**
 * The uniform in [0, 1) the GPU sampler draws for `seed` when the context
 * holds `end` tokens (its counter-based RNG, reproduced bit for bit).
 */
export function samplerUniformDraw(seed: number, end: number): number {
  const r = pcg(pcg(seed) ^ pcg((Math.imul(end, 2654435761) + 12345) >>> 0)) >>> 0;
  return (r >>> 8) / 16777216;
}
