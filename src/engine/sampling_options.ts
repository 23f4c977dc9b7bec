/**
 * Sampling settings, validated, and their packing into the GPU sampler's
 * uniform block (see shaders/sample.wgsl).
 *
 * @example
 * ```ts
 * import { resolveSampling } from "./sampling_options.ts";
 * const s = resolveSampling({ temperature: 0.8, topK: 40 });
 * console.log(s.topP); // 1
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { f32, u32, type UniformField } from "../gpu/uniforms.ts";

/** How the next token is chosen. Defaults: greedy. */
export interface SamplingOptions {
  /** 0 (default) is greedy; otherwise logits are divided by it. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). */
  topP?: number;
  /** Divide positive / multiply negative logits of tokens already in the context (1 = off). */
  repetitionPenalty?: number;
  /** How many recent context tokens the penalties look at (0 = all). */
  repetitionWindow?: number;
  /**
   * OpenAI's presence penalty: subtracted once from the logit of every
   * token in the penalty window (0 = off; -2..2).
   */
  presencePenalty?: number;
  /**
   * OpenAI's frequency penalty: subtracted from a token's logit once per
   * occurrence in the penalty window (0 = off; -2..2).
   */
  frequencyPenalty?: number;
  /** Random seed (default 0): the same seed gives the same text. */
  seed?: number;
}

/** {@link SamplingOptions} with every field set. */
export type ResolvedSampling = Required<SamplingOptions>;

function check(ok: boolean, field: string, value: unknown, rule: string): void {
  if (!ok) throw new RequestError(`${field} must be ${rule} (got ${value})`);
}

/** Fills defaults and rejects out-of-range values with a RequestError naming the field. */
export function resolveSampling(o: SamplingOptions = {}): ResolvedSampling {
  const r: ResolvedSampling = {
    temperature: o.temperature ?? 0,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    repetitionPenalty: o.repetitionPenalty ?? 1,
    repetitionWindow: o.repetitionWindow ?? 0,
    presencePenalty: o.presencePenalty ?? 0,
    frequencyPenalty: o.frequencyPenalty ?? 0,
    seed: o.seed ?? 0,
  };
  check(Number.isFinite(r.temperature) && r.temperature >= 0, "temperature", r.temperature, ">= 0");
  check(Number.isInteger(r.topK) && r.topK >= 0, "top_k", r.topK, "an integer >= 0");
  check(Number.isFinite(r.topP) && r.topP > 0 && r.topP <= 1, "top_p", r.topP, "in (0, 1]");
  check(
    Number.isFinite(r.repetitionPenalty) && r.repetitionPenalty > 0,
    "repetition_penalty",
    r.repetitionPenalty,
    "> 0",
  );
  check(
    Number.isInteger(r.repetitionWindow) && r.repetitionWindow >= 0,
    "repetition_window",
    r.repetitionWindow,
    "an integer >= 0",
  );
  for (
    const [field, v] of [
      ["presence_penalty", r.presencePenalty],
      ["frequency_penalty", r.frequencyPenalty],
    ] as const
  ) {
    check(Number.isFinite(v) && v >= -2 && v <= 2, field, v, "in [-2, 2]");
  }
  check(Number.isInteger(r.seed) && r.seed >= 0, "seed", r.seed, "an integer >= 0");
  return r;
}

/** The sampler's uniform fields, in shaders/sample.wgsl's `Params` order. */
export function samplerUniform(
  s: ResolvedSampling,
  vocab: number,
  maxSeq: number,
  eosIds: readonly number[],
): UniformField[] {
  const eos = [...eosIds.slice(0, 4)];
  while (eos.length < 4) eos.push(0xffffffff);
  return [
    u32(vocab),
    u32(s.topK),
    u32(s.seed),
    u32(s.repetitionWindow),
    f32(s.temperature),
    f32(s.topP),
    f32(s.repetitionPenalty),
    u32(maxSeq),
    f32(s.presencePenalty),
    f32(s.frequencyPenalty),
    u32(0),
    u32(0),
    ...eos.map(u32),
  ];
}
