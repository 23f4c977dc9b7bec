/**
 * Opens a model from a path the user gives: a Hugging Face directory
 * (config.json + safetensors + tokenizer.json) or a llama2.c `.bin` with its
 * tokenizer found beside it (or given).
 *
 * @example
 * ```ts ignore
 * const { weights, tokenizer } = await loadModel("../shared/models/stories260K/stories260K.bin");
 * console.log(weights.config.numLayers, tokenizer.vocabSize);
 * ```
 * @module
 */

import { FormatError } from "../errors.ts";
import { loadHfModel } from "../formats/hf_model.ts";
import { readLlama2c } from "../formats/llama2c.ts";
import type { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import { loadTokenizer } from "../tokenizer/load_tokenizer.ts";
import type { LlamaWeights } from "./weights.ts";

/** A model's weights and tokenizer, in host memory. */
export interface LoadedModel {
  /** Weights in HF layout. */
  weights: LlamaWeights;
  /** Its tokenizer. */
  tokenizer: HfTokenizer;
  /** Which kind of file it came from. */
  format: "hf" | "llama2c";
}

/**
 * Loads weights and tokenizer from `path` (an HF directory or a llama2.c
 * `.bin`); `tokenizerPath` overrides where the tokenizer comes from. The
 * tokenizer's vocabulary must fit the model's.
 */
export async function loadModel(path: string, tokenizerPath?: string): Promise<LoadedModel> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new FormatError(`${path}: model not found (give an HF directory or a llama2.c .bin)`);
  }
  const format = info.isDirectory ? "hf" : "llama2c";
  const weights = info.isDirectory ? await loadHfModel(path) : await readLlama2c(path);
  const tokenizer = await loadTokenizer(path, tokenizerPath);
  if (tokenizer.vocabSize > weights.config.vocabSize) {
    throw new FormatError(
      `${path}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${weights.config.vocabSize}`,
    );
  }
  return { weights, tokenizer, format };
}
