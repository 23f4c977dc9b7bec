/**
 * Loads a Hugging Face Llama-family checkpoint directory (config.json plus
 * `model.safetensors` or sharded safetensors) into {@link LlamaWeights}.
 *
 * @example
 * ```ts ignore
 * import { loadHfModel } from "./hf_model.ts";
 * const w = await loadHfModel("./TinyLlama-1.1B");
 * console.log(w.config.numLayers, w.embed.dtype);
 * ```
 * @module
 */

import { join } from "node:path";
import { FormatError } from "../errors.ts";
import type { LlamaConfig } from "../model/config.ts";
import type { LlamaWeights } from "../model/weights.ts";
import { isQuantizedCheckpoint, loadAwqWeights } from "./awq_checkpoint.ts";
import { parseHfConfig } from "./hf_config.ts";
import { assembleWeights, hfTensorSpecs } from "./hf_layout.ts";
import { openSafetensorsModel } from "./safetensors_model.ts";

/** Tensors that may be present and are ignored (recomputed from the config). */
const IGNORED = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

/**
 * Reads and parses `dir/config.json`. Throws {@link FormatError} when the
 * file is missing or not JSON, and {@link ConfigError} for bad fields.
 *
 * @example
 * ```ts ignore
 * import { readHfConfig } from "./hf_model.ts";
 * const config = await readHfConfig("./my-model");
 * ```
 */
export async function readHfConfig(dir: string): Promise<LlamaConfig> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FormatError(`${path}: config.json not found`, { cause: e });
    }
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path}: not JSON (${(e as Error).message})`);
  }
  return parseHfConfig(json, path);
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Loads config.json and every weight of a HF checkpoint directory, checking
 * each tensor's presence, dtype (F32, F16 or BF16) and shape against the
 * config. Throws {@link FormatError} naming the missing, mis-shaped or
 * unexpected tensor. `rotary_emb.inv_freq` buffers are ignored; when
 * embeddings are tied `lmHead` is the same object as `embed` (a stored
 * `lm_head.weight` is then ignored). A directory whose config.json has a
 * `quantization_config` is loaded by {@link loadAwqWeights} (AutoAWQ
 * checkpoints, dequantized on load; other quant methods are refused).
 *
 * @example
 * ```ts ignore
 * import { loadHfModel } from "./hf_model.ts";
 * const w = await loadHfModel("./exported-stories260K");
 * console.log(w.lmHead === w.embed); // true when tied
 * ```
 */
export async function loadHfModel(dir: string): Promise<LlamaWeights> {
  if (await isQuantizedCheckpoint(dir)) return await loadAwqWeights(dir);
  const config = await readHfConfig(dir);
  const st = await openSafetensorsModel(dir);
  try {
    const specs = hfTensorSpecs(config);
    const known = new Set(specs.map((s) => s.name));
    if (config.tieWordEmbeddings) known.add("lm_head.weight");
    for (const name of st.names()) {
      if (!known.has(name) && !IGNORED.test(name)) {
        throw new FormatError(
          `${dir}: unexpected tensor "${name}" for a ${config.modelType} model with this config.json`,
        );
      }
    }
    for (const s of specs) {
      const e = st.entry(s.name);
      if (!e) throw new FormatError(`${dir}: tensor "${s.name}" is missing`);
      if (!sameShape(e.shape, s.shape)) {
        throw new FormatError(
          `${dir}: tensor "${s.name}" has shape [${e.shape}], config.json implies [${s.shape}]`,
        );
      }
      if (e.dtype !== "F32" && e.dtype !== "F16" && e.dtype !== "BF16") {
        throw new FormatError(`${dir}: tensor "${s.name}" has dtype ${e.dtype}, expected a float`);
      }
    }
    return await assembleWeights(config, specs, (spec) => st.readF32(spec.name));
  } finally {
    st.close();
  }
}
