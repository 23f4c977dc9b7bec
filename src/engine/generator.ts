/**
 * Text generation on either backend: the prompt is prefilled and the first
 * id sampled, then decode steps (forward + sample) run in groups whose ids
 * come back together (on WebGPU, one submit and one readback per group).
 * Stops at EOS, at a stop string, at maxTokens, or when the context is full.
 *
 * @example
 * ```ts ignore
 * const gen = new Generator(model, tokenizer);
 * for await (const chunk of gen.generate("Once upon a time", { maxTokens: 40 })) {
 *   Deno.stdout.writeSync(new TextEncoder().encode(chunk.text));
 * }
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import type { GpuLlama } from "../model/gpu_llama.ts";
import { StreamingDecoder, type TokenByteSource } from "../tokenizer/streaming_decoder.ts";
import type { TextTokenizer } from "../tokenizer/types.ts";
import { asInferenceModel } from "./gpu_inference_model.ts";
import {
  checkPromptFits,
  type InferenceModel,
  NO_TOKEN,
  type SequenceDecoder,
} from "./inference_model.ts";
import { resolveSampling, type SamplingOptions } from "./sampling_options.ts";

/** Options for one generation. */
export interface GenerateOptions extends SamplingOptions {
  /** Most new tokens (default 128). */
  maxTokens?: number;
  /** Stop (and drop the stop text) when any of these strings appears. */
  stop?: string[];
  /** Decode steps per GPU submit / readback (default 16 on WebGPU, 1 on wasm). */
  tokensPerReadback?: number;
  /** Aborts generation between readbacks. */
  signal?: AbortSignal;
}

/** A piece of generated output. */
export interface GenerateChunk {
  /** New text since the previous chunk. */
  text: string;
  /** New token ids since the previous chunk. */
  tokenIds: number[];
}

/** Why generation ended. */
export type FinishReason = "stop" | "length";

/** Totals for a finished generation. */
export interface GenerateResult {
  /** All generated text (stop string removed). */
  text: string;
  /** All generated ids (EOS excluded). */
  tokenIds: number[];
  /** Prompt length in tokens. */
  promptTokens: number;
  /** "stop" for EOS or a stop string, "length" for maxTokens or a full context. */
  finishReason: FinishReason;
  /** Seconds spent prefilling the prompt (to the first token). */
  prefillSeconds: number;
  /** Seconds spent after the first token. */
  decodeSeconds: number;
  /** Seconds spent waiting on readbacks (host side). */
  readbackSeconds: number;
  /** Decoded tokens per second after the first token. */
  tokensPerSecond: number;
}

/** Runs generations on one model (either backend); one at a time. */
export class Generator {
  readonly #model: InferenceModel;
  readonly #tokenizer: TextTokenizer & TokenByteSource;
  readonly #seq: SequenceDecoder;
  /** Result of the last finished generation. */
  last?: GenerateResult;

  /** Opens a sequence on `model` (a GpuLlama is wrapped). */
  constructor(model: InferenceModel | GpuLlama, tokenizer: TextTokenizer & TokenByteSource) {
    this.#model = asInferenceModel(model);
    this.#tokenizer = tokenizer;
    this.#seq = this.#model.openSequence();
  }

  /** Encodes `prompt` (with BOS) and generates from it; see {@link generateFromIds}. */
  generate(
    prompt: string,
    options: GenerateOptions = {},
  ): AsyncGenerator<GenerateChunk, GenerateResult> {
    const ids = this.#tokenizer.encode(prompt, { bos: true });
    return this.generateFromIds(ids, options);
  }

  /** Generates from prompt token ids, yielding text as it is decoded. */
  async *generateFromIds(
    promptIds: readonly number[],
    options: GenerateOptions = {},
  ): AsyncGenerator<GenerateChunk, GenerateResult> {
    const m = this.#model;
    const seq = this.#seq;
    const sampling = resolveSampling(options);
    const maxTokens = options.maxTokens ?? 128;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) {
      throw new RequestError(`max_tokens must be a positive integer (got ${maxTokens})`);
    }
    checkPromptFits(promptIds, m.maxSeq);
    // WebGPU amortizes a readback over 16 steps; on the CPU there is none, so each token streams.
    const fallback = m.backend === "wasm" ? 1 : 16;
    const perReadback = Math.max(1, Math.min(options.tokensPerReadback ?? fallback, 256));
    const stops = (options.stop ?? []).filter((s) => s.length > 0);
    const eos = new Set(this.#tokenizer.eosIds);
    const decoder = new StreamingDecoder(this.#tokenizer, promptIds[promptIds.length - 1]);

    const t0 = performance.now();
    const wait0 = seq.waitSeconds;
    let firstAt = 0;
    const ids: number[] = [];
    let text = "";
    let finish: FinishReason = "length";
    let first = true;
    let done = false;
    while (!done) {
      // The first submit is the prefill and one sampled token alone, so the
      // first token streams as early as possible and decode timing is clean.
      const out = first
        ? [await seq.prefill(promptIds, sampling, [...eos])]
        : await seq.decode(Math.min(perReadback, maxTokens - ids.length));
      if (first) firstAt = performance.now();
      first = false;
      const newIds: number[] = [];
      for (const id of out) {
        if (id === NO_TOKEN || eos.has(id)) {
          finish = "stop";
          done = true;
          break;
        }
        newIds.push(id);
      }
      let newText = newIds.map((id) => decoder.push(id)).join("");
      ids.push(...newIds);
      if (stops.length) {
        const all = text + newText;
        const hit = firstStop(all, stops, Math.max(0, text.length - maxStopLength(stops)));
        if (hit >= 0) {
          newText = all.slice(text.length, hit);
          finish = "stop";
          done = true;
        }
      }
      if (done && !stops.length) newText += decoder.flush();
      text += newText;
      if (newIds.length || newText) yield { text: newText, tokenIds: newIds };
      if (ids.length >= maxTokens) done = true;
      if (promptIds.length + ids.length >= m.maxSeq && !done) done = true;
      if (options.signal?.aborted) done = true;
    }
    const end = performance.now();
    const decodeSeconds = (end - firstAt) / 1000;
    this.last = {
      text,
      tokenIds: ids,
      promptTokens: promptIds.length,
      finishReason: finish,
      prefillSeconds: (firstAt - t0) / 1000,
      decodeSeconds,
      readbackSeconds: seq.waitSeconds - wait0,
      tokensPerSecond: ids.length > 1 && decodeSeconds > 0 ? (ids.length - 1) / decodeSeconds : 0,
    };
    return this.last;
  }

  /** Releases the sequence (sampler buffers, KV cache); not the model. */
  destroy(): void {
    this.#seq.destroy();
  }
}

function maxStopLength(stops: string[]): number {
  return Math.max(...stops.map((s) => s.length));
}

function firstStop(text: string, stops: string[], from: number): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s, from);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
