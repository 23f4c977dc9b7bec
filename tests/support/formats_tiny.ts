/**
 * Tiny random Llama-family weights and config for format tests.
 *
 * @example
 * ```ts
 * import { tinyWeights } from "./formats_tiny.ts";
 * const w = tinyWeights({ modelType: "qwen2", attentionBias: true });
 * ```
 * @module
 */

import type { LlamaConfig } from "../../src/model/config.ts";
import type { HostTensor, LayerWeights, LlamaWeights } from "../../src/model/weights.ts";

/**
 * A small, valid config; fields can be overridden.
 *
 * @example
 * ```ts
 * import { tinyConfig } from "./formats_tiny.ts";
 * console.log(tinyConfig({ numLayers: 1 }).numLayers); // 1
 * ```
 */
export function tinyConfig(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    modelType: "llama",
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 4,
    vocabSize: 10,
    maxPositionEmbeddings: 32,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    attentionBias: false,
    bosTokenId: 1,
    eosTokenId: 2,
    ...over,
  };
}

/**
 * Deterministic pseudo-random weights for a config.
 *
 * @example
 * ```ts
 * import { tinyWeights } from "./formats_tiny.ts";
 * console.log(tinyWeights().layers.length); // 2
 * ```
 */
export function tinyWeights(over: Partial<LlamaConfig> = {}, seed = 1): LlamaWeights {
  const c = tinyConfig(over);
  let s = seed;
  const t = (...shape: number[]): HostTensor => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      data[i] = (s / 2 ** 32 - 0.5) * 2;
    }
    return { data, shape, dtype: "F32" };
  };
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    layers.push({
      attnNorm: t(c.hiddenSize),
      wq: t(q, c.hiddenSize),
      wk: t(kv, c.hiddenSize),
      wv: t(kv, c.hiddenSize),
      wo: t(c.hiddenSize, q),
      ...(c.attentionBias ? { bq: t(q), bk: t(kv), bv: t(kv) } : {}),
      ffnNorm: t(c.hiddenSize),
      wGate: t(c.intermediateSize, c.hiddenSize),
      wUp: t(c.intermediateSize, c.hiddenSize),
      wDown: t(c.hiddenSize, c.intermediateSize),
    });
  }
  const embed = t(c.vocabSize, c.hiddenSize);
  return {
    config: c,
    embed,
    layers,
    norm: t(c.hiddenSize),
    lmHead: c.tieWordEmbeddings ? embed : t(c.vocabSize, c.hiddenSize),
  };
}
