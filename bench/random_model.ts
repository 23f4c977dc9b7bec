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

import { f16ToF32, f32ToF16 } from "../src/formats/half.ts";
import type { LlamaConfig } from "../src/model/config.ts";
import {
  type HostTensor,
  type LayerWeights,
  type LlamaWeights,
  quantizedTensor,
} from "../src/model/weights.ts";
import { dequantizeLinear } from "../src/quant/quantizer.ts";
import type { QuantizedLinear, QuantSettings } from "../src/quant/types.ts";

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
  for (const x of seen) n += x.shape.reduce((a, b) => a * b, 1); // never dequantizes
  return n;
}

/**
 * The 483M-parameter Llama the int4 benchmarks decode (issue 6): TinyLlama
 * layer shapes (dim 2048, FFN 5632, 32 heads, 4 kv heads, vocab 32000,
 * untied lm_head) with 8 layers.
 */
export const BENCH_483M_CONFIG: LlamaConfig = {
  ...TINYLLAMA_CONFIG,
  numLayers: 8,
};

/** Options for {@link benchQuantizedWeights}. */
export interface BenchQuantizedOptions {
  /** Changes the values (default 1). */
  seed?: number;
  /** Input channels per quantization group; 0 = per channel (default 128). */
  groupSize?: number;
  /** Bits per code (default 4). */
  bits?: QuantSettings["bits"];
}

/** Bytes (each `mask`-limited) from a hashed pattern repeated with `copyWithin`. */
function filledCodes(n: number, seed: number, mask: number): Uint8Array {
  const data = new Uint8Array(n);
  let s = (seed * 0x85ebca6b) >>> 0;
  const head = Math.min(n, PERIOD);
  for (let i = 0; i < head; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s >>> 24) & mask;
  }
  for (let len = head; len < n; len *= 2) data.copyWithin(len, 0, Math.min(len, n - len));
  return data;
}

/**
 * A random quantized linear [out, in]: codes uniform in [0, 2^bits - 1],
 * zero points near the middle of the range, f16-exact scales chosen so the
 * dequantized weights span about ±1/sqrt(in). Built directly (no TypeScript
 * quantization), so 483M weights take about a second.
 *
 * @example
 * ```ts
 * import { randomQuantizedLinear } from "./random_model.ts";
 * const ql = randomQuantizedLinear(8, 256, 1, { groupSize: 128 });
 * [ql.q.length, ql.scales.length]; // [2048, 16]
 * ```
 */
export function randomQuantizedLinear(
  out: number,
  inDim: number,
  seed: number,
  options: Omit<BenchQuantizedOptions, "seed"> = {},
): QuantizedLinear {
  const bits = options.bits ?? 4;
  const groupSize = options.groupSize ?? 128;
  const nGroups = groupSize === 0 ? 1 : Math.ceil(inDim / groupSize);
  const levels = (1 << bits) - 1;
  const base = 2 / Math.sqrt(inDim) / levels;
  const p = filled(out * nGroups, pattern(seed), 0.25, 1); // [0.75, 1.25)
  const scales = f16ToF32(f32ToF16(p.map((v) => v * base)));
  const zeros = filledCodes(out * nGroups, seed + 7, 3).map((z) => z + (levels >> 1) - 1);
  return {
    outFeatures: out,
    inFeatures: inDim,
    settings: { bits, groupSize, zeroPoint: true },
    q: filledCodes(out * inDim, seed, levels),
    scales,
    zeros,
  };
}

/**
 * Weights of `config` whose seven linears per layer are quantized (see
 * {@link randomQuantizedLinear}; g128 4-bit by default) and whose embedding,
 * lm_head and norms are the F16 tensors of {@link benchWeights}. Each linear
 * is a `quantizedTensor`: backends with int kernels read `quantized`; `data`
 * dequantizes on first read (what an fp16 run of the same model uploads).
 *
 * @example
 * ```ts
 * import { benchQuantizedWeights, STORIES260K_CONFIG } from "./random_model.ts";
 * const w = benchQuantizedWeights(STORIES260K_CONFIG, { groupSize: 32 });
 * w.layers[0].wq.quantized?.settings.bits; // 4
 * ```
 */
export function benchQuantizedWeights(
  config: LlamaConfig,
  options: BenchQuantizedOptions = {},
): LlamaWeights {
  const seed = options.seed ?? 1;
  // Small fp parts only: the linears below replace benchWeights' ones.
  const fp = benchWeights({ ...config, numLayers: 0 }, { seed });
  let s = seed * 1000;
  const lin = (out: number, inDim: number) =>
    quantizedTensor(randomQuantizedLinear(out, inDim, s++, options), dequantizeLinear);
  const dim = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const hidden = config.intermediateSize;
  const norm = (i: number): HostTensor => ({
    data: filled(dim, pattern(seed + 100 + i), 0.05, 1),
    shape: [dim],
    dtype: "F16",
  });
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const layer: LayerWeights = {
      attnNorm: norm(2 * l),
      wq: lin(qDim, dim),
      wk: lin(kvDim, dim),
      wv: lin(kvDim, dim),
      wo: lin(dim, qDim),
      ffnNorm: norm(2 * l + 1),
      wGate: lin(hidden, dim),
      wUp: lin(hidden, dim),
      wDown: lin(dim, hidden),
    };
    if (config.attentionBias) {
      layer.bq = { data: filled(qDim, pattern(s++), 0.1, 0), shape: [qDim], dtype: "F16" };
      layer.bk = { data: filled(kvDim, pattern(s++), 0.1, 0), shape: [kvDim], dtype: "F16" };
      layer.bv = { data: filled(kvDim, pattern(s++), 0.1, 0), shape: [kvDim], dtype: "F16" };
    }
    layers.push(layer);
  }
  return { config, embed: fp.embed, layers, norm: fp.norm, lmHead: fp.lmHead };
}
