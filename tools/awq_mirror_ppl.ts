/**
 * Diagnostic for AWQ quality: splits the perplexity cost of quantizing one
 * layer's MLP into a part that grows with the size of the weight error (even
 * in the error) and a part that depends on its direction (odd). With E the
 * quantization error of the MLP weights, in the coordinates the checkpoint
 * stores them (AWQ's scales are estimated from the folded RMSNorm weight and,
 * for up -> down, by least squares per row of up_proj, taken as exactly 1 when
 * every row estimates within 3% of 1; the up -> down scaling
 * is an identity for any scale, so "FP in scaled coordinates" is exact), it
 * evaluates the model with W + E (the checkpoint's MLP) and with W - E (the
 * mirrored error), every other weight full precision:
 * even = (d+ + d-) / 2, odd = (d+ - d-) / 2 for perplexity changes d±.
 *
 * Usage:
 * ```sh
 * deno run -A tools/awq_mirror_ppl.ts FP_MODEL TEXT CKPT [CKPT ...] [--layer 0] [--fraction 0.5]
 * ```
 *
 * @example
 * ```sh
 * deno run -A tools/awq_mirror_ppl.ts ../shared/models/stories260K/stories260K.bin \
 *   ../shared/data/tinystories-eval.txt /tmp/s-rtn-w4g32 /tmp/s-awq-w4g32 --layer 0
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { acquireGpu } from "../src/gpu/device.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import { loadModel } from "../src/model/load_model.ts";
import type { HostTensor, LayerWeights, LlamaWeights } from "../src/model/weights.ts";
import { evaluatePerplexity } from "../src/engine/perplexity.ts";
import { buildTokenStream, windows } from "../src/engine/perplexity_stream.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    layer: { type: "string", default: "0" },
    fraction: { type: "string", default: "0.5" },
  },
});
const [fpPath, textPath, ...ckpts] = positionals;
if (!fpPath || !textPath || ckpts.length === 0) {
  console.error(
    "usage: awq_mirror_ppl.ts FP_MODEL TEXT CKPT [CKPT ...] [--layer L] [--fraction F]",
  );
  Deno.exit(2);
}
const fp = await loadModel(fpPath);
const F = fp.weights;
const L = Number(values.layer);
const text = await Deno.readTextFile(textPath);
const stream = buildTokenStream(
  text.slice(0, Math.floor(text.length * Number(values.fraction))),
  fp.tokenizer,
);
const gpu = await acquireGpu();
async function ppl(w: LlamaWeights): Promise<number> {
  const m = await GpuLlama.load(gpu, w, { weightDType: "f32" });
  try {
    return (await evaluatePerplexity(m, windows(stream, m.maxSeq))).ppl;
  } finally {
    m.destroy();
  }
}
const tensor = (data: Float32Array, shape: number[]): HostTensor => ({ data, shape, dtype: "F32" });
const withMlp = (mlp: Partial<LayerWeights>): LlamaWeights => ({
  ...F,
  layers: F.layers.map((l, i) => (i === L ? { ...l, ...mlp } : l)),
});
const mirror = (ref: Float32Array, q: Float32Array) => ref.map((v, i) => 2 * v - q[i]);

const dim = F.config.hiddenSize;
const hidden = F.config.intermediateSize;
const fl = F.layers[L];
const base = await ppl(F);
console.log(
  `layer ${L} MLP, perplexity on ${values.fraction} of ${textPath}: FP ${base.toFixed(4)}`,
);
console.log("checkpoint\tW+E\tW-E\teven\todd");
for (const path of ckpts) {
  const ql = (await loadModel(path)).weights.layers[L];
  // FP weights in the checkpoint's coordinates.
  const s1 = fl.ffnNorm.data.map((v, i) => v / ql.ffnNorm.data[i]);
  const gate = fl.wGate.data.map((v, i) => v * s1[i % dim]);
  const up1 = fl.wUp.data.map((v, i) => v * s1[i % dim]);
  const s2 = new Float32Array(hidden);
  for (let r = 0; r < hidden; r++) {
    let num = 0, den = 0;
    for (let c = 0; c < dim; c++) {
      const a = up1[r * dim + c];
      num += a * a;
      den += a * ql.wUp.data[r * dim + c];
    }
    s2[r] = den !== 0 ? num / den : 1;
  }
  // An unscaled up -> down pair (RTN, or AWQ keeping s = 1) estimates to 1 within the
  // quantization noise (about 1-2%): use exactly 1 then.
  if (s2.every((v) => Math.abs(v - 1) < 0.03)) s2.fill(1);
  const up = up1.map((v, i) => v / s2[Math.floor(i / dim)]);
  const down = fl.wDown.data.map((v, i) => v * s2[i % hidden]);
  const plus = await ppl(
    withMlp({ ffnNorm: ql.ffnNorm, wGate: ql.wGate, wUp: ql.wUp, wDown: ql.wDown }),
  );
  const minus = await ppl(withMlp({
    ffnNorm: ql.ffnNorm,
    wGate: tensor(mirror(gate, ql.wGate.data), fl.wGate.shape),
    wUp: tensor(mirror(up, ql.wUp.data), fl.wUp.shape),
    wDown: tensor(mirror(down, ql.wDown.data), fl.wDown.shape),
  }));
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
gpu.destroy();
