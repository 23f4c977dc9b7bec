/**
 * Hugging Face `config.json` <-> {@link LlamaConfig} for the Llama family
 * (`llama`, `mistral`, `qwen2`): every field we use is validated, absent
 * optional fields get the transformers defaults, and anything that would
 * change the math but that we do not implement is rejected.
 *
 * @example
 * ```ts
 * import { parseHfConfig, toHfConfigJson } from "./hf_config.ts";
 * const c = parseHfConfig({
 *   model_type: "llama", hidden_size: 64, intermediate_size: 172,
 *   num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4,
 *   vocab_size: 512, max_position_embeddings: 512,
 * }, "config.json");
 * console.log(c.headDim, toHfConfigJson(c).architectures); // 8 ["LlamaForCausalLM"]
 * ```
 * @module
 */

import { ConfigError } from "../errors.ts";
import type { LlamaConfig, ModelType } from "../model/config.ts";

const ARCHITECTURES: Readonly<Record<ModelType, string>> = {
  llama: "LlamaForCausalLM",
  mistral: "MistralForCausalLM",
  qwen2: "Qwen2ForCausalLM",
};

type Json = Record<string, unknown>;

function isAbsent(v: unknown): boolean {
  return v === undefined || v === null;
}

class Fields {
  constructor(readonly json: Json, readonly file: string) {}

  fail(field: string, what: string): never {
    throw new ConfigError(`${this.file}: field "${field}" ${what}`);
  }

  positiveInt(field: string, fallback?: number): number {
    const v = this.json[field];
    if (isAbsent(v)) {
      if (fallback !== undefined) return fallback;
      this.fail(field, "is missing");
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      this.fail(field, `must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  positiveNumber(field: string, fallback: number): number {
    const v = this.json[field];
    if (isAbsent(v)) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      this.fail(field, `must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.json[field];
    if (isAbsent(v)) return fallback;
    if (typeof v !== "boolean") this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  tokenId(field: string, v: unknown): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      this.fail(field, `must be a non-negative integer token id, got ${JSON.stringify(v)}`);
    }
    return v;
  }
}

/**
 * Parses a Hugging Face config.json object (already `JSON.parse`d) into a
 * {@link LlamaConfig}. `file` is used in error messages only.
 *
 * Defaults when absent: `num_key_value_heads` = `num_attention_heads`,
 * `head_dim` = `hidden_size / num_attention_heads`, `rope_theta` 10000,
 * `rms_norm_eps` 1e-6, `tie_word_embeddings` false, `attention_bias` false
 * (always true for qwen2), `bos_token_id` 1, `eos_token_id` 2.
 * Throws {@link ConfigError} naming the file and field for a missing or
 * ill-typed field, an unsupported `model_type`, a non-null `rope_scaling`,
 * `hidden_act` other than silu, `mlp_bias`, a sliding window in use, or
 * heads that do not divide.
 *
 * @example
 * ```ts
 * import { parseHfConfig } from "./hf_config.ts";
 * const c = parseHfConfig({
 *   model_type: "qwen2", hidden_size: 896, intermediate_size: 4864,
 *   num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2,
 *   vocab_size: 151936, max_position_embeddings: 32768, rope_theta: 1000000,
 *   tie_word_embeddings: true, eos_token_id: 151645,
 * }, "qwen/config.json");
 * console.log(c.attentionBias, c.headDim); // true 64
 * ```
 */
export function parseHfConfig(json: unknown, file: string): LlamaConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`${file}: config is not a JSON object`);
  }
  const f = new Fields(json as Json, file);
  const j = json as Json;
  const modelType = j.model_type;
  if (isAbsent(modelType)) f.fail("model_type", "is missing");
  if (typeof modelType !== "string" || !Object.hasOwn(ARCHITECTURES, modelType)) {
    f.fail(
      "model_type",
      `${JSON.stringify(modelType)} is not supported (expected "llama", "mistral" or "qwen2")`,
    );
  }
  const mt = modelType as ModelType;

  const hiddenSize = f.positiveInt("hidden_size");
  const intermediateSize = f.positiveInt("intermediate_size");
  const numLayers = f.positiveInt("num_hidden_layers");
  const numHeads = f.positiveInt("num_attention_heads");
  const numKvHeads = f.positiveInt("num_key_value_heads", numHeads);
  const vocabSize = f.positiveInt("vocab_size");
  const maxPositionEmbeddings = f.positiveInt("max_position_embeddings");
  if (numHeads % numKvHeads !== 0) {
    f.fail(
      "num_key_value_heads",
      `(${numKvHeads}) must divide num_attention_heads (${numHeads})`,
    );
  }
  let headDim: number;
  if (isAbsent(j.head_dim)) {
    if (hiddenSize % numHeads !== 0) {
      f.fail(
        "num_attention_heads",
        `(${numHeads}) must divide hidden_size (${hiddenSize}) when head_dim is absent`,
      );
    }
    headDim = hiddenSize / numHeads;
  } else {
    headDim = f.positiveInt("head_dim");
  }
  if (headDim % 2 !== 0) f.fail("head_dim", `(${headDim}) must be even for RoPE`);

  const rmsNormEps = f.positiveNumber("rms_norm_eps", 1e-6);
  const ropeTheta = f.positiveNumber("rope_theta", 10000);
  const tieWordEmbeddings = f.bool("tie_word_embeddings", false);
  const attentionBias = mt === "qwen2" ? true : f.bool("attention_bias", false);

  if (!isAbsent(j.rope_scaling)) {
    const rs = j.rope_scaling as { type?: unknown; rope_type?: unknown };
    const type = typeof rs === "object" ? rs.rope_type ?? rs.type : rs;
    f.fail("rope_scaling", `type ${JSON.stringify(type)} is not supported (only null)`);
  }
  if (!isAbsent(j.hidden_act) && j.hidden_act !== "silu") {
    f.fail("hidden_act", `${JSON.stringify(j.hidden_act)} is not supported (only "silu")`);
  }
  if (f.bool("mlp_bias", false)) f.fail("mlp_bias", "true is not supported");
  if (mt === "qwen2" && f.bool("use_sliding_window", false)) {
    f.fail("use_sliding_window", "true is not supported");
  }

  const bosTokenId = isAbsent(j.bos_token_id) ? 1 : f.tokenId("bos_token_id", j.bos_token_id);
  let eosTokenId: number | number[];
  if (isAbsent(j.eos_token_id)) {
    eosTokenId = 2;
  } else if (Array.isArray(j.eos_token_id)) {
    if (j.eos_token_id.length === 0) f.fail("eos_token_id", "is an empty list");
    eosTokenId = j.eos_token_id.map((v) => f.tokenId("eos_token_id", v));
  } else {
    eosTokenId = f.tokenId("eos_token_id", j.eos_token_id);
  }

  return {
    modelType: mt,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositionEmbeddings,
    rmsNormEps,
    ropeTheta,
    tieWordEmbeddings,
    attentionBias,
    bosTokenId,
    eosTokenId,
  };
}

