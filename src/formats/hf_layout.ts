/**
 * The Hugging Face Llama tensor names and shapes, in one table shared by the
 * loader ({@link ./hf_model.ts}) and the exporter ({@link ./hf_export.ts}).
 *
 * @example
 * ```ts
 * import { hfTensorSpecs } from "./hf_layout.ts";
 * const specs = hfTensorSpecs({
 *   modelType: "llama", hiddenSize: 64, intermediateSize: 172, numLayers: 1,
 *   numHeads: 8, numKvHeads: 4, headDim: 8, vocabSize: 512,
 *   maxPositionEmbeddings: 512, rmsNormEps: 1e-5, ropeTheta: 10000,
 *   tieWordEmbeddings: true, attentionBias: false, bosTokenId: 1, eosTokenId: 2,
 * });
 * console.log(specs.map((s) => s.name).includes("lm_head.weight")); // false (tied)
 * ```
 * @module
 */

import type { LlamaConfig } from "../model/config.ts";
import type { HostTensor, LayerWeights, LlamaWeights } from "../model/weights.ts";

/** Which field of {@link LayerWeights} a per-layer tensor fills. */
export type LayerField = keyof LayerWeights;

/** One tensor of the HF layout. */
export interface HfTensorSpec {
  /** HF name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  /** Expected shape. */
  shape: number[];
  /** Where it lives in {@link LlamaWeights}. */
  slot:
    | { kind: "embed" }
    | { kind: "norm" }
    | { kind: "lmHead" }
    | { kind: "layer"; layer: number; field: LayerField };
}

/**
 * Every tensor a model with this config has in HF layout, with its shape
 * (`lm_head.weight` only when not tied, q/k/v biases only with attention
 * bias).
 *
 * @example
 * ```ts
 * import { hfTensorSpecs } from "./hf_layout.ts";
 * import type { LlamaConfig } from "../model/config.ts";
 * function listTensors(config: LlamaConfig): void {
 *   for (const s of hfTensorSpecs(config)) console.log(s.name, s.shape);
 * }
 * ```
 */
export function hfTensorSpecs(config: LlamaConfig): HfTensorSpec[] {
  const d = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const ff = config.intermediateSize;
  const specs: HfTensorSpec[] = [
    { name: "model.embed_tokens.weight", shape: [config.vocabSize, d], slot: { kind: "embed" } },
  ];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const add = (suffix: string, shape: number[], field: LayerField) =>
      specs.push({ name: p + suffix, shape, slot: { kind: "layer", layer: l, field } });
    add("input_layernorm.weight", [d], "attnNorm");
    add("self_attn.q_proj.weight", [q, d], "wq");
    add("self_attn.k_proj.weight", [kv, d], "wk");
    add("self_attn.v_proj.weight", [kv, d], "wv");
    if (config.attentionBias) {
      add("self_attn.q_proj.bias", [q], "bq");
      add("self_attn.k_proj.bias", [kv], "bk");
      add("self_attn.v_proj.bias", [kv], "bv");
    }
    add("self_attn.o_proj.weight", [d, q], "wo");
    add("post_attention_layernorm.weight", [d], "ffnNorm");
    add("mlp.gate_proj.weight", [ff, d], "wGate");
    add("mlp.up_proj.weight", [ff, d], "wUp");
    add("mlp.down_proj.weight", [d, ff], "wDown");
  }
  specs.push({ name: "model.norm.weight", shape: [d], slot: { kind: "norm" } });
  if (!config.tieWordEmbeddings) {
    specs.push({ name: "lm_head.weight", shape: [config.vocabSize, d], slot: { kind: "lmHead" } });
  }
  return specs;
}

/**
 * The tensor of `weights` a spec refers to (undefined for a missing bias).
 *
 * @example
 * ```ts
 * import { hfTensorSpecs, tensorForSpec } from "./hf_layout.ts";
 * import type { LlamaWeights } from "../model/weights.ts";
 * function embedding(w: LlamaWeights) {
 *   return tensorForSpec(w, hfTensorSpecs(w.config)[0]); // the embedding
 * }
 * ```
 */
export function tensorForSpec(weights: LlamaWeights, spec: HfTensorSpec): HostTensor | undefined {
  const s = spec.slot;
  switch (s.kind) {
    case "embed":
      return weights.embed;
    case "norm":
      return weights.norm;
    case "lmHead":
      return weights.lmHead;
    case "layer":
      return weights.layers[s.layer]?.[s.field];
  }
}

/**
 * Builds `LlamaWeights` by reading the tensor of every spec with `read` (in
 * spec order) and placing it in its slot; a tied lm_head is the embedding.
 * The inverse of {@link tensorForSpec}, shared by the FP and AWQ loaders.
 *
 * @example
 * ```ts ignore
 * const weights = await assembleWeights(config, hfTensorSpecs(config), (s) => st.readF32(s.name));
 * ```
 */
export async function assembleWeights(
  config: LlamaConfig,
  specs: readonly HfTensorSpec[],
  read: (spec: HfTensorSpec) => Promise<HostTensor>,
): Promise<LlamaWeights> {
  let embed: HostTensor | undefined;
  let norm: HostTensor | undefined;
  let lmHead: HostTensor | undefined;
  const layers: Partial<LayerWeights>[] = Array.from({ length: config.numLayers }, () => ({}));
  for (const spec of specs) {
    const t = await read(spec);
    const slot = spec.slot;
    if (slot.kind === "embed") embed = t;
    else if (slot.kind === "norm") norm = t;
    else if (slot.kind === "lmHead") lmHead = t;
    else layers[slot.layer][slot.field] = t;
  }
  return {
    config,
    embed: embed!,
    layers: layers as LayerWeights[],
    norm: norm!,
    lmHead: config.tieWordEmbeddings ? embed! : lmHead!,
  };
}
