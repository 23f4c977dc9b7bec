/**
 * Full-precision weights of a Llama-family model in host memory, in Hugging
 * Face layout and semantics (linear weights are row-major `[out, in]`; the
 * rows of q and k are in `rotate_half` order).
 *
 * @module
 */

import type { QuantizedLinear } from "../quant/types.ts";
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
  /**
   * Present on linear weights loaded from a quantized (AutoAWQ) checkpoint:
   * the integer codes, scales and zeros as stored (scales already f16-exact).
   * `data` then holds the dequantized values, computed on first access, so
   * backends with int kernels read `quantized` and never pay for `data`.
   */
  quantized?: QuantizedLinear;
}

/**
 * A HostTensor for a quantized linear weight: `quantized` holds the codes and
 * `data` dequantizes them (via `dequantize`) the first time it is read.
 *
 * @example
 * ```ts
 * import { quantizedTensor } from "./weights.ts";
 * const ql = {
 *   outFeatures: 1, inFeatures: 2, settings: { bits: 4 as const, groupSize: 0, zeroPoint: true },
 *   q: new Uint8Array([0, 15]), scales: new Float32Array([0.5]), zeros: new Uint8Array([8]),
 * };
 * const t = quantizedTensor(ql, (x) => Float32Array.from(x.q, (v) => (v - 8) * 0.5));
 * console.log(t.data); // Float32Array [-4, 3.5]
 * ```
 */
export function quantizedTensor(
  ql: QuantizedLinear,
  dequantize: (ql: QuantizedLinear) => Float32Array,
): HostTensor {
  let data: Float32Array | undefined;
  return {
    get data(): Float32Array {
      return data ??= dequantize(ql);
    },
    set data(v: Float32Array) {
      data = v;
    },
    shape: [ql.outFeatures, ql.inFeatures],
    dtype: "F16",
    quantized: ql,
  };
}

/**
 * The linear weights of a layer: HF module name (without `.weight`) and the
 * {@link LayerWeights} field holding it, in the order of a forward pass.
 *
 * @example
 * ```ts
 * import { LAYER_LINEARS } from "./weights.ts";
 * LAYER_LINEARS[4]; // ["mlp.gate_proj", "wGate"]
 * ```
 */
export const LAYER_LINEARS: ReadonlyArray<readonly [string, LinearField]> = [
  ["self_attn.q_proj", "wq"],
  ["self_attn.k_proj", "wk"],
  ["self_attn.v_proj", "wv"],
  ["self_attn.o_proj", "wo"],
  ["mlp.gate_proj", "wGate"],
  ["mlp.up_proj", "wUp"],
  ["mlp.down_proj", "wDown"],
];

/** The {@link LayerWeights} fields that hold linear weights. */
export type LinearField = "wq" | "wk" | "wv" | "wo" | "wGate" | "wUp" | "wDown";

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
