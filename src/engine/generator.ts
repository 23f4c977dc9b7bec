/**
 * Text generation with the decode loop on the GPU: the prompt is prefilled in
 * batches, then many decode steps (forward + sample) are recorded into one
 * submit and their token ids read back together. Stops at EOS, at a stop
 * string, at maxTokens, or when the context is full.
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
import { CommandBatch, type Dispatch } from "../gpu/command_batch.ts";
import { readBuffer } from "../gpu/readback.ts";
import { createUniform, packUniform } from "../gpu/uniforms.ts";
import type { GpuLlama } from "../model/gpu_llama.ts";
import { StreamingDecoder, type TokenByteSource } from "../tokenizer/streaming_decoder.ts";
import type { TextTokenizer } from "../tokenizer/types.ts";
import { resolveSampling, samplerUniform, type SamplingOptions } from "./sampling_options.ts";

/** Options for one generation. */
export interface GenerateOptions extends SamplingOptions {
  /** Most new tokens (default 128). */
  maxTokens?: number;
  /** Stop (and drop the stop text) when any of these strings appears. */
  stop?: string[];
  /** Decode steps per GPU submit / readback (default 16). */
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

const NONE = 0xffffffff;

/** Runs generations on one model; one at a time. */
export class Generator {
  readonly #model: GpuLlama;
  readonly #tokenizer: TextTokenizer & TokenByteSource;
  readonly #work: GPUBuffer;
  readonly #out: GPUBuffer;
  readonly #params: GPUBuffer;
  readonly #outCap = 256;
  #sample?: Promise<Dispatch>;
  /** Result of the last finished generation. */
  last?: GenerateResult;

  /** Prepares sampler buffers for `model`. */
  constructor(model: GpuLlama, tokenizer: TextTokenizer & TokenByteSource) {
    this.#model = model;
    this.#tokenizer = tokenizer;
    const d = model.gpu.device;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.#work = d.createBuffer({ size: model.config.vocabSize * 4, usage });
    this.#out = d.createBuffer({ size: this.#outCap * 4, usage });
    this.#params = createUniform(
      model.gpu,
      samplerUniform(resolveSampling(), model.config.vocabSize, model.maxSeq, []),
    );
  }

  #sampleDispatch(): Promise<Dispatch> {
    const m = this.#model;
    this.#sample ??= m.kernels.sample(
      m.logitsBuffer,
      this.#work,
      m.context,
      m.tokens,
      m.state,
      this.#out,
      this.#params,
    );
    return this.#sample;
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
    const gpu = m.gpu;
    const sampling = resolveSampling(options);
    const maxTokens = options.maxTokens ?? 128;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) {
      throw new RequestError(`max_tokens must be a positive integer (got ${maxTokens})`);
    }
    if (promptIds.length === 0) throw new RequestError("the prompt is empty");
    if (promptIds.length >= m.maxSeq) {
      throw new RequestError(
        `the prompt has ${promptIds.length} tokens; the context holds ${m.maxSeq} ` +
          `(at most ${m.maxSeq - 1} prompt tokens leave room for one new token)`,
      );
    }
    const perReadback = Math.max(1, Math.min(options.tokensPerReadback ?? 16, this.#outCap));
    const stops = (options.stop ?? []).filter((s) => s.length > 0);
    const eos = new Set(this.#tokenizer.eosIds);
    gpu.device.queue.writeBuffer(
      this.#params,
      0,
      packUniform(samplerUniform(sampling, m.config.vocabSize, m.maxSeq, [...eos])),
    );
    const sample = await this.#sampleDispatch();
    const decodeStep = await m.forward(1, "last");
    const decoder = new StreamingDecoder(this.#tokenizer, promptIds[promptIds.length - 1]);

    const t0 = performance.now();
    let readWait = 0;
    // Prefill: all but the last chunk without logits, the last chunk then samples.
    let pos = 0;
    while (promptIds.length - pos > m.maxBatch) {
      const chunk = promptIds.slice(pos, pos + m.maxBatch);
      m.setInput(chunk, pos);
      new CommandBatch(gpu).runAll(await m.forward(chunk.length, "none")).submit();
      pos += chunk.length;
    }
    const last = promptIds.slice(pos);
    m.setInput(last, pos);
    let firstAt = 0;
    const ids: number[] = [];
    let text = "";
    let finish: FinishReason = "length";
    let first = true;
    let done = false;
    while (!done) {
      // The first submit is the prefill and one sampled token alone, so the
      // first token streams as early as possible and decode timing is clean.
      const want = first ? 1 : Math.min(perReadback, maxTokens - ids.length);
      const batch = new CommandBatch(gpu);
      if (first) batch.runAll(await m.forward(last.length, "last")).run(sample);
      else for (let i = 0; i < want; i++) batch.runAll(decodeStep).run(sample);
      batch.submit();
      const r0 = performance.now();
      const out = new Uint32Array(await readBuffer(gpu, this.#out, 0, want * 4));
      readWait += performance.now() - r0;
      if (first) firstAt = performance.now();
      first = false;
      gpu.device.queue.writeBuffer(m.state, 8, new Uint32Array([0])); // step = 0
      const newIds: number[] = [];
      for (const id of out) {
        if (id === NONE || eos.has(id)) {
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
      readbackSeconds: readWait / 1000,
      tokensPerSecond: ids.length > 1 && decodeSeconds > 0 ? (ids.length - 1) / decodeSeconds : 0,
    };
    return this.last;
  }

  /** Releases the sampler's buffers. */
  destroy(): void {
    this.#work.destroy();
    this.#out.destroy();
    this.#params.destroy();
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
