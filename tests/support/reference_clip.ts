/**
 * Plain TypeScript reference of AWQ's clip search (docs/awq.md step 5 and
 * shaders/awq_clip.wgsl): for each (row, group) of a weight W [rows, cols],
 * try caps `absmax * (1 - i/20)` for i in 0..nShrink-1, clamp the group to
 * [-cap, cap], quantize it with the reference quantizer (f16-rounded scale),
 * and score the cap by `Σ_t (x[t, group] · (W - Q(W))[row, group])²` over the
 * n sampled tokens x [n, cols]. The first cap with the least error wins.
 * Caps are computed in f32 like the shader; errors are accumulated in f64.
 *
 * @example
 * ```ts ignore
 * const r = referenceClipSearch(w, x, rows, cols, n, { bits: 4, groupSize: 32, zeroPoint: true });
 * r.best; // Float32Array [rows * nGroups] of caps
 * ```
 * @module
 */

import { fakeQuantize, groupCount } from "../../src/quant/quantizer.ts";
import type { QuantSettings } from "../../src/quant/types.ts";

/** Result of {@link referenceClipSearch}. */
export interface ClipSearchResult {
  /** Best cap per (row, group), [rows, nGroups]. */
  best: Float32Array;
  /** Index of the best shrink per (row, group). */
  bestIndex: Int32Array;
  /** Errors of every candidate, [rows * nGroups][nShrink]. */
  errors: Float64Array[];
  /** Candidate caps, [rows * nGroups][nShrink]. */
  caps: Float32Array[];
  /** Groups per row. */
  nGroups: number;
}

/** The reference clip search; see the module doc. */
export function referenceClipSearch(
  w: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
  n: number,
  settings: QuantSettings,
  nShrink = 10,
): ClipSearchResult {
  const fr = Math.fround;
  const nGroups = groupCount(cols, settings.groupSize);
  const g = settings.groupSize === 0 ? cols : settings.groupSize;
  const best = new Float32Array(rows * nGroups);
  const bestIndex = new Int32Array(rows * nGroups);
  const errors: Float64Array[] = [];
  const caps: Float32Array[] = [];
  for (let r = 0; r < rows; r++) {
    for (let gi = 0; gi < nGroups; gi++) {
      const c0 = gi * g;
      const c1 = Math.min(cols, c0 + g);
      const len = c1 - c0;
      const group = w.slice(r * cols + c0, r * cols + c1);
      let absmax = 0;
      for (const v of group) absmax = Math.max(absmax, Math.abs(v));
      const errs = new Float64Array(nShrink);
      const cs = new Float32Array(nShrink);
      let bestErr = Infinity;
      let bestI = 0;
      for (let i = 0; i < nShrink; i++) {
        const cap = fr(absmax * fr(1 - fr(i / 20)));
        cs[i] = cap;
        const dq = fakeQuantize(
          group,
          1,
          len,
          { ...settings, groupSize: 0 },
          new Float32Array([cap]),
        );
        let err = 0;
        for (let t = 0; t < n; t++) {
          let diff = 0;
          for (let c = 0; c < len; c++) diff += x[t * cols + c0 + c] * (group[c] - dq[c]);
          err += diff * diff;
        }
        errs[i] = err;
        if (err < bestErr) {
          bestErr = err;
          bestI = i;
        }
      }
      const idx = r * nGroups + gi;
      best[idx] = cs[bestI];
      bestIndex[idx] = bestI;
      errors.push(errs);
      caps.push(cs);
    }
  }
  return { best, bestIndex, errors, caps, nGroups };
}
