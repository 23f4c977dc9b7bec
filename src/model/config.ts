/**
 * The model hyper-parameters every part of the code works from, whatever file
 * they came from (HF config.json or a llama2.c header).
 *
 * @module
 */

/** Architectures we load; all share the Llama block (Qwen2 adds q/k/v biases). */
export type ModelType = "llama" | "mistral" | "qwen2";

/**
 * Llama-family hyper-parameters, normalised. Semantics are Hugging Face's:
 * RoPE is `rotate_half` (dimension i of a head pairs with i + headDim/2).
 *
 * @example
 * ```ts
 * import type { LlamaConfig } from "./config.ts";
 * const c: LlamaConfig = {
 *   modelType: "llama", hiddenSize: 64, intermediateSize: 172, numLayers: 5,
 *   numHeads: 8, numKvHeads: 4, headDim: 8, vocabSize: 512,
 *   maxPositionEmbeddings: 512, rmsNormEps: 1e-5, ropeTheta: 10000,
 *   tieWordEmbeddings: true, attentionBias: false, bosTokenId: 1, eosTokenId: 2,
 * };
 * ```
 */
export interface LlamaConfig {
  /** Which HF architecture this is. */
  modelType: ModelType;
  /** Model width (`dim` in llama2.c). */
  hiddenSize: number;
  /** FFN width (`hidden_dim` in llama2.c). */
  intermediateSize: number;
  /** Number of transformer blocks. */
  numLayers: number;
  /** Number of query heads. */
  numHeads: number;
  /** Number of key/value heads (grouped-query attention when < numHeads). */
  numKvHeads: number;
  /** Size of one head (usually hiddenSize / numHeads). */
  headDim: number;
  /** Vocabulary size (rows of the embedding and lm_head). */
  vocabSize: number;
  /** Context length the model was trained for. */
  maxPositionEmbeddings: number;
  /** RMSNorm epsilon. */
  rmsNormEps: number;
  /** RoPE base frequency. */
  ropeTheta: number;
  /** lm_head shares the embedding matrix. */
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry biases (Qwen2). */
  attentionBias: boolean;
  /** Beginning-of-sequence token id. */
  bosTokenId: number;
  /** End-of-sequence token id(s); generation stops at any of them. */
  eosTokenId: number | number[];
}
