import assert from "node:assert/strict";
import { RequestError } from "../src/errors.ts";
import { requireInt4, withWeightDType } from "../src/engine/open_inference_model.ts";
import { quantizedTensor } from "../src/model/weights.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import { dequantizeLinear } from "../src/quant/quantizer.ts";
import type { QuantSettings } from "../src/quant/types.ts";
import { moduleField, quantizeAllLinears } from "./support/awq_model.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";

/** `w` with every linear quantized with `s`, except `skip` (left as it is). */
function quantized(w: LlamaWeights, s: QuantSettings, skip?: string): LlamaWeights {
  const out: LlamaWeights = { ...w, layers: w.layers.map((l) => ({ ...l })) };
  for (const [name, ql] of quantizeAllLinears(w, s)) {
    if (name === skip) continue;
    const { layer, field } = moduleField(name);
    out.layers[layer][field] = quantizedTensor(ql, dequantizeLinear) as never;
  }
  return out;
}

const w = randomLlamaWeights(tinyConfig("llama", { hiddenSize: 64, intermediateSize: 96 }), 5);
const g32: QuantSettings = { bits: 4, groupSize: 32, zeroPoint: true };

const rejects = (weights: LlamaWeights, ...parts: string[]) =>
  assert.throws(
    () => requireInt4(weights),
    (e: unknown) => e instanceof RequestError && parts.every((p) => e.message.includes(p)),
  );

Deno.test("requireInt4 accepts 4-bit linears in groups of 32 or per channel", () => {
  requireInt4(quantized(w, g32));
  requireInt4(quantized(w, { ...g32, groupSize: 0 }));
  assert.equal(
    withWeightDType(quantized(w, g32), "int4").layers[1].wDown.quantized?.settings.bits,
    4,
  );
});

Deno.test("requireInt4 names an unquantized linear, and withWeightDType('int4') refuses it", () => {
  rejects(w, "--dtype int4", "model.layers.0.self_attn.q_proj.weight", "not a 4-bit AWQ tensor");
  const one = quantized(w, g32, "model.layers.1.mlp.down_proj");
  rejects(one, "model.layers.1.mlp.down_proj.weight");
  assert.throws(() => withWeightDType(one, "int4"), RequestError);
});

Deno.test("requireInt4 names 8-bit linears and groups the int4 kernels cannot take", () => {
  rejects(quantized(w, { ...g32, bits: 8 }), "model.layers.0.self_attn.q_proj.weight", "8-bit");
  rejects(quantized(w, { ...g32, groupSize: 48 }), "groups of 48");
});
