import assert from "node:assert/strict";
import { CpuLlama } from "../src/cpu/cpu_llama.ts";
import { TsKernels } from "../src/cpu/ts_kernels.ts";
import { RequestError } from "../src/errors.ts";
import { readLlama2c } from "../src/formats/llama2c.ts";
import { ReferenceLlama } from "../src/model/reference_llama.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";
import { sharedPresent, STORIES } from "./support/cli_run.ts";

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, "length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const someTokens = (n: number, vocab: number) =>
  Array.from({ length: n }, (_, i) => (i * 37 + 11) % vocab);

for (const kind of ["llama", "mistral", "qwen2"] as const) {
  Deno.test(`CpuLlama on TsKernels equals ReferenceLlama: prefill, then decode (${kind})`, () => {
    const w = randomLlamaWeights(tinyConfig(kind), 5);
    const model = CpuLlama.create(new TsKernels(), w, { maxSeq: 32, maxBatch: 16 });
    try {
      const ref = new ReferenceLlama(w, 32);
      const tokens = someTokens(20, w.config.vocabSize);
      const cache = model.acquireCache();
      // 12 tokens as one pass (all logits), then 8 one by one ("last").
      const a = model.forward(tokens.slice(0, 12), 0, cache, "all");
      const r = ref.forward(tokens.slice(0, 12), 0);
      assert.ok(maxAbsDiff(a, r) < 1e-4, `prefill: ${maxAbsDiff(a, r)}`);
      for (let t = 12; t < 20; t++) {
        const b = model.forward([tokens[t]], t, cache, "last");
        const rb = ref.forward([tokens[t]], t);
        assert.ok(maxAbsDiff(b, rb) < 1e-4, `pos ${t}: ${maxAbsDiff(b, rb)}`);
      }
    } finally {
      model.destroy();
    }
  });
}

Deno.test("CpuLlama.forwardRows decodes sequences at different positions as each alone", () => {
  const w = randomLlamaWeights(tinyConfig("mistral"), 9);
  const model = CpuLlama.create(new TsKernels(), w, { maxSeq: 24, sequences: 3 });
  try {
    const V = w.config.vocabSize;
    const prompts = [someTokens(5, V), someTokens(9, V).reverse(), [3]];
    const caches = prompts.map(() => model.acquireCache());
    prompts.forEach((p, i) => model.forward(p, 0, caches[i], "none"));
    const next = [7, 8, 9];
    const together = model.forwardRows(
      prompts.map((p, i) => ({ token: next[i], pos: p.length, cache: caches[i] })),
    );
    prompts.forEach((p, i) => {
      const ref = new ReferenceLlama(w, 24);
      const alone = ref.forward([...p, next[i]], 0).subarray(p.length * V);
      const row = together.subarray(i * V, (i + 1) * V);
      assert.ok(maxAbsDiff(row, alone) < 1e-4, `row ${i}: ${maxAbsDiff(row, alone)}`);
    });
  } finally {
    model.destroy();
  }
});

Deno.test("CpuLlama refuses a context beyond the memory with the number of tokens that fit", () => {
  const w = randomLlamaWeights(tinyConfig("llama"), 1);
  assert.throws(
    () => CpuLlama.create(new TsKernels(), w, { maxSeq: 64, maxBatch: 8, memoryLimit: 265_000 }),
    (e: unknown) =>
      e instanceof RequestError && /a context of 64 tokens/.test(e.message) &&
      /at most \d+ tokens fit/.test(e.message),
  );
  // The number it names does fit.
  try {
    CpuLlama.create(new TsKernels(), w, { maxSeq: 64, maxBatch: 8, memoryLimit: 265_000 });
  } catch (e) {
    const fits = Number(/at most (\d+) tokens fit/.exec((e as Error).message)![1]);
    assert.ok(fits >= 2 && fits < 64, `${fits}`);
    CpuLlama.create(new TsKernels(), w, { maxSeq: fits, maxBatch: 8, memoryLimit: 265_000 })
      .destroy();
  }
});

Deno.test({
  name: "CpuLlama on TsKernels equals ReferenceLlama on stories260K",
  ignore: !sharedPresent,
  async fn() {
    const w = await readLlama2c(STORIES);
    const model = CpuLlama.create(new TsKernels(), w, { maxSeq: 64 });
    try {
      const ids = [1, 403, 407, 261, 378, 432, 383, 286];
      const a = model.forward(ids, 0, model.acquireCache(), "all");
      const r = new ReferenceLlama(w, 64).forward(ids, 0);
      assert.ok(maxAbsDiff(a, r) < 1e-4, `${maxAbsDiff(a, r)}`);
    } finally {
      model.destroy();
    }
  },
});
