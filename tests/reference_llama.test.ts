import assert from "node:assert/strict";
import { RequestError } from "../src/errors.ts";
import { ReferenceLlama } from "../src/model/reference_llama.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";
import { Llama2cTransformer, unpermuteForLlama2c } from "./support/llama2c_forward.ts";

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, "length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function assertClose(a: Float32Array, b: Float32Array, tol: number, what: string) {
  const d = maxAbsDiff(a, b);
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}`);
}

/** Deterministic token ids in [0, vocab). */
function someTokens(n: number, vocab: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 37 + 11) % vocab);
}

/** Token-by-token logits of the llama2.c port, concatenated [n, vocab]. */
function llama2cLogits(weights: LlamaWeights, tokens: number[]): Float32Array {
  const t = new Llama2cTransformer(unpermuteForLlama2c(weights));
  const vocab = weights.config.vocabSize;
  const out = new Float32Array(tokens.length * vocab);
  tokens.forEach((tok, pos) => out.set(t.forward(tok, pos), pos * vocab));
  return out;
}

/** A copy of the weights with some layer tensors replaced. */
function withLayers(
  w: LlamaWeights,
  edit: (l: LlamaWeights["layers"][number]) => Partial<LlamaWeights["layers"][number]>,
): LlamaWeights {
  return { ...w, layers: w.layers.map((l) => ({ ...l, ...edit(l) })) };
}

for (const kind of ["llama", "mistral"] as const) {
  Deno.test(`ReferenceLlama matches the llama2.c port on un-permuted weights (${kind}, GQA)`, () => {
    const w = randomLlamaWeights(tinyConfig(kind), 1);
    assert.ok(w.config.numKvHeads < w.config.numHeads);
    const tokens = someTokens(20, w.config.vocabSize);
    const ours = new ReferenceLlama(w).forward(tokens, 0);
    assertClose(ours, llama2cLogits(w, tokens), 1e-4, kind);
  });
}

Deno.test("ReferenceLlama matches the llama2.c port with multi-head attention and 1 layer", () => {
  const w = randomLlamaWeights(tinyConfig("llama", { numKvHeads: 6, numLayers: 1 }), 2);
  const tokens = someTokens(9, w.config.vocabSize);
  assertClose(new ReferenceLlama(w).forward(tokens, 0), llama2cLogits(w, tokens), 1e-4, "mha");
});

Deno.test("the llama2.c comparison is sensitive to the q/k permutation", () => {
  // Feeding HF-order rows to the interleaved-RoPE port must give other logits.
  const w = randomLlamaWeights(tinyConfig("llama"), 3);
  const tokens = someTokens(6, w.config.vocabSize);
  const raw = unpermuteForLlama2c(w);
  const concat = (xs: Float32Array[]) => Float32Array.from(xs.flatMap((x) => Array.from(x)));
  const wrong = new Llama2cTransformer({
    ...raw,
    wq: concat(w.layers.map((l) => l.wq.data)),
    wk: concat(w.layers.map((l) => l.wk.data)),
  });
  const ours = new ReferenceLlama(w).forward(tokens, 0);
  const vocab = w.config.vocabSize;
  const last = ours.subarray((tokens.length - 1) * vocab);
  let lastWrong: Float32Array = new Float32Array(0);
  tokens.forEach((tok, pos) => (lastWrong = wrong.forward(tok, pos)));
  assert.ok(maxAbsDiff(last, lastWrong) > 1e-2);
});

for (const kind of ["llama", "mistral", "qwen2"] as const) {
  Deno.test(`ReferenceLlama prefill equals feeding tokens one by one through the cache (${kind})`, () => {
    const w = randomLlamaWeights(tinyConfig(kind), 4);
    const vocab = w.config.vocabSize;
    const tokens = someTokens(13, vocab);
    const prefill = new ReferenceLlama(w).forward(tokens, 0);
    const stepper = new ReferenceLlama(w);
    tokens.forEach((tok, pos) => {
      const row = stepper.forward([tok], pos);
      assertClose(row, prefill.subarray(pos * vocab, (pos + 1) * vocab), 1e-5, `pos ${pos}`);
    });
  });
}

Deno.test("ReferenceLlama continues after a prefill, in one call or token by token", () => {
  const w = randomLlamaWeights(tinyConfig("qwen2"), 5);
  const vocab = w.config.vocabSize;
  const tokens = someTokens(12, vocab);
  const all = new ReferenceLlama(w).forward(tokens, 0);
  const model = new ReferenceLlama(w);
  model.forward(tokens.slice(0, 5), 0);
  const chunk = model.forward(tokens.slice(5, 9), 5);
  assertClose(chunk, all.subarray(5 * vocab, 9 * vocab), 1e-5, "chunk 5..9");
  for (let pos = 9; pos < 12; pos++) {
    const row = model.forward([tokens[pos]], pos);
    assertClose(row, all.subarray(pos * vocab, (pos + 1) * vocab), 1e-5, `pos ${pos}`);
  }
  assert.equal(model.length, 12);
});

Deno.test("ReferenceLlama.reset() starts a fresh sequence", () => {
  const w = randomLlamaWeights(tinyConfig("llama"), 6);
  const model = new ReferenceLlama(w);
  const first = model.forward([5, 6, 7], 0);
  model.forward([8], 3);
  model.reset();
  assert.equal(model.length, 0);
  assertClose(model.forward([5, 6, 7], 0), first, 0, "after reset");
});

Deno.test("ReferenceLlama rewinds when startPos is before the cached length", () => {
  const w = randomLlamaWeights(tinyConfig("llama"), 7);
  const vocab = w.config.vocabSize;
  const model = new ReferenceLlama(w);
  model.forward([5, 6, 7, 8], 0);
  const rewound = model.forward([9, 10], 2);
  const fresh = new ReferenceLlama(w).forward([5, 6, 9, 10], 0);
  assertClose(rewound, fresh.subarray(2 * vocab), 1e-5, "rewound");
});

Deno.test("ReferenceLlama rejects a gap in positions, overflow of maxSeq and bad token ids", () => {
  const w = randomLlamaWeights(tinyConfig("llama"), 8);
  const model = new ReferenceLlama(w, 4);
  assert.throws(() => model.forward([1], 1), RequestError);
  assert.throws(() => model.forward([1, 2, 3, 4, 5], 0), RequestError);
  assert.throws(() => model.forward([97], 0), RequestError);
  assert.throws(() => model.forward([], 0), RequestError);
});

Deno.test("ReferenceLlama uses each of the qwen2 q, k and v biases", () => {
  const w = randomLlamaWeights(tinyConfig("qwen2"), 9);
  const tokens = someTokens(5, w.config.vocabSize);
  const base = new ReferenceLlama(w).forward(tokens, 0);
  for (const name of ["bq", "bk", "bv"] as const) {
    const zeroed = withLayers(w, (l) => ({
      [name]: { ...l[name]!, data: new Float32Array(l[name]!.data.length) },
    }));
    const logits = new ReferenceLlama(zeroed).forward(tokens, 0);
    assert.ok(maxAbsDiff(base, logits) > 1e-3, `zeroing ${name} changed nothing`);
  }
});

Deno.test("ReferenceLlama without biases equals zero biases", () => {
  const w = randomLlamaWeights(tinyConfig("qwen2"), 10);
  const zero = (n: number) => ({ data: new Float32Array(n), shape: [n], dtype: "F32" as const });
  const zeroed = withLayers(w, (l) => ({
    bq: zero(l.bq!.data.length),
    bk: zero(l.bk!.data.length),
    bv: zero(l.bv!.data.length),
  }));
  const none = withLayers(w, () => ({ bq: undefined, bk: undefined, bv: undefined }));
  const tokens = someTokens(4, w.config.vocabSize);
  assertClose(
    new ReferenceLlama(zeroed).forward(tokens, 0),
    new ReferenceLlama(none).forward(tokens, 0),
    0,
    "zero vs none",
  );
});

for (const kind of ["mistral", "qwen2"] as const) {
  Deno.test(`ReferenceLlama takes logits from the untied lm_head, not the embedding (${kind})`, () => {
    const w = randomLlamaWeights(tinyConfig(kind), 11);
    assert.notEqual(w.lmHead, w.embed);
    const tokens = someTokens(3, w.config.vocabSize);
    const base = new ReferenceLlama(w).forward(tokens, 0);
    // Doubling lm_head doubles the logits exactly and leaves the embedding alone.
    const doubled = { ...w, lmHead: { ...w.lmHead, data: w.lmHead.data.map((x) => 2 * x) } };
    const twice = new ReferenceLlama(doubled).forward(tokens, 0);
    assertClose(twice, base.map((x) => 2 * x), 1e-6, "2 * logits");
  });
}

Deno.test("randomLlamaWeights() is deterministic and ties lm_head only when configured", () => {
  const a = randomLlamaWeights(tinyConfig("llama"), 12);
  const b = randomLlamaWeights(tinyConfig("llama"), 12);
  const c = randomLlamaWeights(tinyConfig("llama"), 13);
  assert.deepEqual(a.layers[1].wGate.data, b.layers[1].wGate.data);
  assert.ok(maxAbsDiff(a.layers[1].wGate.data, c.layers[1].wGate.data) > 0);
  assert.equal(a.lmHead, a.embed);
  const logits = new ReferenceLlama(a).forward([1, 2, 3], 0);
  assert.ok(logits.every((x) => Number.isFinite(x) && Math.abs(x) < 100), "logits stay O(1)");
});
