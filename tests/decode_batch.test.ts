// DecodeBatch (one forward pass per decode step over all active slots)
// against the single-sequence GpuLlama path: prompts of different lengths in
// different slots, prefilled in chunks, joining the batch at different steps,
// give exactly the greedy ids each prompt gives when run alone.

import assert from "node:assert/strict";
import { resolveSampling } from "../src/engine/sampling_options.ts";
import { GpuError } from "../src/errors.ts";
import { acquireGpu } from "../src/gpu/device.ts";
import type { LlamaConfig } from "../src/model/config.ts";
import { DecodeBatch, type DecodeRow } from "../src/model/decode_batch.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";

function argmaxRow(logits: Float32Array, row: number, V: number): number {
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[row * V + i] > logits[row * V + best]) best = i;
  return best;
}

/** Greedy ids of `prompt` on the single-sequence path (the model's own KV cache). */
async function alone(model: GpuLlama, prompt: number[], n: number): Promise<number[]> {
  const V = model.config.vocabSize;
  let logits: Float32Array = new Float32Array();
  let last = 0;
  for (let start = 0; start < prompt.length; start += model.maxBatch) {
    const chunk = prompt.slice(start, start + model.maxBatch);
    logits = await model.logits(chunk, start);
    last = chunk.length - 1;
  }
  const ids = [argmaxRow(logits, last, V)];
  while (ids.length < n) {
    logits = await model.logits([ids[ids.length - 1]], prompt.length + ids.length - 1);
    ids.push(argmaxRow(logits, 0, V));
  }
  return ids;
}

async function compare(config: LlamaConfig, label: string, kvDType: "f32" | "f16" = "f32") {
  const gpu = await acquireGpu();
  const model = await GpuLlama.load(gpu, randomLlamaWeights(config, 5), {
    maxSeq: 64,
    maxBatch: 8,
    weightDType: "f32",
    kvDType,
  });
  assert.equal(model.kvDType, kvDType);
  const batch = await DecodeBatch.create(model, 4, 3);
  try {
    const V = config.vocabSize;
    const prompts = [[3, 1, 4], Array.from({ length: 13 }, (_, i) => (i * 7 + 2) % V), [9], [
      5,
      8,
      13,
      21,
      34,
      55,
      89,
    ]];
    const N = 10;
    const want = [];
    for (const p of prompts) want.push(await alone(model, p, N));
    // Slots in a scrambled order; prompt 3 joins after the others decoded a round.
    const slotOf = [2, 0, 3, 1];
    const got: number[][] = prompts.map(() => []);
    const active: number[] = [];
    const admit = async (i: number) => {
      batch.setSampling(slotOf[i], resolveSampling(), []);
      await batch.prefill(slotOf[i], prompts[i]);
    };
    const read = async (admitted: number[], decoding: number[], steps: number) => {
      const out = await batch.readOut();
      for (const i of admitted) got[i].push(out[slotOf[i] * 3]);
      for (const i of decoding) {
        const s = slotOf[i] * 3;
        got[i].push(...out.subarray(s, s + steps));
      }
    };
    for (const i of [0, 1, 2]) await admit(i);
    await read([0, 1, 2], [], 0);
    active.push(0, 1, 2);
    for (let round = 0; active.some((i) => got[i].length < N); round++) {
      const decoding = active.filter((i) => got[i].length < N);
      const rows: DecodeRow[] = decoding.map((i) => ({
        slot: slotOf[i],
        lastId: got[i][got[i].length - 1],
        pos: prompts[i].length + got[i].length - 1,
      }));
      const joining = round === 0 ? [3] : [];
      for (const i of joining) await admit(i);
      await batch.decode(rows, 3);
      await read(joining, decoding, 3);
      active.push(...joining);
    }
    for (let i = 0; i < prompts.length; i++) {
      assert.deepEqual(got[i].slice(0, N), want[i], `${label}: prompt ${i}`);
    }
    gpu.check();
  } finally {
    batch.destroy();
    model.destroy();
    gpu.destroy();
  }
}

Deno.test("DecodeBatch gives each sequence the greedy ids it gets alone (head 10: workgroup attention)", () =>
  compare(tinyConfig("qwen2"), "qwen2, head 10"));

Deno.test("DecodeBatch gives each sequence the greedy ids it gets alone (head 8: attention table)", () =>
  compare(
    tinyConfig("llama", { numHeads: 8, numKvHeads: 2, headDim: 8, hiddenSize: 64 }),
    "llama, head 8",
  ));

Deno.test("DecodeBatch refuses more KV slots than one storage binding holds", async () => {
  const gpu = await acquireGpu();
  const model = await GpuLlama.load(gpu, randomLlamaWeights(tinyConfig("llama"), 1), {
    maxSeq: 64,
  });
  try {
    const kvSlot = 64 * 2 * 10 * 4;
    const slots = Math.floor(gpu.limits.maxStorageBufferBindingSize / kvSlot) + 1;
    if (slots <= model.maxBatch) {
      await assert.rejects(() => DecodeBatch.create(model, slots), GpuError);
    }
    await assert.rejects(() => DecodeBatch.create(model, model.maxBatch + 1), GpuError);
  } finally {
    model.destroy();
    gpu.destroy();
  }
});

Deno.test("DecodeBatch with f16 KV caches gives each sequence the greedy ids it gets alone", () =>
  compare(
    tinyConfig("llama", { numHeads: 8, numKvHeads: 2, headDim: 8, hiddenSize: 64 }),
    "llama, head 8, f16 KV",
    "f16",
  ));
