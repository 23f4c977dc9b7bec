/**
 * Batched decoding for the server: {@link BatchRunner} keeps N KV slots
 * ({@link DecodeSlots}: a DecodeBatch on WebGPU, CPU caches on wasm) and one
 * loop that, per iteration, gives newly arrived requests free slots and
 * prefills up to `prefillTokensPerTurn` prompt tokens of them (whole prompts
 * when nothing decodes; a request whose prompt is done samples its first
 * token), then records `tokensPerTurn` decode steps for every active request
 * as ONE forward pass per step over all of them, submits everything, reads
 * all ids back at once and hands each request its text. So a long prompt
 * arriving delays the streams already running by one prompt chunk per
 * iteration, not by its whole prefill.
 * Finished or cancelled requests leave the batch at the next iteration and
 * waiting ones take their slots, so every active request gains tokens every
 * iteration and none starves. Runs inside the engine Worker.
 *
 * @example
 * ```ts ignore
 * const runner = await BatchRunner.create(model, tokenizer, 8);
 * const r = await runner.run(1, ids, { maxTokens: 20 }, (c) => console.log(c.text));
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import type { FinishReason, GenerateOptions } from "../engine/generator.ts";
import { asInferenceModel } from "../engine/gpu_inference_model.ts";
import {
  checkPromptFits,
  type DecodeSlots,
  type InferenceModel,
} from "../engine/inference_model.ts";
import { type ResolvedSampling, resolveSampling } from "../engine/sampling_options.ts";
import type { GpuLlama } from "../model/gpu_llama.ts";
import type { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import { StreamingDecoder } from "../tokenizer/streaming_decoder.ts";
import type { EngineChunk } from "./engine.ts";
import type { SlotResult } from "./slots.ts";

const NONE = 0xffffffff;

interface Job {
  id: number;
  promptIds: number[];
  sampling: ResolvedSampling;
  maxTokens: number;
  stops: string[];
  decoder: StreamingDecoder;
  ids: number[];
  text: string;
  finish: FinishReason;
  done: boolean;
  slot: number;
  /** Prompt tokens already in the slot's cache. */
  prefilled: number;
  onChunk: (chunk: EngineChunk) => void;
  ac: AbortController;
  resolve: (r: SlotResult) => void;
  reject: (e: unknown) => void;
}

/** N KV slots over one model, decoded together one batched forward pass per step. */
export class BatchRunner {
  readonly #batch: DecodeSlots;
  readonly #tokenizer: HfTokenizer;
  readonly #eos: Set<number>;
  readonly #free: number[];
  readonly #waiting: Job[] = [];
  /** Jobs holding a slot whose prompt is not all prefilled yet, oldest first. */
  readonly #prefilling: Job[] = [];
  readonly #active: Job[] = [];
  readonly #byId = new Map<number, Job>();
  #loop?: Promise<void>;
  /** Decode steps per iteration (per submit and readback). */
  tokensPerTurn: number;
  /** Prompt tokens prefilled per iteration while other requests decode. */
  prefillTokensPerTurn = 256;

  private constructor(batch: DecodeSlots, tokenizer: HfTokenizer, tokensPerTurn: number) {
    this.#batch = batch;
    this.#tokenizer = tokenizer;
    this.#eos = new Set(tokenizer.eosIds);
    this.#free = Array.from({ length: batch.slots }, (_, i) => batch.slots - 1 - i);
    this.tokensPerTurn = tokensPerTurn;
  }

  /** Creates `n` KV slots on `model`'s weights (either backend). */
  static async create(
    model: InferenceModel | GpuLlama,
    tokenizer: HfTokenizer,
    n: number,
    tokensPerTurn = 8,
  ): Promise<BatchRunner> {
    const steps = Math.max(1, Math.min(tokensPerTurn, 64));
    const batch = await asInferenceModel(model).createDecodeSlots(n, steps);
    return new BatchRunner(batch, tokenizer, steps);
  }

  /** How many slots there are. */
  get size(): number {
    return this.#batch.slots;
  }

  /** How many requests are generating or waiting for a slot. */
  get busy(): number {
    return this.#byId.size;
  }

