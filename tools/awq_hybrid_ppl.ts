/**
 * Diagnostic for AWQ quality: perplexity of hybrids of a full-precision model
 * and two quantized checkpoints A and B (e.g. RTN and AWQ of the same
 * settings): for each layer, the model with only that layer taken from A or
 * from B, and with only its attention block or only its MLP block taken from
 * A or B (AWQ folds scales within a block, so block hybrids are exact). Shows
 * where a quantization costs perplexity.
 *
 * Usage:
 * ```sh
 * deno run -A tools/awq_hybrid_ppl.ts FP_MODEL TEXT CKPT_A CKPT_B [--fraction 0.5] [--layers 0,1] [--blocks]
 * ```
 *
 * @example
 * ```sh
 * deno run -A tools/awq_hybrid_ppl.ts ../shared/models/stories260K/stories260K.bin \
 *   ../shared/data/tinystories-eval.txt /tmp/s-rtn-w4g32 /tmp/s-awq-w4g32 --fraction 0.5
 * ```
 * @module
 */

import { parseArgs } from "node:util";
import { loadModel } from "../src/model/load_model.ts";
import type { LayerWeights, LlamaWeights } from "../src/model/weights.ts";
import { weightsPerplexity } from "./weights_perplexity.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    fraction: { type: "string", default: "1" },
    layers: { type: "string" },
    blocks: { type: "boolean", default: false },
  },
});
const [fpPath, textPath, aPath, bPath] = positionals;
if (!fpPath || !textPath || !aPath || !bPath) {
  console.error(
    "usage: awq_hybrid_ppl.ts FP_MODEL TEXT CKPT_A CKPT_B [--fraction F] [--layers 0,1] [--blocks]",
  );
  Deno.exit(2);
}
const fp = await loadModel(fpPath);
const F = fp.weights;
const A = (await loadModel(aPath)).weights;
const B = (await loadModel(bPath)).weights;
const judge = await weightsPerplexity(fp.tokenizer, textPath, Number(values.fraction));
const ppl = async (w: LlamaWeights) => (await judge.ppl(w)).toFixed(4);
const ATTN: (keyof LayerWeights)[] = ["attnNorm", "wq", "wk", "wv", "wo", "bq", "bk", "bv"];
const MLP: (keyof LayerWeights)[] = ["ffnNorm", "wGate", "wUp", "wDown"];
/** F with layer `l`'s fields `fields` taken from Q. */
function hybrid(Q: LlamaWeights, l: number, fields: (keyof LayerWeights)[]): LlamaWeights {
  const layers = F.layers.map((layer, i) => {
    if (i !== l) return layer;
    const o = { ...layer } as Record<string, unknown>;
    for (const f of fields) o[f] = Q.layers[i][f];
    return o as unknown as LayerWeights;
  });
  return { ...F, layers };
}
const which = values.layers?.split(",").map(Number) ?? F.layers.map((_, i) => i);
console.log(`perplexity on ${values.fraction} of ${textPath}; A = ${aPath}, B = ${bPath}`);
console.log(`FP ${await ppl(F)}  A ${await ppl(A)}  B ${await ppl(B)}`);
for (const l of which) {
  const all = [...ATTN, ...MLP];
  console.log(
    `layer ${l} only: A ${await ppl(hybrid(A, l, all))}  B ${await ppl(hybrid(B, l, all))}`,
  );
  if (values.blocks) {
    console.log(
      `  attention only: A ${await ppl(hybrid(A, l, ATTN))}  B ${await ppl(hybrid(B, l, ATTN))}`,
    );
    console.log(
      `  MLP only:       A ${await ppl(hybrid(A, l, MLP))}  B ${await ppl(hybrid(B, l, MLP))}`,
    );
  }
}
judge.close();
