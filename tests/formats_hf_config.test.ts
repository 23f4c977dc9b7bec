import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { parseHfConfig, toHfConfigJson } from "../src/formats/hf_config.ts";

const llama = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 2048,
  intermediate_size: 5632,
  num_hidden_layers: 22,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  vocab_size: 32000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: null,
  tie_word_embeddings: false,
  hidden_act: "silu",
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: "bfloat16",
};

const mistral = {
  architectures: ["MistralForCausalLM"],
  model_type: "mistral",
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  vocab_size: 32768,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-5,
  rope_theta: 1000000,
  sliding_window: null,
  head_dim: 128,
  bos_token_id: 1,
  eos_token_id: 2,
};

const qwen2 = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  use_sliding_window: false,
  bos_token_id: 151643,
  eos_token_id: [151645, 151643],
};

function rejectsField(json: unknown, field: string, ...more: string[]) {
  assert.throws(() => parseHfConfig(json, "m/config.json"), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.ok(e.message.includes("m/config.json"), e.message);
    assert.ok(e.message.includes(`"${field}"`), `field "${field}" in: ${e.message}`);
    for (const m of more) assert.ok(e.message.includes(m), `"${m}" in: ${e.message}`);
    return true;
  });
}

Deno.test("parseHfConfig() reads a TinyLlama-style llama config", () => {
  assert.deepEqual(parseHfConfig(llama, "config.json"), {
    modelType: "llama",
    hiddenSize: 2048,
    intermediateSize: 5632,
    numLayers: 22,
    numHeads: 32,
    numKvHeads: 4,
    headDim: 64,
    vocabSize: 32000,
    maxPositionEmbeddings: 2048,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    attentionBias: false,
    bosTokenId: 1,
    eosTokenId: 2,
  });
});

Deno.test("parseHfConfig() reads a mistral config with an explicit head_dim", () => {
  const c = parseHfConfig(mistral, "config.json");
  assert.equal(c.modelType, "mistral");
  assert.equal(c.headDim, 128);
  assert.equal(c.ropeTheta, 1000000);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.attentionBias, false);
});

Deno.test("parseHfConfig() reads a qwen2 config: biases on, tied embeddings, eos list", () => {
  const c = parseHfConfig(qwen2, "config.json");
  assert.equal(c.modelType, "qwen2");
  assert.equal(c.headDim, 64);
  assert.equal(c.attentionBias, true);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.bosTokenId, 151643);
  assert.deepEqual(c.eosTokenId, [151645, 151643]);
});

Deno.test("parseHfConfig() applies defaults for absent optional fields", () => {
  const c = parseHfConfig({
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 172,
    num_hidden_layers: 5,
    num_attention_heads: 8,
    vocab_size: 512,
    max_position_embeddings: 512,
  }, "config.json");
  assert.equal(c.numKvHeads, 8);
  assert.equal(c.headDim, 8);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.attentionBias, false);
  assert.equal(c.bosTokenId, 1);
  assert.equal(c.eosTokenId, 2);
});

Deno.test("parseHfConfig() turns attention bias on for llama when attention_bias is true", () => {
  assert.equal(parseHfConfig({ ...llama, attention_bias: true }, "c").attentionBias, true);
});

Deno.test("parseHfConfig() rejects an unsupported model_type, naming it", () => {
  rejectsField({ ...llama, model_type: "gpt2" }, "model_type", "gpt2");
  rejectsField({ ...llama, model_type: undefined }, "model_type", "missing");
});

Deno.test("parseHfConfig() rejects a missing required field", () => {
  rejectsField({ ...llama, hidden_size: undefined }, "hidden_size", "missing");
});

Deno.test("parseHfConfig() rejects a field of the wrong type", () => {
  rejectsField({ ...llama, num_hidden_layers: "22" }, "num_hidden_layers", "positive integer");
  rejectsField({ ...llama, tie_word_embeddings: "yes" }, "tie_word_embeddings");
  rejectsField({ ...llama, rope_theta: "big" }, "rope_theta");
});

Deno.test("parseHfConfig() rejects non-positive and non-integer sizes", () => {
  rejectsField({ ...llama, vocab_size: 0 }, "vocab_size");
  rejectsField({ ...llama, intermediate_size: 10.5 }, "intermediate_size");
  rejectsField({ ...llama, rms_norm_eps: -1 }, "rms_norm_eps");
});

Deno.test("parseHfConfig() rejects hidden_size not divisible by heads when head_dim is absent", () => {
  rejectsField({ ...llama, hidden_size: 2050 }, "num_attention_heads", "2050");
});

Deno.test("parseHfConfig() rejects kv heads that do not divide the heads", () => {
  rejectsField({ ...llama, num_key_value_heads: 5 }, "num_key_value_heads");
});

Deno.test("parseHfConfig() rejects any non-null rope_scaling, naming its type", () => {
  rejectsField({ ...llama, rope_scaling: { type: "linear", factor: 2 } }, "rope_scaling", "linear");
  rejectsField(
    { ...llama, rope_scaling: { rope_type: "llama3", factor: 8 } },
    "rope_scaling",
    "llama3",
  );
});

Deno.test("parseHfConfig() rejects bad token ids", () => {
  rejectsField({ ...llama, eos_token_id: [] }, "eos_token_id", "empty");
  rejectsField({ ...llama, eos_token_id: [2, "x"] }, "eos_token_id");
  rejectsField({ ...llama, bos_token_id: -1 }, "bos_token_id");
});

Deno.test("parseHfConfig() rejects features we do not implement", () => {
  rejectsField({ ...llama, hidden_act: "gelu" }, "hidden_act", "gelu");
  rejectsField({ ...llama, mlp_bias: true }, "mlp_bias");
  rejectsField({ ...qwen2, use_sliding_window: true }, "use_sliding_window");
});

Deno.test("parseHfConfig() rejects a config that is not an object", () => {
  assert.throws(
    () => parseHfConfig([1], "x/config.json"),
    (e: unknown) => e instanceof ConfigError && e.message.includes("x/config.json"),
  );
});

Deno.test("toHfConfigJson() round-trips through parseHfConfig() for all three model types", () => {
  for (
    const [json, arch] of [
      [llama, "LlamaForCausalLM"],
      [mistral, "MistralForCausalLM"],
      [qwen2, "Qwen2ForCausalLM"],
    ] as const
  ) {
    const c = parseHfConfig(json, "config.json");
    const out = toHfConfigJson(c, "bfloat16");
    assert.deepEqual(out.architectures, [arch]);
    assert.equal(out.torch_dtype, "bfloat16");
    assert.deepEqual(parseHfConfig(JSON.parse(JSON.stringify(out)), "config.json"), c);
  }
});
