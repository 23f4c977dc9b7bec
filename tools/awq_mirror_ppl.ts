/**
 * Diagnostic for AWQ quality: splits the perplexity cost of a quantization
 * into a part that grows with the size of the weight error (even in the
 * error) and a part that depends on its direction (odd). With E the
 * quantization error of the linear weights in the coordinates the checkpoint
 * stores them, it evaluates the model with W + E (the checkpoint) and with
 * W - E (every error mirrored), norms as in the checkpoint:
 * even = (d+ + d-) / 2, odd = (d+ - d-) / 2 for the perplexity changes d±.
 * A second-order (size) effect is even; a first-order one (the error's
 * projection on the loss gradient, whose sign is luck) is odd.
 *
 * AWQ's scales are recovered from the checkpoint: the RMSNorm-folded ones as
 * the ratio of FP to stored norm weight, the linear-folded ones (up -> down,
 * v -> o) by least squares per row of the scaled linear, taken as exactly 1
 * when every row estimates within 3% of 1 (an unscaled pair). Scaling into a
 * following linear is an identity for any scale, so "FP in the checkpoint's
 * coordinates" is exact whatever the estimate.
 *
 * Usage:
 * ```sh
 * deno run -A tools/awq_mirror_ppl.ts FP_MODEL TEXT CKPT [CKPT ...] [--layer all|N] [--fraction 0.5]
 * ```
 *
 * @example
 * ```sh
 * deno run -A tools/awq_mirror_ppl.ts ../shared/models/stories260K/stories260K.bin \
 *   ../shared/data/tinystories-eval.txt /tmp/s-rtn-w4g32 /tmp/s-awq-w4g32 --layer all
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { loadModel } from "../src/model/load_model.ts";
import type { HostTensor, LayerWeights, LlamaWeights } from "../src/model/weights.ts";
import { weightsPerplexity } from "./weights_perplexity.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    layer: { type: "string", default: "all" },
    fraction: { type: "string", default: "0.5" },
  },
});
const [fpPath, textPath, ...ckpts] = positionals;
if (!fpPath || !textPath || ckpts.length === 0) {
  console.error(
    "usage: awq_mirror_ppl.ts FP_MODEL TEXT CKPT [CKPT ...] [--layer all|N] [--fraction F]",
  );
  Deno.exit(2);
}
const fp = await loadModel(fpPath);
const F = fp.weights;
const c = F.config;
const chosen = values.layer === "all" ? F.layers.map((_, i) => i) : [Number(values.layer)];
const judge = await weightsPerplexity(fp.tokenizer, textPath, Number(values.fraction));
const ppl = (w: LlamaWeights) => judge.ppl(w);
const tensor = (data: Float32Array, shape: number[]): HostTensor => ({ data, shape, dtype: "F32" });

/** Per-output-row factor r with q[row] ≈ a[row] / r (least squares), or all 1. */
function rowScales(a: Float32Array, q: Float32Array, rows: number, cols: number): Float32Array {
  const s = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let num = 0, den = 0;
    for (let k = 0; k < cols; k++) {
      num += a[r * cols + k] ** 2;
      den += a[r * cols + k] * q[r * cols + k];
    }
    s[r] = den !== 0 ? num / den : 1;
  }
  if (s.every((v) => Math.abs(v - 1) < 0.03)) s.fill(1);
  return s;
}
const scaleCols = (w: Float32Array, s: Float32Array) => w.map((v, i) => v * s[i % s.length]);
const divRows = (w: Float32Array, s: Float32Array, cols: number) =>
  w.map((v, i) => v / s[Math.floor(i / cols)]);

/** Layer `fl`'s FP linears in the coordinates of the quantized layer `ql`. */
function fpInCheckpointCoords(fl: LayerWeights, ql: LayerWeights): Record<string, Float32Array> {
  const dim = c.hiddenSize, hidden = c.intermediateSize, qDim = c.numHeads * c.headDim;
  const sa = fl.attnNorm.data.map((v, i) => v / ql.attnNorm.data[i]);
  const sm = fl.ffnNorm.data.map((v, i) => v / ql.ffnNorm.data[i]);
  const v1 = scaleCols(fl.wv.data, sa);
  const sVo = c.numKvHeads === c.numHeads
    ? rowScales(v1, ql.wv.data, qDim, dim)
    : new Float32Array(qDim).fill(1);
  const up1 = scaleCols(fl.wUp.data, sm);
  const s2 = rowScales(up1, ql.wUp.data, hidden, dim);
  return {
    wq: scaleCols(fl.wq.data, sa),
    wk: scaleCols(fl.wk.data, sa),
    wv: divRows(v1, sVo, dim),
    wo: scaleCols(fl.wo.data, sVo),
    wGate: scaleCols(fl.wGate.data, sm),
    wUp: divRows(up1, s2, dim),
    wDown: scaleCols(fl.wDown.data, s2),
  };
}

const base = await ppl(F);
console.log(
  `layers ${values.layer}, perplexity on ${values.fraction} of ${textPath}: FP ${base.toFixed(4)}`,
);
console.log("checkpoint\tW+E\tW-E\teven (size)\todd (direction)");
for (const path of ckpts) {
  const Q = (await loadModel(path)).weights;
  const mirrored = F.layers.map((fl, i) => {
    if (!chosen.includes(i)) return fl;
    const ql = Q.layers[i];
    const ref = fpInCheckpointCoords(fl, ql);
    const out = { ...ql } as Record<string, unknown>; // norms and biases as stored
    for (const [k, r] of Object.entries(ref)) {
      const q = (ql[k as keyof LayerWeights] as HostTensor).data;
      out[k] = tensor(
        r.map((v, j) => 2 * v - q[j]),
        (fl[k as keyof LayerWeights] as HostTensor).shape,
      );
    }
    return out as unknown as LayerWeights;
  });
  const taken = F.layers.map((
    fl,
    i,
  ) => (chosen.includes(i) ? Q.layers[i] : fl));
  const plus = await ppl({ ...F, layers: taken });
  const minus = await ppl({ ...F, layers: mirrored });
  const dp = plus - base, dm = minus - base;
  console.log(
    [
      path,
      plus.toFixed(4),
      minus.toFixed(4),
      ((dp + dm) / 2).toFixed(4),
      ((dp - dm) / 2).toFixed(4),
    ]
      .join("\t"),
  );
}
judge.close();