  /**
   * Generates from `promptIds`, calling `onChunk` per readback; waits for a
   * free slot when all are taken. Ends early when cancelled via {@link cancel}.
   */
  run(
    id: number,
    promptIds: number[],
    options: GenerateOptions,
    onChunk: (chunk: EngineChunk) => void,
  ): Promise<SlotResult> {
    const sampling = resolveSampling(options);
    const maxTokens = options.maxTokens ?? 128;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) {
      throw new RequestError(`max_tokens must be a positive integer (got ${maxTokens})`);
    }
    checkPromptFits(promptIds, this.#batch.model.maxSeq);
    return new Promise<SlotResult>((resolve, reject) => {
      const job: Job = {
        id,
        promptIds: [...promptIds],
        sampling,
        maxTokens,
        stops: (options.stop ?? []).filter((s) => s.length > 0),
        decoder: new StreamingDecoder(this.#tokenizer, promptIds[promptIds.length - 1]),
        ids: [],
        text: "",
        finish: "length",
        done: false,
        slot: -1,
        prefilled: 0,
        onChunk,
        ac: new AbortController(),
        resolve,
        reject,
      };
      this.#byId.set(id, job);
      this.#waiting.push(job);
      this.#kick();
    });
  }

  /** Stops request `id` at the next readback (or at once while it waits). */
  cancel(id: number, reason: "cancelled" | "timeout" = "cancelled"): void {
    const job = this.#byId.get(id);
    if (!job) return;
    job.ac.abort(reason);
    if (this.#waiting.includes(job)) this.#end(job);
  }

  /** Stops every request. */
  cancelAll(): void {
    for (const job of [...this.#byId.values()]) this.cancel(job.id);
  }

  /** Releases the batch's buffers (not the model). */
  destroy(): void {
    this.#batch.destroy();
  }

  #kick(): void {
    this.#loop ??= this.#serve().catch((e) => {
      this.#active.length = 0;
      for (const job of [...this.#byId.values()]) this.#end(job, e);
    }).finally(() => {
      this.#loop = undefined;
      if (this.#waiting.length || this.#prefilling.length || this.#active.length) this.#kick();
    });
  }

  async #serve(): Promise<void> {
    const b = this.#batch;
    while (this.#waiting.length || this.#prefilling.length || this.#active.length) {
      // Requests in the batch already: one row each, at their last id.
      const decoding = [...this.#active];
      // Newcomers take free slots.
      while (this.#waiting.length && this.#free.length) {
        const job = this.#waiting.shift()!;
        if (job.ac.signal.aborted) {
          this.#end(job);
          continue;
        }
        job.slot = this.#free.pop()!;
        b.setSampling(job.slot, job.sampling, [...this.#eos]);
        this.#prefilling.push(job);
      }
      // Prompt chunks, oldest request first: a bounded amount while others
      // decode; a prompt's last chunk samples its first id.
      const admitted: Job[] = [];
      let budget = decoding.length ? this.prefillTokensPerTurn : Infinity;
      for (const job of [...this.#prefilling]) {
        if (job.ac.signal.aborted) {
          this.#end(job);
          continue;
        }
        if (budget <= 0) break;
        const n = Math.min(budget, job.promptIds.length - job.prefilled);
        await b.prefill(job.slot, job.promptIds, job.prefilled, job.prefilled + n);
        job.prefilled += n;
        budget -= n;
        if (job.prefilled === job.promptIds.length) {
          this.#prefilling.splice(this.#prefilling.indexOf(job), 1);
          admitted.push(job);
        }
      }
      const remaining = Math.max(0, ...decoding.map((j) => j.maxTokens - j.ids.length));
      const steps = Math.min(this.tokensPerTurn, remaining);
      if (decoding.length && steps > 0) {
        await b.decode(
          decoding.map((j) => ({
            slot: j.slot,
            lastId: j.ids[j.ids.length - 1],
            pos: j.promptIds.length + j.ids.length - 1,
          })),
          steps,
        );
      }
      if (!admitted.length && !decoding.length) {
        // Only cancelled waiters, or prompt chunks with nothing to read yet.
        continue;
      }
      const out = await b.readOut();
      const stride = b.maxSteps;
      for (const job of admitted) {
        this.#accept(job, out.subarray(job.slot * stride, job.slot * stride + 1));
        if (!job.done) this.#active.push(job);
      }
      for (const job of decoding) {
        this.#accept(job, out.subarray(job.slot * stride, job.slot * stride + steps));
      }
      for (let i = this.#active.length - 1; i >= 0; i--) {
        if (this.#active[i].done) this.#active.splice(i, 1);
      }
    }
  }

  /** Hands `raw` ids (one readback) to `job`: EOS, stop strings, max tokens, context, cancel. */
  #accept(job: Job, raw: Uint32Array): void {
    const newIds: number[] = [];
    let done = false;
    for (const id of raw) {
      if (job.ids.length + newIds.length >= job.maxTokens) break;
      if (id === NONE || this.#eos.has(id)) {
        job.finish = "stop";
        done = true;
        break;
      }
      newIds.push(id);
    }
    let newText = newIds.map((id) => job.decoder.push(id)).join("");
    job.ids.push(...newIds);
    if (job.stops.length) {
      const all = job.text + newText;
      const from = Math.max(0, job.text.length - Math.max(...job.stops.map((s) => s.length)));
      const hit = firstStop(all, job.stops, from);
      if (hit >= 0) {
        newText = all.slice(job.text.length, hit);
        job.finish = "stop";
        done = true;
      }
    }
    if (job.ids.length >= job.maxTokens) done = true;
    if (job.promptIds.length + job.ids.length >= this.#batch.model.maxSeq) done = true;
    if (job.ac.signal.aborted) done = true;
    if (done && !job.stops.length) newText += job.decoder.flush();
    job.text += newText;
    if ((newIds.length || newText) && !job.ac.signal.aborted) {
      job.onChunk({ text: newText, tokenIds: newIds });
    }
    if (done) this.#end(job);
  }

  /** Finishes `job` (with `error`, or its result) and frees its slot. */
  #end(job: Job, error?: unknown): void {
    if (job.done && !this.#byId.has(job.id)) return;
    job.done = true;
    this.#byId.delete(job.id);
    if (job.slot >= 0) {
      this.#free.push(job.slot);
      job.slot = -1;
    }
    const i = this.#waiting.indexOf(job);
    if (i >= 0) this.#waiting.splice(i, 1);
    const k = this.#prefilling.indexOf(job);
    if (k >= 0) this.#prefilling.splice(k, 1);
    if (error !== undefined) {
      job.reject(error);
      return;
    }
    const signal = job.ac.signal;
    job.resolve({
      promptTokens: job.promptIds.length,
      completionTokens: job.ids.length,
      finishReason: signal.aborted
        ? (signal.reason === "timeout" ? "timeout" : "cancelled")
        : job.finish,
    });
  }
}

function firstStop(text: string, stops: string[], from: number): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s, from);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
