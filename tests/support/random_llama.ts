/**
 * Tiny, deterministic random Llama-family models for tests: awkward sizes
 * (not multiples of 4/8/16 where the architecture allows), grouped-query
 * attention, Qwen2 biases and untied heads.
 *
 * @module
 */

import type { LlamaConfig } from "../../src/model/config.ts";
import type { HostTensor, LayerWeights, LlamaWeights } from "../../src/model/weights.ts";
import { seededRandom } from "../../src/quant/calibration.ts";

/**
 * A tiny config of the given architecture. All kinds use hidden size 60,
 * 6 heads of 10, 2 layers, vocab 97 and context 64:
 * - `llama`: 2 kv heads, FFN 94, tied lm_head, theta 10000, eps 1e-5
 *   (what llama2.c can run);
 * - `mistral`: 3 kv heads, FFN 94, untied lm_head, theta 1e6, eps 1e-5;
 * - `qwen2`: 2 kv heads, FFN 86, untied lm_head, q/k/v biases, theta 1e6, eps 1e-6.
 *
 * @example
 * ```ts
 * import { tinyConfig } from "./random_llama.ts";
 * const c = tinyConfig("qwen2", { numLayers: 1 });
 * c.attentionBias; // true
 * ```
 */
export function tinyConfig(
  kind: "llama" | "mistral" | "qwen2",
  overrides: Partial<LlamaConfig> = {},
): LlamaConfig {
  const base: LlamaConfig = {
    modelType: kind,
    hiddenSize: 60,
    intermediateSize: 94,
    numLayers: 2,
    numHeads: 6,
    numKvHeads: 2,
    headDim: 10,
    vocabSize: 97,
    maxPositionEmbeddings: 64,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: true,
    attentionBias: false,
    bosTokenId: 1,
    eosTokenId: 2,
  };
  const perKind: Record<typeof kind, Partial<LlamaConfig>> = {
    llama: {},
    mistral: { numKvHeads: 3, ropeTheta: 1e6, tieWordEmbeddings: false },
    qwen2: {
      intermediateSize: 86,
      ropeTheta: 1e6,
      rmsNormEps: 1e-6,
      tieWordEmbeddings: false,
      attentionBias: true,
    },
  };
  return { ...base, ...perKind[kind], ...overrides };
}

/**
 * Random weights for `config`, the same for the same seed. Linear weights are
 * normal / sqrt(in) so activations stay O(1); embeddings are normal; norms
 * are 1 + 0.1 normal; biases (when `config.attentionBias`) are 0.5 normal.
 * `lmHead` is the `embed` object itself when the config ties them.
 *
 * @example
 * ```ts
 * import { randomLlamaWeights, tinyConfig } from "./random_llama.ts";
 * const w = randomLlamaWeights(tinyConfig("llama"), 7);
 * w.layers[0].wq.shape; // [60, 60]
 * ```
 */
export function randomLlamaWeights(config: LlamaConfig, seed: number): LlamaWeights {
  const uniform = seededRandom(seed);
  const normal = (): number => {
    // Box-Muller; 1 - u keeps the log argument in (0, 1].
    const u = 1 - uniform();
    const v = uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const tensor = (shape: number[], fill: () => number): HostTensor => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = fill();
    return { data, shape, dtype: "F32" };
  };
  const linear = (out: number, inDim: number): HostTensor => {
    const scale = 1 / Math.sqrt(inDim);
    return tensor([out, inDim], () => normal() * scale);
  };
  const norm = (dim: number): HostTensor => tensor([dim], () => 1 + 0.1 * normal());
  const bias = (dim: number): HostTensor => tensor([dim], () => 0.5 * normal());

  const dim = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const hidden = config.intermediateSize;
  const embed = tensor([config.vocabSize, dim], normal);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const layer: LayerWeights = {
      attnNorm: norm(dim),
      wq: linear(qDim, dim),
      wk: linear(kvDim, dim),
      wv: linear(kvDim, dim),
      wo: linear(dim, qDim),
      ffnNorm: norm(dim),
      wGate: linear(hidden, dim),
      wUp: linear(hidden, dim),
      wDown: linear(dim, hidden),
    };
    if (config.attentionBias) {
      layer.bq = bias(qDim);
      layer.bk = bias(kvDim);
      layer.bv = bias(kvDim);
    }
    layers.push(layer);
  }
  const finalNorm = norm(dim);
  const lmHead = config.tieWordEmbeddings ? embed : linear(config.vocabSize, dim);
  return { config, embed, layers, norm: finalNorm, lmHead };
}
