import assert from "node:assert/strict";
import { acquireGpu } from "../src/gpu/device.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import { ReferenceLlama } from "../src/model/reference_llama.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";

/** Largest |a - b| over two equal-length arrays. */
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function seededTokens(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s % vocab;
  });
}

async function compare(weights: LlamaWeights, dtype: "f32" | "f16", tol: number) {
  const gpu = await acquireGpu();
  try {
    const model = await GpuLlama.load(gpu, weights, { maxSeq: 64, weightDType: dtype });
    const ref = new ReferenceLlama(weights, 64);
    const vocab = weights.config.vocabSize;
    // prefill 37 tokens (gemm path), then 3 single tokens (gemv path)
    const prompt = seededTokens(37, vocab, 7);
    const diffs = [maxAbsDiff(await model.logits(prompt, 0), ref.forward(prompt, 0))];
    for (let i = 0; i < 3; i++) {
      const t = [(i * 31 + 5) % vocab];
      diffs.push(maxAbsDiff(await model.logits(t, 37 + i), ref.forward(t, 37 + i)));
    }
    const worst = Math.max(...diffs);
    if (Deno.env.get("AWQ_EDGE_VERBOSE")) console.log(`max logit diff (${dtype}): ${worst}`);
    assert.ok(worst < tol, `max |gpu - reference| logit difference ${worst} >= ${tol}`);
    model.destroy();
  } finally {
    gpu.destroy();
  }
}

for (const kind of ["llama", "mistral", "qwen2"] as const) {
  Deno.test(`GpuLlama logits match the CPU reference on a random ${kind} model (f32 weights)`, () =>
    compare(randomLlamaWeights(tinyConfig(kind), 11), "f32", 1e-3));
}

Deno.test("GpuLlama logits match the CPU reference with f16 weights within f16 rounding", async () => {
  const w = randomLlamaWeights(tinyConfig("llama"), 3);
  await compare(w, "f16", 5e-2);
});

const sharedModels = new URL("../../shared/models/", import.meta.url);
for (const file of ["stories260K/stories260K.bin", "babyllama-tok105/model5000.bin"]) {
  const path = new URL(file, sharedModels).pathname;
  let present = true;
  try {
    Deno.statSync(path);
  } catch {
    present = false;
    console.warn(`skipping the real-model GPU test: ${path} not found (../shared is absent)`);
  }
  Deno.test({
    name: `GpuLlama logits match the CPU reference on the real model ${file}`,
    ignore: !present,
    async fn() {
      const { readLlama2c } = await import("../src/formats/llama2c.ts");
      await compare(await readLlama2c(path), "f32", 1e-3);
    },
  });
}
