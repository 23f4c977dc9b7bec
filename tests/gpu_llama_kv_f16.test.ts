// GpuLlama's KV cache element type and context checks: "auto" picks f16 for
// f16/int4 weights on a shader-f16 device and f32 for f32 weights; an f16
// cache gives logits close to the f32 reference; a context that does not fit
// (one binding, or the memory budget) is refused before allocation with the
// number of tokens that would fit.

import assert from "node:assert/strict";
import { GpuError } from "../src/errors.ts";
import { acquireGpu } from "../src/gpu/device.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import { ReferenceLlama } from "../src/model/reference_llama.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import { withGpuModel } from "./support/gpu_model.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const f16Tagged = (w: LlamaWeights): LlamaWeights => {
  const tag = <T extends { dtype: string }>(t: T) => ({ ...t, dtype: "F16" as const });
  return {
    ...w,
    embed: tag(w.embed),
    lmHead: tag(w.lmHead),
    layers: w.layers.map((l) => ({ ...l, wq: tag(l.wq), wo: tag(l.wo) })),
  };
};

Deno.test("KV cache auto: f16 for f16 weights on a shader-f16 device, f32 for f32 weights", async () => {
  const w = randomLlamaWeights(tinyConfig("llama"), 21);
  const hasF16 = await withGpuModel(w, {}, (m) => {
    assert.equal(m.kvDType, "f32");
    return Promise.resolve(m.gpu.hasF16);
  });
  await withGpuModel(f16Tagged(w), {}, (m) => {
    assert.equal(m.kvDType, hasF16 ? "f16" : "f32");
    return Promise.resolve();
  });
});

Deno.test("an f16 KV cache gives logits close to the f32 reference over prefill and decode", async () => {
  const w = randomLlamaWeights(
    tinyConfig("llama", { numHeads: 8, numKvHeads: 2, headDim: 8, hiddenSize: 64 }),
    22,
  );
  const gpu = await acquireGpu();
  const hasF16 = gpu.hasF16;
  gpu.destroy();
  if (!hasF16) return; // nothing to compare on this adapter
  const ref = new ReferenceLlama(w, 64);
  const V = w.config.vocabSize;
  const prompt = Array.from({ length: 21 }, (_, i) => (i * 11 + 2) % V);
  const want = [ref.forward(prompt, 0), ref.forward([7], 21), ref.forward([9], 22)];
  for (const kvDType of ["f32", "f16"] as const) {
    const got = await withGpuModel(w, { weightDType: "f32", kvDType }, async (m) => [
      await m.logits(prompt, 0),
      await m.logits([7], 21),
      await m.logits([9], 22),
    ]);
    const worst = Math.max(...got.map((g, i) => maxAbsDiff(g, want[i])));
    assert.ok(worst < (kvDType === "f16" ? 2e-2 : 1e-3), `${kvDType} KV: max |gpu - ref| ${worst}`);
  }
});

Deno.test("a context over the memory budget is refused before allocation, naming how many tokens fit", async () => {
  const w = randomLlamaWeights(tinyConfig("llama"), 23);
  const gpu = await acquireGpu();
  try {
    let message = "";
    await assert.rejects(
      () => GpuLlama.load(gpu, w, { maxSeq: 4096, maxBatch: 8, memoryBudgetBytes: 600_000 }),
      (e: Error) => {
        message = e.message;
        return e instanceof GpuError && /at most \d+ tokens fit/.test(e.message);
      },
    );
    const fits = Number(/at most (\d+) tokens fit/.exec(message)![1]);
    assert.ok(fits > 0 && fits < 4096, message);
    const m = await GpuLlama.load(gpu, w, {
      maxSeq: fits,
      maxBatch: 8,
      memoryBudgetBytes: 600_000,
    });
    assert.equal(m.maxSeq, fits);
    m.destroy();
  } finally {
    gpu.destroy();
  }
});

Deno.test("a context whose per-layer KV cache exceeds one storage binding is refused with the number that fits", async () => {
  const w = randomLlamaWeights(tinyConfig("llama"), 24);
  const gpu = await acquireGpu();
  try {
    const perToken = w.config.numKvHeads * w.config.headDim * 4;
    const tooMany = Math.floor(gpu.limits.maxStorageBufferBindingSize / perToken) + 1;
    await assert.rejects(
      () => GpuLlama.load(gpu, w, { maxSeq: tooMany, weightDType: "f32", kvDType: "f32" }),
      new RegExp(`A context of ${tooMany} tokens does not fit; at most ${tooMany - 1} fit`),
    );
  } finally {
    gpu.destroy();
  }
});
