/**
 * The embedding API in one object: open a model from a path on either
 * backend, generate text, measure perplexity, close.
 *
 * @example
 * ```ts ignore
 * import { TextModel } from "../../mod.ts";
 * const m = await TextModel.open("../shared/models/stories260K/stories260K.bin", { backend: "auto" });
 * console.error(`backend ${m.backend} (${m.backendReason})`);
 * const r = await m.complete("Once upon a time", { maxTokens: 20 });
 * console.log(r.text);
 * m.close();
 * ```
 * @module
 */

import type { ActivationMode } from "../cpu/cpu_kernels.ts";
import type { CpuKernelKind } from "../cpu/open_cpu_kernels.ts";
import type { GpuContext } from "../gpu/device.ts";
import type { ModelDType } from "./open_inference_model.ts";
import { loadModel } from "../model/load_model.ts";
import type { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import type { BackendChoice } from "./backend.ts";
import {
  type GenerateChunk,
  type GenerateOptions,
  type GenerateResult,
  Generator,
} from "./generator.ts";
import type { BackendName, InferenceModel } from "./inference_model.ts";
import { openInferenceModel } from "./open_inference_model.ts";
import { evaluatePerplexity, type PerplexityOptions, type PerplexityResult } from "./perplexity.ts";
import { buildTokenStream, windows } from "./perplexity_stream.ts";

/** Options of {@link TextModel.open}. */
export interface TextModelOptions {
  /** Tokenizer path (default: found with the model). */
  tokenizer?: string;
  /** KV cache length (default: the model's context, at most 2048). */
  context?: number;
  /** Weight storage (default: as stored; int4 stays int4 on the CPU backend). */
  dtype?: ModelDType;
  /**
   * "webgpu", "wasm" or "auto" (default): WebGPU on a hardware adapter, the
   * WebAssembly CPU backend without one or on a software adapter.
   */
  backend?: BackendChoice;
  /** CPU backend: threads (default navigator.hardwareConcurrency). */
  threads?: number;
  /** CPU backend: activations of int4 matmuls, "int8" (default) or "f32" (exact). */
  activations?: ActivationMode;
  /** CPU backend: "wasm" kernels (default) or the "typescript" reference kernels. */
  kernels?: CpuKernelKind;
  /** Use this device for WebGPU (it is not destroyed by close()). */
  gpu?: GpuContext;
  /** Receives the start-up line naming the backend and why it was chosen. */
  log?: (line: string) => void;
}

/** A loaded model with its tokenizer, ready to generate and evaluate. */
export class TextModel {
  /** The model, on either backend. */
  readonly model: InferenceModel;
  /** Its tokenizer. */
  readonly tokenizer: HfTokenizer;
  /** The backend that runs it. */
  readonly backend: BackendName;
  /** Why that backend was chosen. */
  readonly backendReason: string;
  readonly #generator: Generator;

  private constructor(model: InferenceModel, tokenizer: HfTokenizer, reason: string) {
    this.model = model;
    this.tokenizer = tokenizer;
    this.backend = model.backend;
    this.backendReason = reason;
    this.#generator = new Generator(model, tokenizer);
  }

  /** Loads an HF directory or llama2.c `.bin` on the chosen backend. */
  static async open(path: string, options: TextModelOptions = {}): Promise<TextModel> {
    const { weights, tokenizer } = await loadModel(path, options.tokenizer);
    const { model, decision, notes } = await openInferenceModel(weights, options);
    options.log?.(
      `backend ${decision.backend} (${decision.reason}) on ${model.description}` +
        notes.map((n) => `; ${n}`).join(""),
    );
    return new TextModel(model, tokenizer, decision.reason);
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
    this.model.destroy();
  }
}
