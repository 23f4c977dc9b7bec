/**
 * Cheap deterministic weights of any Llama shape for benchmarks: values come
 * from a short hashed pattern repeated with `copyWithin`, so even ~100M
 * parameters fill in well under a second. Tensors are tagged "F16" so
 * GpuLlama's "auto" dtype uploads them as f16. The numbers are meaningless
 * (the text is garbage); only the shapes and the amount of work matter.
 *
 * @example
 * ```ts
 * import { benchWeights, STORIES260K_CONFIG } from "./random_model.ts";
 * const w = benchWeights(STORIES260K_CONFIG);
 * w.layers.length; // 5
 * ```
 * @module
 */

import type { LlamaConfig } from "../src/model/config.ts";
import type { HostTensor, LayerWeights, LlamaWeights } from "../src/model/weights.ts";

/** The shape of stories260K (llama2.c), used when the checkpoint is absent. */
export const STORIES260K_CONFIG: LlamaConfig = {
  modelType: "llama",
  hiddenSize: 64,
  intermediateSize: 172,
  numLayers: 5,
  numHeads: 8,
  numKvHeads: 4,
  headDim: 8,
  vocabSize: 512,
  maxPositionEmbeddings: 512,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: true,
  attentionBias: false,
  bosTokenId: 1,
  eosTokenId: 2,
};

/** TinyLlama-1.1B layer shapes (22 layers in the real model). */
export const TINYLLAMA_CONFIG: LlamaConfig = {
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
};

/** Options for {@link benchWeights}. */
export interface BenchWeightsOptions {
  /** Changes the values (default 1). */
  seed?: number;
  /** The dtype tag of every tensor (default "F16"). */
  dtype?: HostTensor["dtype"];
}

/** Length of the repeated pattern (prime, so rows of any width differ). */
const PERIOD = 4093;

function pattern(seed: number): Float32Array {
  const p = new Float32Array(PERIOD);
  let s = (seed * 0x9e3779b1) >>> 0;
  for (let i = 0; i < PERIOD; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    p[i] = (s >>> 8) / (1 << 23) - 1; // [-1, 1)
  }
  return p;
}

/** Fills `n` values: the pattern times `scale` plus `offset`, repeated. */
function filled(n: number, base: Float32Array, scale: number, offset: number): Float32Array {
  const data = new Float32Array(n);
  const head = Math.min(n, base.length);
  for (let i = 0; i < head; i++) data[i] = base[i] * scale + offset;
  for (let len = head; len < n; len *= 2) data.copyWithin(len, 0, Math.min(len, n - len));
  return data;
}

/**
 * Weights of `config` with cheap deterministic values: linear weights are
 * uniform in ±1/sqrt(in), embeddings ±1, norms 1 ± 0.05, biases ±0.1.
 * `lmHead` is the `embed` object when the config ties them.
 */
export function benchWeights(config: LlamaConfig, options: BenchWeightsOptions = {}): LlamaWeights {
  const dtype = options.dtype ?? "F16";
  let seed = options.seed ?? 1;
  const t = (shape: number[], scale: number, offset = 0): HostTensor => ({
    data: filled(shape.reduce((a, b) => a * b, 1), pattern(seed++), scale, offset),
    shape,
    dtype,
  });
  const linear = (out: number, inDim: number) => t([out, inDim], 1 / Math.sqrt(inDim));
  const dim = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const hidden = config.intermediateSize;
  const embed = t([config.vocabSize, dim], 1);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const layer: LayerWeights = {
      attnNorm: t([dim], 0.05, 1),
      wq: linear(qDim, dim),
      wk: linear(kvDim, dim),
      wv: linear(kvDim, dim),
      wo: linear(dim, qDim),
      ffnNorm: t([dim], 0.05, 1),
      wGate: linear(hidden, dim),
      wUp: linear(hidden, dim),
      wDown: linear(dim, hidden),
    };
    if (config.attentionBias) {
      layer.bq = t([qDim], 0.1);
      layer.bk = t([kvDim], 0.1);
      layer.bv = t([kvDim], 0.1);
    }
    layers.push(layer);
  }
  const norm = t([dim], 0.05, 1);
  const lmHead = config.tieWordEmbeddings ? embed : linear(config.vocabSize, dim);
  return { config, embed, layers, norm, lmHead };
}

/** Number of parameters in `w` (a tied lm_head counted once). */
export function parameterCount(w: LlamaWeights): number {
  const seen = new Set<HostTensor>();
  const add = (x: HostTensor | undefined) => x && seen.add(x);
  add(w.embed);
  add(w.norm);
  add(w.lmHead);
  for (const l of w.layers) Object.values(l).forEach(add);
  let n = 0;
  for (const x of seen) n += x.data.length;
  return n;
}
