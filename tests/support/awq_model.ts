/**
 * Helpers for the AWQ checkpoint tests: quantize every linear of a model with
 * the reference quantizer, and rewrite a written checkpoint's tensors or
 * config to build corrupt cases.
 *
 * @example
 * ```ts
 * import { quantizeAllLinears } from "./awq_model.ts";
 * import { randomLlamaWeights, tinyConfig } from "./random_llama.ts";
 * const w = randomLlamaWeights(tinyConfig("llama"), 1);
 * const q = quantizeAllLinears(w, { bits: 4, groupSize: 32, zeroPoint: true });
 * q.size; // 14
 * ```
 * @module
 */

import { join } from "node:path";
import { awqModuleNames } from "../../src/formats/awq_checkpoint.ts";
import { openSafetensors } from "../../src/formats/safetensors_read.ts";
import { type TensorToWrite, writeSafetensors } from "../../src/formats/safetensors_write.ts";
import type { LayerWeights, LlamaWeights } from "../../src/model/weights.ts";
import { quantizeLinear } from "../../src/quant/quantizer.ts";
import type { QuantizedLinear, QuantSettings } from "../../src/quant/types.ts";

const FIELDS: Record<string, keyof LayerWeights> = {
  "self_attn.q_proj": "wq",
  "self_attn.k_proj": "wk",
  "self_attn.v_proj": "wv",
  "self_attn.o_proj": "wo",
  "mlp.gate_proj": "wGate",
  "mlp.up_proj": "wUp",
  "mlp.down_proj": "wDown",
};

/** The layer field a module name like `model.layers.1.mlp.up_proj` refers to. */
export function moduleField(name: string): { layer: number; field: keyof LayerWeights } {
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name)!;
  return { layer: Number(m[1]), field: FIELDS[m[2]] };
}

/** Every linear of `w` quantized with `quantizeLinear`, by module name. */
export function quantizeAllLinears(
  w: LlamaWeights,
  s: QuantSettings,
): Map<string, QuantizedLinear> {
  const out = new Map<string, QuantizedLinear>();
  for (const name of awqModuleNames(w.config)) {
    const { layer, field } = moduleField(name);
    const t = w.layers[layer][field]!;
    out.set(name, quantizeLinear(t.data, t.shape[0], t.shape[1], s));
  }
  return out;
}

/** Rewrites `dir/model.safetensors` through `edit` (which may drop, add or change tensors). */
export async function rewriteTensors(
  dir: string,
  edit: (tensors: TensorToWrite[]) => TensorToWrite[],
): Promise<void> {
  const path = join(dir, "model.safetensors");
  const st = await openSafetensors(path);
  const tensors: TensorToWrite[] = [];
  for (const [name, e] of st.tensors) {
    const raw = await st.read(name);
    tensors.push({ name, dtype: e.dtype, shape: e.shape, data: raw.bytes });
  }
  const metadata = st.metadata;
  st.close();
  await writeSafetensors(path, edit(tensors), metadata);
}

/** Rewrites `dir/config.json` through `edit`. */
export async function rewriteConfig(
  dir: string,
  edit: (json: Record<string, unknown>) => void,
): Promise<void> {
  const path = join(dir, "config.json");
  const json = JSON.parse(await Deno.readTextFile(path));
  edit(json);
  await Deno.writeTextFile(path, JSON.stringify(json));
}
