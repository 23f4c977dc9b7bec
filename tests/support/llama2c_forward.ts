/**
 * An independent port of llama2.c's `run.c` forward pass (one token at a
 * time, interleaved RoPE on the raw, un-permuted wq/wk), on raw flat arrays in
 * llama2.c's checkpoint layout. It shares no code with the reference model,
 * so agreement between the two checks the HF permutation, rotate_half RoPE,
 * GQA and the KV cache independently.
 *
 * @module
 */

import type { HostTensor, LayerWeights, LlamaWeights } from "../../src/model/weights.ts";
import type { LlamaConfig } from "../../src/model/config.ts";

/** llama2.c's `Config`, plus the two constants run.c hard-codes. */
export interface Llama2cConfig {
  /** Model width. */
  dim: number;
  /** FFN width. */
  hiddenDim: number;
  /** Number of layers. */
  nLayers: number;
  /** Number of query heads (head size is dim / nHeads). */
  nHeads: number;
  /** Number of key/value heads. */
  nKvHeads: number;
  /** Vocabulary size. */
  vocabSize: number;
  /** Maximum sequence length. */
  seqLen: number;
  /** RoPE base; run.c hard-codes 10000. */
  ropeTheta: number;
  /** RMSNorm epsilon; run.c hard-codes 1e-5. */
  rmsEps: number;
}

/** llama2.c's `TransformerWeights`: every layer's matrices concatenated. */
export interface Llama2cWeights {
  /** Hyper-parameters. */
  config: Llama2cConfig;
  /** [vocab, dim]. */
  tokenEmbeddingTable: Float32Array;
  /** [L, dim]. */
  rmsAttWeight: Float32Array;
  /** [L, dim, dim], interleaved RoPE row order. */
  wq: Float32Array;
  /** [L, kvDim, dim], interleaved RoPE row order. */
  wk: Float32Array;
  /** [L, kvDim, dim]. */
  wv: Float32Array;
  /** [L, dim, dim]. */
  wo: Float32Array;
  /** [L, dim]. */
  rmsFfnWeight: Float32Array;
  /** [L, hidden, dim] (gate). */
  w1: Float32Array;
  /** [L, dim, hidden] (down). */
  w2: Float32Array;
  /** [L, hidden, dim] (up). */
  w3: Float32Array;
  /** [dim]. */
  rmsFinalWeight: Float32Array;
  /** [vocab, dim] (the embedding table itself when shared). */
  wcls: Float32Array;
}

// ---------------------------------------------------------------------------
// run.c, function by function.

function rmsnorm(
  o: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  size: number,
  eps: number,
) {
  let ss = 0;
  for (let j = 0; j < size; j++) ss += x[j] * x[j];
  ss /= size;
  ss += eps;
  ss = 1 / Math.sqrt(ss);
  for (let j = 0; j < size; j++) o[j] = weight[j] * (ss * x[j]);
}

function softmax(x: Float32Array, size: number) {
  let maxVal = x[0];
  for (let i = 1; i < size; i++) if (x[i] > maxVal) maxVal = x[i];
  let sum = 0;
  for (let i = 0; i < size; i++) {
    x[i] = Math.exp(x[i] - maxVal);
    sum += x[i];
  }
  for (let i = 0; i < size; i++) x[i] /= sum;
}

/** W (d,n) @ x (n,) -> xout (d,), reading W from `wOff`. */
function matmul(
  xout: Float32Array,
  x: Float32Array,
  w: Float32Array,
  wOff: number,
  n: number,
  d: number,
) {
  for (let i = 0; i < d; i++) {
    let val = 0;
    const row = wOff + i * n;
    for (let j = 0; j < n; j++) val += w[row + j] * x[j];
    xout[i] = val;
  }
}

/**
 * llama2.c's `Transformer`: weights plus `RunState` (activations and KV cache).
 *
 * @example
 * ```ts ignore
 * import { Llama2cTransformer } from "./llama2c_forward.ts";
 * const t = new Llama2cTransformer(raw);   // raw: Llama2cWeights
 * const logits = t.forward(1, 0);          // Float32Array [vocab]
 * ```
 */
