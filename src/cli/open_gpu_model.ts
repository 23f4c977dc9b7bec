/**
 * Shared start-up of the eval and generate commands: load the model from a
 * path, acquire the GPU, upload the weights, and log what happened on stderr.
 *
 * @example
 * ```ts ignore
 * const m = await openGpuModel({ model: "stories260K.bin" }, console.error);
 * m.close();
 * ```
 * @module
 */

import { acquireGpu } from "../gpu/device.ts";
import type { WeightDType } from "../gpu/shader_source.ts";
import { GpuLlama } from "../model/gpu_llama.ts";
import { loadModel } from "../model/load_model.ts";
import type { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import { RequestError } from "../errors.ts";

/** Where the model comes from and how to place it. */
export interface OpenModelOptions {
  /** HF directory or llama2.c .bin. */
  model: string;
  /** Tokenizer override. */
  tokenizer?: string;
  /** Weight storage on the GPU. */
  dtype?: WeightDType | "auto";
  /** KV cache length. */
  context?: number;
}

/** A model ready to run, with its tokenizer. */
export interface OpenedModel {
  /** The GPU model. */
  model: GpuLlama;
  /** Its tokenizer. */
  tokenizer: HfTokenizer;
  /** Releases the GPU. */
  close(): void;
}

/** Loads `options.model` onto the GPU, logging progress through `log`. */
export async function openGpuModel(
  options: OpenModelOptions,
  log: (line: string) => void,
): Promise<OpenedModel> {
  const t0 = performance.now();
  const { weights, tokenizer, format } = await loadModel(options.model, options.tokenizer);
  const c = weights.config;
  if (
    options.context !== undefined && (!Number.isInteger(options.context) || options.context < 2)
  ) {
    throw new RequestError(`--context must be an integer >= 2 (got ${options.context})`);
  }
  const gpu = await acquireGpu();
  try {
    const model = await GpuLlama.load(gpu, weights, {
      maxSeq: options.context,
      weightDType: options.dtype ?? "auto",
    });
    log(
      `model ${options.model} (${format}, ${c.modelType}, ${c.numLayers} layers, dim ${c.hiddenSize}, ` +
        `vocab ${c.vocabSize}, context ${model.maxSeq}) on ${gpu.adapterDescription}` +
        `${gpu.isSoftware ? " [software adapter]" : ""}, loaded in ` +
        `${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
    return {
      model,
      tokenizer,
      close() {
        model.destroy();
        gpu.destroy();
      },
    };
  } catch (e) {
    gpu.destroy();
    throw e;
  }
}
