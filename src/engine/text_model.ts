/**
 * The embedding API in one object: open a model from a path, generate text,
 * measure perplexity, close.
 *
 * @example
 * ```ts ignore
 * import { TextModel } from "../../mod.ts";
 * const m = await TextModel.open("../shared/models/stories260K/stories260K.bin");
 * const r = await m.complete("Once upon a time", { maxTokens: 20 });
 * console.log(r.text);
 * m.close();
 * ```
 * @module
 */

import { acquireGpu, type GpuContext } from "../gpu/device.ts";
import type { WeightDType } from "../gpu/shader_source.ts";
import { GpuLlama } from "../model/gpu_llama.ts";
import { loadModel } from "../model/load_model.ts";
import type { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import {
  type GenerateChunk,
  type GenerateOptions,
  type GenerateResult,
  Generator,
} from "./generator.ts";
import { evaluatePerplexity, type PerplexityOptions, type PerplexityResult } from "./perplexity.ts";
import { buildTokenStream, windows } from "./perplexity_stream.ts";

/** Options of {@link TextModel.open}. */
export interface TextModelOptions {
  /** Tokenizer path (default: found with the model). */
  tokenizer?: string;
  /** KV cache length (default: the model's context, at most 2048). */
  context?: number;
  /** Weight storage on the GPU (default: as stored). */
  dtype?: WeightDType | "auto";
  /** Use this device instead of acquiring one (it is not destroyed by close()). */
  gpu?: GpuContext;
}

/** A loaded model with its tokenizer, ready to generate and evaluate. */
export class TextModel {
  /** The GPU model. */
  readonly model: GpuLlama;
  /** Its tokenizer. */
  readonly tokenizer: HfTokenizer;
  readonly #generator: Generator;
  readonly #ownsGpu: boolean;

  private constructor(model: GpuLlama, tokenizer: HfTokenizer, ownsGpu: boolean) {
    this.model = model;
    this.tokenizer = tokenizer;
    this.#generator = new Generator(model, tokenizer);
    this.#ownsGpu = ownsGpu;
  }

  /** Loads an HF directory or llama2.c `.bin` onto the GPU. */
  static async open(path: string, options: TextModelOptions = {}): Promise<TextModel> {
    const { weights, tokenizer } = await loadModel(path, options.tokenizer);
    const gpu = options.gpu ?? await acquireGpu();
    try {
      const model = await GpuLlama.load(gpu, weights, {
        maxSeq: options.context,
        weightDType: options.dtype ?? "auto",
      });
      return new TextModel(model, tokenizer, !options.gpu);
    } catch (e) {
      if (!options.gpu) gpu.destroy();
      throw e;
    }
  }

  /** Streams a completion of `prompt` (BOS is added). */
  stream(prompt: string, options?: GenerateOptions): AsyncGenerator<GenerateChunk, GenerateResult> {
    return this.#generator.generate(prompt, options);
  }

  /** Generates a completion of `prompt` and returns it whole. */
  async complete(prompt: string, options?: GenerateOptions): Promise<GenerateResult> {
    const it = this.stream(prompt, options);
    let r = await it.next();
    while (!r.done) r = await it.next();
    return r.value;
  }

  /** Perplexity of `text` with the protocol of docs/formats.md. */
  perplexity(text: string, options?: PerplexityOptions): Promise<PerplexityResult> {
    const stream = buildTokenStream(text, this.tokenizer);
    return evaluatePerplexity(this.model, windows(stream, this.model.maxSeq), options);
  }

  /** Releases the model (and the device, when open() acquired it). */
  close(): void {
    this.#generator.destroy();
    const gpu = this.model.gpu;
    this.model.destroy();
    if (this.#ownsGpu) gpu.destroy();
  }
}
