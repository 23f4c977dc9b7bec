/**
 * One decoder layer in plain TypeScript over whole sequences (each of
 * `seqLen` tokens at positions 0..seqLen-1, no KV cache): the reference for
 * AWQ's per-layer GPU forward over calibration windows, and for diagnostics
 * that compare a quantized layer's block outputs with full precision.
 *
 * @example
 * ```ts ignore
 * const r = referenceLayer(config, weights.layers[0], x, 256); // x: [N, dim], N = k · 256
 * console.log(r.attention.length, r.mlp.length, r.out.length); // N·dim each
 * ```
 * @module
 */

import type { LlamaConfig } from "./config.ts";
import { attention, matmul, rmsnorm, ropeRotateHalf, siluMul } from "./reference_ops.ts";
import type { LayerWeights } from "./weights.ts";

/** A layer's outputs for every token. */
export interface ReferenceLayerOutput {
  /** The attention block's output (after o_proj, before the residual add) [N, dim]. */
  attention: Float32Array;
  /** The MLP block's output (after down_proj, before the residual add) [N, dim]. */
  mlp: Float32Array;
  /** The layer's output x + attention + mlp [N, dim]. */
  out: Float32Array;
}

/** Runs layer `l` over `x` [N, dim], N a multiple of `seqLen`; see the module doc. */
export function referenceLayer(
  c: LlamaConfig,
  l: LayerWeights,
  x: Float32Array,
  seqLen: number,
): ReferenceLayerOutput {
  const dim = c.hiddenSize, qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
  const N = x.length / dim;
  const heads = { numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim };
  const pos = Array.from({ length: seqLen }, (_, t) => t);
  const xb = rmsnorm(x, l.attnNorm.data, c.rmsNormEps);
  const q = matmul(xb, l.wq.data, dim, l.bq?.data);
  const k = matmul(xb, l.wk.data, dim, l.bk?.data);
  const v = matmul(xb, l.wv.data, dim, l.bv?.data);
  const att = new Float32Array(N * qDim);
  for (let s = 0; s < N / seqLen; s++) {
    const rows = (w: number) => [s * seqLen * w, (s + 1) * seqLen * w] as const;
    const qs = ropeRotateHalf(q.slice(...rows(qDim)), pos, c.headDim, c.ropeTheta);
    const ks = ropeRotateHalf(k.slice(...rows(kvDim)), pos, c.headDim, c.ropeTheta);
    att.set(attention(qs, ks, v.slice(...rows(kvDim)), pos, heads), s * seqLen * qDim);
  }
  const o = matmul(att, l.wo.data, qDim);
  const h = x.map((val, i) => val + o[i]);
  const xb2 = rmsnorm(h, l.ffnNorm.data, c.rmsNormEps);
  const act = siluMul(matmul(xb2, l.wGate.data, dim), matmul(xb2, l.wUp.data, dim));
  const m = matmul(act, l.wDown.data, c.intermediateSize);
  return { attention: o, mlp: m, out: h.map((val, i) => val + m[i]) };
}
