/**
 * Full-precision weights of a Llama-family model in host memory, in Hugging
 * Face layout and semantics (linear weights are row-major `[out, in]`; the
 * rows of q and k are in `rotate_half` order).
 *
 * @module
 */

import type { LlamaConfig } from "./config.ts";

/**
 * A 2-D or 1-D tensor in host memory. `data` is float32 for computation; `dtype`
 * records the storage type it came from (weights loaded from F16 files are
 * uploaded to the GPU as f16).
 */
export interface HostTensor {
  /** Row-major values. */
  data: Float32Array;
  /** Shape, e.g. `[out, in]` for a linear layer. */
  shape: number[];
  /** The dtype the tensor was stored in. */
  dtype: "F32" | "F16" | "BF16";
}

/** The weights of one transformer block. */
export interface LayerWeights {
  /** `input_layernorm.weight` [dim]. */
  attnNorm: HostTensor;
  /** `self_attn.q_proj.weight` [numHeads*headDim, dim]. */
  wq: HostTensor;
  /** `self_attn.k_proj.weight` [numKvHeads*headDim, dim]. */
  wk: HostTensor;
  /** `self_attn.v_proj.weight` [numKvHeads*headDim, dim]. */
  wv: HostTensor;
  /** `self_attn.o_proj.weight` [dim, numHeads*headDim]. */
  wo: HostTensor;
  /** q/k/v biases (Qwen2 only). */
  bq?: HostTensor;
  /** k bias (Qwen2 only). */
  bk?: HostTensor;
  /** v bias (Qwen2 only). */
  bv?: HostTensor;
  /** `post_attention_layernorm.weight` [dim]. */
  ffnNorm: HostTensor;
  /** `mlp.gate_proj.weight` [hidden, dim] (llama2.c w1). */
  wGate: HostTensor;
  /** `mlp.up_proj.weight` [hidden, dim] (llama2.c w3). */
  wUp: HostTensor;
  /** `mlp.down_proj.weight` [dim, hidden] (llama2.c w2). */
  wDown: HostTensor;
}

/** All weights of a model plus its config. */
export interface LlamaWeights {
  /** Normalised hyper-parameters. */
  config: LlamaConfig;
  /** `model.embed_tokens.weight` [vocab, dim]. */
  embed: HostTensor;
  /** One entry per block. */
  layers: LayerWeights[];
  /** `model.norm.weight` [dim]. */
  norm: HostTensor;
  /** `lm_head.weight` [vocab, dim]; the same object as `embed` when tied. */
  lmHead: HostTensor;
}