/** torch dtype names written into config.json. */
export type TorchDtype = "float32" | "float16" | "bfloat16";

/**
 * Writes a {@link LlamaConfig} as a Hugging Face config.json object that
 * {@link parseHfConfig} reads back to an equal config. Throws
 * {@link ConfigError} for a qwen2 config without attention bias (Qwen2 always
 * has q/k/v biases) or a mistral one with it (HF Mistral has none).
 *
 * @example
 * ```ts
 * import { toHfConfigJson } from "./hf_config.ts";
 * const json = toHfConfigJson({
 *   modelType: "mistral", hiddenSize: 64, intermediateSize: 172, numLayers: 2,
 *   numHeads: 8, numKvHeads: 4, headDim: 8, vocabSize: 512,
 *   maxPositionEmbeddings: 512, rmsNormEps: 1e-5, ropeTheta: 10000,
 *   tieWordEmbeddings: false, attentionBias: false, bosTokenId: 1, eosTokenId: 2,
 * }, "float16");
 * console.log(json.architectures, json.torch_dtype); // ["MistralForCausalLM"] "float16"
 * ```
 */
export function toHfConfigJson(
  config: LlamaConfig,
  torchDtype: TorchDtype = "float32",
): Record<string, unknown> {
  if (config.modelType === "qwen2" && !config.attentionBias) {
    throw new ConfigError("config: qwen2 models always have attention bias (attentionBias false)");
  }
  if (config.modelType === "mistral" && config.attentionBias) {
    throw new ConfigError("config: mistral models have no attention bias (attentionBias true)");
  }
  const out: Record<string, unknown> = {
    architectures: [ARCHITECTURES[config.modelType]],
    model_type: config.modelType,
    hidden_act: "silu",
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    vocab_size: config.vocabSize,
    max_position_embeddings: config.maxPositionEmbeddings,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: config.tieWordEmbeddings,
    bos_token_id: config.bosTokenId,
    eos_token_id: Array.isArray(config.eosTokenId) ? [...config.eosTokenId] : config.eosTokenId,
    initializer_range: 0.02,
    use_cache: true,
    torch_dtype: torchDtype,
  };
  if (config.modelType !== "qwen2") {
    out.attention_bias = config.attentionBias;
    out.mlp_bias = false;
  } else {
    out.use_sliding_window = false;
  }
  return out;
}
