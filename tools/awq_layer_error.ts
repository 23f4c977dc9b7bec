/**
 * Diagnostic for AWQ quality: per decoder layer, the error of quantized
 * checkpoints' attention block and whole layer against full precision, with
 * full-precision inputs (what AWQ's scale search minimises), measured on
 * windows of a text (use the calibration text, never the evaluation text,
 * when judging the search itself). Also the mean error vector (a bias) and
 * the error weighted by what the next layer reads (its RMSNorm weight² /
 * rms(x)²).
 *
 * Usage:
 * ```sh
 * deno run -A tools/awq_layer_error.ts FP_MODEL TEXT CKPT [CKPT ...] [--windows 8] [--seqlen 128]
 * ```
 *
 * @example
 * ```sh
 * deno run -A tools/awq_layer_error.ts ../shared/models/stories260K/stories260K.bin \
 *   ../shared/data/tinystories-calib.txt /tmp/s-rtn-w4g32 /tmp/s-awq-w4g32
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { loadModel } from "../src/model/load_model.ts";
import { referenceLayer } from "../src/model/reference_layer.ts";
import type { LayerWeights, LlamaWeights } from "../src/model/weights.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    windows: { type: "string", default: "8" },
    seqlen: { type: "string", default: "128" },
  },
});
const [fpPath, textPath, ...ckpts] = positionals;
if (!fpPath || !textPath || ckpts.length === 0) {
  console.error(
    "usage: awq_layer_error.ts FP_MODEL TEXT CKPT [CKPT ...] [--windows N] [--seqlen L]",
  );
  Deno.exit(2);
}
const nWin = Number(values.windows);
const seqlen = Number(values.seqlen);
const fp = await loadModel(fpPath);
const ids = fp.tokenizer.encode(await Deno.readTextFile(textPath), { bos: true });
const wins = Array.from({ length: nWin }, (_, i) => ids.slice(i * seqlen, (i + 1) * seqlen));
const c = fp.weights.config;
const dim = c.hiddenSize;

/** One layer's attention output, MLP output and layer output for one window x. */
function layerForward(L: LayerWeights, x: Float32Array, T: number) {
  const r = referenceLayer(c, L, x, T);
  return { o: r.attention, m: r.mlp, out: r.out };
}

interface Stats {
  attn: number;
  mlp: number;
  layer: number;
  bias: number;
  weighted: number;
}
const models: [string, LlamaWeights][] = [];
for (const p of ckpts) models.push([p, (await loadModel(p)).weights]);
const acc = new Map<string, Stats[]>(
  models.map((
    [n],
  ) => [
    n,
    Array.from(
      { length: c.numLayers },
      () => ({ attn: 0, mlp: 0, layer: 0, bias: 0, weighted: 0 }),
    ),
  ]),
);
for (const win of wins) {
  const T = win.length;
  let x: Float32Array = new Float32Array(T * dim);
  win.forEach((t, i) => x.set(fp.weights.embed.data.subarray(t * dim, (t + 1) * dim), i * dim));
  for (let l = 0; l < c.numLayers; l++) {
    const ref = layerForward(fp.weights.layers[l], x, T);
    const nextNorm = l + 1 < c.numLayers
      ? fp.weights.layers[l + 1].attnNorm.data
      : fp.weights.norm.data;
    for (const [name, w] of models) {
      const r = layerForward(w.layers[l], x, T);
      const s = acc.get(name)![l];
      const mean = new Float64Array(dim);
      let ea = 0, em = 0, el = 0, ew = 0;
      for (let t = 0; t < T; t++) {
        let ss = 0;
        for (let i = 0; i < dim; i++) ss += ref.out[t * dim + i] ** 2;
        const inv = 1 / (ss / dim + c.rmsNormEps);
        for (let i = 0; i < dim; i++) {
          const j = t * dim + i;
          const d = r.out[j] - ref.out[j];
          ea += (r.o[j] - ref.o[j]) ** 2;
          em += (r.m[j] - ref.m[j]) ** 2;
          el += d * d;
          ew += d * d * nextNorm[i] ** 2 * inv;
          mean[i] += d / T;
        }
      }
      const n = T * dim * nWin;
      s.attn += ea / n;
      s.mlp += em / n;
      s.layer += el / n;
      s.weighted += ew / n;
      s.bias += mean.reduce((a, b) => a + b * b, 0) / dim / nWin;
    }
    x = ref.out;
  }
}
console.log(`mean squared error vs FP with FP inputs, ${nWin} x ${seqlen} tokens of ${textPath}`);
console.log("checkpoint\tlayer\tattention\tmlp\tlayer\tbias\tnext-norm weighted");
for (const [name, rows] of acc) {
  rows.forEach((s, l) =>
    console.log(
      [name, l, s.attn, s.mlp, s.layer, s.bias, s.weighted].map((v) =>
        typeof v === "number" && !Number.isInteger(v) ? v.toExponential(3) : v
      ).join("\t"),
    )
  );
}