export class Llama2cTransformer {
  /** The raw weights. */
  readonly w: Llama2cWeights;
  #x: Float32Array;
  #xb: Float32Array;
  #xb2: Float32Array;
  #hb: Float32Array;
  #hb2: Float32Array;
  #q: Float32Array;
  #att: Float32Array;
  #logits: Float32Array;
  #keyCache: Float32Array;
  #valueCache: Float32Array;

  /** Allocates the run state for `w`. */
  constructor(w: Llama2cWeights) {
    const p = w.config;
    const kvDim = (p.dim * p.nKvHeads) / p.nHeads;
    this.w = w;
    this.#x = new Float32Array(p.dim);
    this.#xb = new Float32Array(p.dim);
    this.#xb2 = new Float32Array(p.dim);
    this.#hb = new Float32Array(p.hiddenDim);
    this.#hb2 = new Float32Array(p.hiddenDim);
    this.#q = new Float32Array(p.dim);
    this.#att = new Float32Array(p.nHeads * p.seqLen);
    this.#logits = new Float32Array(p.vocabSize);
    this.#keyCache = new Float32Array(p.nLayers * p.seqLen * kvDim);
    this.#valueCache = new Float32Array(p.nLayers * p.seqLen * kvDim);
  }

  /** run.c's `forward(transformer, token, pos)`; returns a copy of the logits. */
  forward(token: number, pos: number): Float32Array {
    const p = this.w.config;
    const w = this.w;
    const x = this.#x;
    const dim = p.dim;
    const kvDim = (p.dim * p.nKvHeads) / p.nHeads;
    const kvMul = p.nHeads / p.nKvHeads;
    const hiddenDim = p.hiddenDim;
    const headSize = dim / p.nHeads;

    x.set(w.tokenEmbeddingTable.subarray(token * dim, (token + 1) * dim));

    for (let l = 0; l < p.nLayers; l++) {
      rmsnorm(this.#xb, x, w.rmsAttWeight.subarray(l * dim, (l + 1) * dim), dim, p.rmsEps);

      const loff = l * p.seqLen * kvDim;
      const k = this.#keyCache.subarray(loff + pos * kvDim, loff + (pos + 1) * kvDim);
      const v = this.#valueCache.subarray(loff + pos * kvDim, loff + (pos + 1) * kvDim);
      matmul(this.#q, this.#xb, w.wq, l * dim * dim, dim, dim);
      matmul(k, this.#xb, w.wk, l * dim * kvDim, dim, kvDim);
      matmul(v, this.#xb, w.wv, l * dim * kvDim, dim, kvDim);

      // RoPE: rotate interleaved pairs (i, i+1) of q and k.
      for (let i = 0; i < dim; i += 2) {
        const headDim = i % headSize;
        const freq = 1 / Math.pow(p.ropeTheta, headDim / headSize);
        const val = pos * freq;
        const fcr = Math.cos(val);
        const fci = Math.sin(val);
        const rotn = i < kvDim ? 2 : 1;
        for (let r = 0; r < rotn; r++) {
          const vec = r === 0 ? this.#q : k;
          const v0 = vec[i];
          const v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }

      // Multi-head attention over positions 0..pos.
      for (let h = 0; h < p.nHeads; h++) {
        const qOff = h * headSize;
        const att = this.#att.subarray(h * p.seqLen, (h + 1) * p.seqLen);
        for (let t = 0; t <= pos; t++) {
          const kOff = loff + t * kvDim + Math.floor(h / kvMul) * headSize;
          let score = 0;
          for (let i = 0; i < headSize; i++) score += this.#q[qOff + i] * this.#keyCache[kOff + i];
          score /= Math.sqrt(headSize);
          att[t] = score;
        }
        softmax(att, pos + 1);
        const xbOff = h * headSize;
        this.#xb.fill(0, xbOff, xbOff + headSize);
        for (let t = 0; t <= pos; t++) {
          const vOff = loff + t * kvDim + Math.floor(h / kvMul) * headSize;
          const a = att[t];
          for (let i = 0; i < headSize; i++) this.#xb[xbOff + i] += a * this.#valueCache[vOff + i];
        }
      }

      matmul(this.#xb2, this.#xb, w.wo, l * dim * dim, dim, dim);
      for (let i = 0; i < dim; i++) x[i] += this.#xb2[i];

      rmsnorm(this.#xb, x, w.rmsFfnWeight.subarray(l * dim, (l + 1) * dim), dim, p.rmsEps);
      matmul(this.#hb, this.#xb, w.w1, l * dim * hiddenDim, dim, hiddenDim);
      matmul(this.#hb2, this.#xb, w.w3, l * dim * hiddenDim, dim, hiddenDim);
      for (let i = 0; i < hiddenDim; i++) {
        let val = this.#hb[i];
        val *= 1 / (1 + Math.exp(-val));
        val *= this.#hb2[i];
        this.#hb[i] = val;
      }
      matmul(this.#xb, this.#hb, w.w2, l * dim * hiddenDim, hiddenDim, dim);
      for (let i = 0; i < dim; i++) x[i] += this.#xb[i];
    }

    rmsnorm(x, x, w.rmsFinalWeight, dim, p.rmsEps);
    matmul(this.#logits, x, w.wcls, 0, p.dim, p.vocabSize);
    return this.#logits.slice();
  }
}

// ---------------------------------------------------------------------------
// Conversions between the HF layout and llama2.c's.

/**
 * Moves the rows of a stacked q or k matrix between row orders, head by head.
 * `toInterleaved`: HF row i of a head -> row 2i, row i + h/2 -> row 2i + 1.
 */
function permuteRows(
  src: Float32Array,
  rows: number,
  cols: number,
  headSize: number,
  toInterleaved: boolean,
): Float32Array {
  const dst = new Float32Array(src.length);
  const half = headSize / 2;
  for (let r = 0; r < rows; r++) {
    const head = Math.floor(r / headSize);
    const i = r % headSize;
    const interleaved = head * headSize + (i < half ? 2 * i : 2 * (i - half) + 1);
    const [from, to] = toInterleaved ? [r, interleaved] : [interleaved, r];
    dst.set(src.subarray(from * cols, (from + 1) * cols), to * cols);
  }
  return dst;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * HF-layout weights -> llama2.c raw arrays, undoing the HF export
 * permutation of wq/wk (HF row i of a head -> row 2i, row i + h/2 -> row 2i + 1).
 * Throws when the model has features llama2.c lacks (biases, headDim != dim/nHeads).
 *
 * @example
 * ```ts ignore
 * import { Llama2cTransformer, unpermuteForLlama2c } from "./llama2c_forward.ts";
 * const t = new Llama2cTransformer(unpermuteForLlama2c(hfWeights));
 * ```
 */
export function unpermuteForLlama2c(weights: LlamaWeights): Llama2cWeights {
  const c = weights.config;
  const dim = c.hiddenSize;
  if (c.headDim * c.numHeads !== dim) {
    throw new Error(`llama2.c needs headDim * numHeads == dim, got ${c.headDim} * ${c.numHeads}`);
  }
  if (weights.layers.some((l) => l.bq || l.bk || l.bv)) {
    throw new Error("llama2.c has no attention biases");
  }
  const kvDim = c.numKvHeads * c.headDim;
  const ls = weights.layers;
  return {
    config: {
      dim,
      hiddenDim: c.intermediateSize,
      nLayers: c.numLayers,
      nHeads: c.numHeads,
      nKvHeads: c.numKvHeads,
      vocabSize: c.vocabSize,
      seqLen: c.maxPositionEmbeddings,
      ropeTheta: c.ropeTheta,
      rmsEps: c.rmsNormEps,
    },
    tokenEmbeddingTable: weights.embed.data,
    rmsAttWeight: concat(ls.map((l) => l.attnNorm.data)),
    wq: concat(ls.map((l) => permuteRows(l.wq.data, dim, dim, c.headDim, true))),
    wk: concat(ls.map((l) => permuteRows(l.wk.data, kvDim, dim, c.headDim, true))),
    wv: concat(ls.map((l) => l.wv.data)),
    wo: concat(ls.map((l) => l.wo.data)),
    rmsFfnWeight: concat(ls.map((l) => l.ffnNorm.data)),
    w1: concat(ls.map((l) => l.wGate.data)),
    w2: concat(ls.map((l) => l.wDown.data)),
    w3: concat(ls.map((l) => l.wUp.data)),
    rmsFinalWeight: weights.norm.data,
    wcls: weights.lmHead.data,
  };
}

/**
 * llama2.c raw arrays -> HF-layout weights (the export permutation: row 2i of
 * a head -> row i, row 2i + 1 -> row i + h/2), for running `ReferenceLlama`
 * on a llama2.c checkpoint without the format reader.
 *
 * @example
 * ```ts ignore
 * import { llama2cToHf } from "./llama2c_forward.ts";
 * const model = new ReferenceLlama(llama2cToHf(raw));
 * ```
 */
export function llama2cToHf(raw: Llama2cWeights): LlamaWeights {
  const p = raw.config;
  const headDim = p.dim / p.nHeads;
  const kvDim = p.nKvHeads * headDim;
  const t = (data: Float32Array, shape: number[]): HostTensor => ({ data, shape, dtype: "F32" });
  const slice = (a: Float32Array, l: number, size: number) => a.slice(l * size, (l + 1) * size);
  const shared = raw.wcls === raw.tokenEmbeddingTable;
  const config: LlamaConfig = {
    modelType: "llama",
    hiddenSize: p.dim,
    intermediateSize: p.hiddenDim,
    numLayers: p.nLayers,
    numHeads: p.nHeads,
    numKvHeads: p.nKvHeads,
    headDim,
    vocabSize: p.vocabSize,
    maxPositionEmbeddings: p.seqLen,
    rmsNormEps: p.rmsEps,
    ropeTheta: p.ropeTheta,
    tieWordEmbeddings: shared,
    attentionBias: false,
    bosTokenId: 1,
    eosTokenId: 2,
  };
  const layers: LayerWeights[] = [];
  const dd = p.dim * p.dim;
  const kd = kvDim * p.dim;
  const hd = p.hiddenDim * p.dim;
  for (let l = 0; l < p.nLayers; l++) {
    layers.push({
      attnNorm: t(slice(raw.rmsAttWeight, l, p.dim), [p.dim]),
      wq: t(permuteRows(slice(raw.wq, l, dd), p.dim, p.dim, headDim, false), [p.dim, p.dim]),
      wk: t(permuteRows(slice(raw.wk, l, kd), kvDim, p.dim, headDim, false), [kvDim, p.dim]),
      wv: t(slice(raw.wv, l, kd), [kvDim, p.dim]),
      wo: t(slice(raw.wo, l, dd), [p.dim, p.dim]),
      ffnNorm: t(slice(raw.rmsFfnWeight, l, p.dim), [p.dim]),
      wGate: t(slice(raw.w1, l, hd), [p.hiddenDim, p.dim]),
      wUp: t(slice(raw.w3, l, hd), [p.hiddenDim, p.dim]),
      wDown: t(slice(raw.w2, l, hd), [p.dim, p.hiddenDim]),
    });
  }
  const embed = t(raw.tokenEmbeddingTable, [p.vocabSize, p.dim]);
  return {
    config,
    embed,
    layers,
    norm: t(raw.rmsFinalWeight, [p.dim]),
    lmHead: shared ? embed : t(raw.wcls, [p.vocabSize, p.dim]),
  };
}
