/**
 * A plain TypeScript, f32 Llama-family forward pass on the CPU: the reference
 * the WebGPU model is tested against. It reads top to bottom like llama2.c's
 * `forward()`, but with Hugging Face semantics (rotate_half RoPE, optional
 * q/k/v biases, untied lm_head) and a batch of tokens per call.
 *
 * @module
 */

import { FormatError, RequestError } from "../errors.ts";
import type { HostTensor, LlamaWeights } from "./weights.ts";
import { attention, matmul, rmsnorm, ropeRotateHalf, siluMul } from "./reference_ops.ts";

/** `x += y`, elementwise (the residual connection). */
function addInto(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

function checkSize(tensor: HostTensor | undefined, size: number, name: string): void {
  if (tensor === undefined) return;
  if (tensor.data.length !== size) {
    throw new FormatError(`${name}: has ${tensor.data.length} values, expected ${size}`);
  }
}

/**
 * The CPU reference model. Keeps a key/value cache, so a prompt can be
 * prefilled in one call and then continued token by token.
 *
 * @example
 * ```ts ignore
 * import { ReferenceLlama } from "./reference_llama.ts";
 * const model = new ReferenceLlama(weights);          // weights: LlamaWeights
 * const prompt = model.forward([1, 403, 407], 0);     // logits [3, vocab]
 * const next = model.forward([261], 3);               // logits [1, vocab]
 * model.reset();
 * ```
 */
export class ReferenceLlama {
  /** The weights this model runs (HF layout). */
  readonly weights: LlamaWeights;
  /** Number of positions the key/value cache holds. */
  readonly maxSeq: number;
  #kCache: Float32Array[];
  #vCache: Float32Array[];
  #length = 0;

  /**
   * Checks the weight shapes against the config and allocates the cache.
   * `maxSeq` defaults to the config's context length.
   */
  constructor(weights: LlamaWeights, maxSeq?: number) {
    const c = weights.config;
    this.maxSeq = maxSeq ?? c.maxPositionEmbeddings;
    if (!Number.isInteger(this.maxSeq) || this.maxSeq <= 0) {
      throw new RequestError(`ReferenceLlama: maxSeq ${this.maxSeq} is not a positive integer`);
    }
    const dim = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const hidden = c.intermediateSize;
    if (weights.layers.length !== c.numLayers) {
      throw new FormatError(`weights: ${weights.layers.length} layers, config says ${c.numLayers}`);
    }
    checkSize(weights.embed, c.vocabSize * dim, "embed");
    checkSize(weights.norm, dim, "norm");
    checkSize(weights.lmHead, c.vocabSize * dim, "lmHead");
    weights.layers.forEach((l, i) => {
      const p = `layers.${i}`;
      checkSize(l.attnNorm, dim, `${p}.attnNorm`);
      checkSize(l.wq, qDim * dim, `${p}.wq`);
      checkSize(l.wk, kvDim * dim, `${p}.wk`);
      checkSize(l.wv, kvDim * dim, `${p}.wv`);
      checkSize(l.wo, dim * qDim, `${p}.wo`);
      checkSize(l.bq, qDim, `${p}.bq`);
      checkSize(l.bk, kvDim, `${p}.bk`);
      checkSize(l.bv, kvDim, `${p}.bv`);
      checkSize(l.ffnNorm, dim, `${p}.ffnNorm`);
      checkSize(l.wGate, hidden * dim, `${p}.wGate`);
      checkSize(l.wUp, hidden * dim, `${p}.wUp`);
      checkSize(l.wDown, dim * hidden, `${p}.wDown`);
    });
    this.weights = weights;
    this.#kCache = weights.layers.map(() => new Float32Array(this.maxSeq * kvDim));
    this.#vCache = weights.layers.map(() => new Float32Array(this.maxSeq * kvDim));
  }

  /** Number of positions currently held in the cache. */
  get length(): number {
    return this.#length;
  }

  /** Forgets the cache; the next call must start at position 0. */
  reset(): void {
    this.#length = 0;
  }

  /**
   * Runs `tokens` at positions `startPos, startPos+1, ...` and returns their
   * logits, `[tokens.length, vocab]` row-major. Positions before `startPos`
   * must already be in the cache (`startPos <= length`); starting earlier than
   * `length` rewinds the cache.
   */
  forward(tokens: readonly number[], startPos: number): Float32Array {
    const w = this.weights;
    const c = w.config;
    const dim = c.hiddenSize;
    const kvDim = c.numKvHeads * c.headDim;
    const T = tokens.length;
    if (T === 0) throw new RequestError("forward: no tokens");
    if (!Number.isInteger(startPos) || startPos < 0 || startPos > this.#length) {
      throw new RequestError(`forward: startPos ${startPos} but ${this.#length} cached`);
    }
    if (startPos + T > this.maxSeq) {
      throw new RequestError(`forward: ${startPos} + ${T} tokens exceed maxSeq ${this.maxSeq}`);
    }
    const positions = tokens.map((_, t) => startPos + t);

    // Token embedding.
    const x = new Float32Array(T * dim);
    tokens.forEach((tok, t) => {
      if (!Number.isInteger(tok) || tok < 0 || tok >= c.vocabSize) {
        throw new RequestError(`forward: token ${tok} is outside [0, ${c.vocabSize})`);
      }
      x.set(w.embed.data.subarray(tok * dim, (tok + 1) * dim), t * dim);
    });

    const heads = { numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim };
    const cacheEnd = (startPos + T) * kvDim;
    for (let l = 0; l < c.numLayers; l++) {
      const layer = w.layers[l];
      const kCache = this.#kCache[l];
      const vCache = this.#vCache[l];

      // Attention: norm, q/k/v (+ bias), RoPE, cache, attend, output projection.
      const xb = rmsnorm(x, layer.attnNorm.data, c.rmsNormEps);
      const q = matmul(xb, layer.wq.data, dim, layer.bq?.data);
      const k = matmul(xb, layer.wk.data, dim, layer.bk?.data);
      const v = matmul(xb, layer.wv.data, dim, layer.bv?.data);
      ropeRotateHalf(q, positions, c.headDim, c.ropeTheta, q);
      ropeRotateHalf(k, positions, c.headDim, c.ropeTheta, k);
      kCache.set(k, startPos * kvDim);
      vCache.set(v, startPos * kvDim);
      const att = attention(
        q,
        kCache.subarray(0, cacheEnd),
        vCache.subarray(0, cacheEnd),
        positions,
        heads,
      );
      addInto(x, matmul(att, layer.wo.data, c.numHeads * c.headDim));

      // Feed-forward: norm, down(silu(gate) * up).
      const xb2 = rmsnorm(x, layer.ffnNorm.data, c.rmsNormEps);
      const gate = matmul(xb2, layer.wGate.data, dim);
      const up = matmul(xb2, layer.wUp.data, dim);
      const h = siluMul(gate, up, gate);
      addInto(x, matmul(h, layer.wDown.data, c.intermediateSize));
    }
    this.#length = startPos + T;

    // Final norm and classifier.
    rmsnorm(x, w.norm.data, c.rmsNormEps, x);
    return matmul(x, w.lmHead.data, dim);
  }
}
