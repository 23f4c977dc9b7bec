/**
 * Shared start-up of the eval and generate commands: load the model from a
 * path, choose the backend (and log it with its reason), place the weights,
 * and log what happened on stderr.
 *
 * @example
 * ```ts ignore
 * const m = await openModel({ model: "stories260K.bin", backend: "auto" }, console.error);
 * m.close();
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import type { InferenceModel } from "../engine/inference_model.ts";
import { openInferenceModel } from "../engine/open_inference_model.ts";
import type { ModelDType } from "../engine/open_inference_model.ts";
import { loadModel } from "../model/load_model.ts";
import type { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import type { BackendOptions } from "./backend_options.ts";

/** Where the model comes from and how to place it. */
export interface OpenModelOptions extends Partial<BackendOptions> {
  /** HF directory or llama2.c .bin. */
  model: string;
  /** Tokenizer override. */
  tokenizer?: string;
  /** Weight storage. */
  dtype?: ModelDType;
  /** KV cache length. */
  context?: number;
}

/** A model ready to run, with its tokenizer. */
export interface OpenedModel {
  /** The model, on either backend. */
  model: InferenceModel;
  /** Its tokenizer. */
  tokenizer: HfTokenizer;
  /** Releases the model (and its device). */
  close(): void;
}

/** Loads `options.model` on the chosen backend, logging through `log`. */
export async function openModel(
  options: OpenModelOptions,
  log: (line: string) => void,
): Promise<OpenedModel> {
  const t0 = performance.now();
  if (
    options.context !== undefined && (!Number.isInteger(options.context) || options.context < 2)
  ) {
    throw new RequestError(`--context must be an integer >= 2 (got ${options.context})`);
  }
  const { weights, tokenizer, format } = await loadModel(options.model, options.tokenizer);
  const c = weights.config;
  const { model, decision, notes } = await openInferenceModel(weights, {
    backend: options.backend ?? "auto",
    context: options.context,
    dtype: options.dtype ?? "auto",
    threads: options.threads,
    activations: options.activations,
    kernels: options.kernels,
  });
  log(`backend ${decision.backend} (${decision.reason})`);
  for (const n of notes) log(`note: ${n}`);
  log(
    `model ${options.model} (${format}, ${c.modelType}, ${c.numLayers} layers, dim ${c.hiddenSize}, ` +
      `vocab ${c.vocabSize}, context ${model.maxSeq}) on ${model.description}, loaded in ` +
      `${((performance.now() - t0) / 1000).toFixed(2)} s`,
  );
  return { model, tokenizer, close: () => model.destroy() };
}
