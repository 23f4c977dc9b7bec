/**
 * TypeScript references of the batched decode kernels
 * (shaders/rope_store.wgsl, attention.wgsl,
 * attention_rows.wgsl, over rows of several slots): the single-sequence references of
 * `reference_ops.ts` applied row by row, each row at its own slot and
 * position in [slots, maxSeq, kvDim] caches.
 *
 * @example
 * ```ts
 * import { rowPositions } from "./reference_batched.ts";
 * rowPositions([[1, 0], [0, 2]], [4, 9]); // [9, 6]
 * ```
 * @module
 */

import { attention, ropeRotateHalf } from "../../src/model/reference_ops.ts";

/** A batch row: [slot, offset]; its position is the slot's pos + offset. */
export type BatchRow = [slot: number, offset: number];

/** The position of each row given each slot's state.pos. */
export function rowPositions(rows: readonly BatchRow[], slotPos: readonly number[]): number[] {
  return rows.map(([s, o]) => slotPos[s] + o);
}

/** Geometry of the batched references. */
export interface BatchShape {
  nHeads: number;
  nKv: number;
  headDim: number;
  maxSeq: number;
}

/**
 * RoPE + KV store for a batch: q rotated per row at its position, k rotated
 * and v copied into row r's slot region at its position (rows at or past
 * maxSeq are left alone). Returns new q and caches.
 */
export function ropeStoreBatchedRef(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  rows: readonly BatchRow[],
  slotPos: readonly number[],
  shape: BatchShape,
  theta: number,
): { q: Float32Array; kCache: Float32Array; vCache: Float32Array } {
  const qw = shape.nHeads * shape.headDim;
  const kvDim = shape.nKv * shape.headDim;
  const qOut = q.slice();
  const kOut = kCache.slice();
  const vOut = vCache.slice();
  rowPositions(rows, slotPos).forEach((pos, t) => {
    if (pos >= shape.maxSeq) return;
    qOut.set(ropeRotateHalf(q.subarray(t * qw, (t + 1) * qw), [pos], shape.headDim, theta), t * qw);
    const kRow = ropeRotateHalf(
      k.subarray(t * kvDim, (t + 1) * kvDim),
      [pos],
      shape.headDim,
      theta,
    );
    const dst = (rows[t][0] * shape.maxSeq + pos) * kvDim;
    kOut.set(kRow, dst);
    vOut.set(v.subarray(t * kvDim, (t + 1) * kvDim), dst);
  });
  return { q: qOut, kCache: kOut, vCache: vOut };
}

/** Causal attention per row over its slot's cache rows 0..position (f64 reference). */
export function attentionBatchedRef(
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  rows: readonly BatchRow[],
  slotPos: readonly number[],
  shape: BatchShape,
): Float32Array {
  const qw = shape.nHeads * shape.headDim;
  const kvDim = shape.nKv * shape.headDim;
  const heads = { numHeads: shape.nHeads, numKvHeads: shape.nKv, headDim: shape.headDim };
  const out = new Float32Array(q.length);
  rowPositions(rows, slotPos).forEach((pos, t) => {
    const nKeys = Math.min(pos + 1, shape.maxSeq);
    const base = rows[t][0] * shape.maxSeq * kvDim;
    const ks = kCache.subarray(base, base + nKeys * kvDim);
    const vs = vCache.subarray(base, base + nKeys * kvDim);
    out.set(attention(q.subarray(t * qw, (t + 1) * qw), ks, vs, [nKeys - 1], heads), t * qw);
  });
  return out;
}
