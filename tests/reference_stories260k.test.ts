import assert from "node:assert/strict";
import { readLlama2c } from "../src/formats/llama2c.ts";
import { ReferenceLlama } from "../src/model/reference_llama.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import { llama2cToHf, Llama2cTransformer } from "./support/llama2c_forward.ts";
import { readLlama2cRaw } from "./support/llama2c_raw.ts";

// Reference figures from ../shared/models/README.md.
const MODEL = new URL("../../shared/models/stories260K/stories260K.bin", import.meta.url);
const PROMPT = [1, 403, 407, 261, 378]; // "Once upon a time"
const CONTINUATION = [432, 383, 286, 261, 376, 298, 315, 421, 395, 317];

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

const haveModel = exists(MODEL);
if (!haveModel) console.warn(`skipping stories260K tests: ${MODEL.pathname} not found`);

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Greedy decoding with ReferenceLlama: prefill the prompt, then one token per call. */
function greedyReference(weights: LlamaWeights, prompt: number[], steps: number): number[] {
  const model = new ReferenceLlama(weights);
  const vocab = weights.config.vocabSize;
  const logits = model.forward(prompt, 0);
  const out = [argmax(logits.subarray((prompt.length - 1) * vocab))];
  while (out.length < steps) {
    const pos = prompt.length + out.length - 1;
    out.push(argmax(model.forward([out[out.length - 1]], pos)));
  }
  return out;
}

Deno.test({
  name: "llama2.c port greedily continues stories260K's 'Once upon a time' as README says",
  ignore: !haveModel,
  fn: async () => {
    const t = new Llama2cTransformer(await readLlama2cRaw(MODEL));
    let logits: Float32Array = new Float32Array(0);
    PROMPT.forEach((tok, pos) => (logits = t.forward(tok, pos)));
    const out: number[] = [];
    for (let pos = PROMPT.length; out.length < CONTINUATION.length; pos++) {
      out.push(argmax(logits));
      logits = t.forward(out[out.length - 1], pos);
    }
    assert.deepEqual(out, CONTINUATION);
  },
});

Deno.test({
  name: "ReferenceLlama on HF-permuted stories260K greedily continues as README says",
  ignore: !haveModel,
  fn: async () => {
    const weights = llama2cToHf(await readLlama2cRaw(MODEL));
    assert.deepEqual(greedyReference(weights, PROMPT, CONTINUATION.length), CONTINUATION);
  },
});

Deno.test({
  name: "ReferenceLlama on HF-permuted stories260K matches the llama2.c port's logits",
  ignore: !haveModel,
  fn: async () => {
    const raw = await readLlama2cRaw(MODEL);
    const tokens = [...PROMPT, ...CONTINUATION];
    const ours = new ReferenceLlama(llama2cToHf(raw)).forward(tokens, 0);
    const port = new Llama2cTransformer(raw);
    const vocab = raw.config.vocabSize;
    let worst = 0;
    tokens.forEach((tok, pos) => {
      const row = port.forward(tok, pos);
      for (let i = 0; i < vocab; i++) {
        worst = Math.max(worst, Math.abs(row[i] - ours[pos * vocab + i]));
      }
    });
    assert.ok(worst <= 1e-4, `max |diff| ${worst}`);
  },
});

Deno.test({
  name: "ReferenceLlama on readLlama2c() stories260K greedily continues as README says",
  ignore: !haveModel,
  fn: async () => {
    const weights = await readLlama2c(MODEL.pathname);
    assert.deepEqual(greedyReference(weights, PROMPT, CONTINUATION.length), CONTINUATION);
  },
});
