import assert from "node:assert/strict";
import { CpuLlama } from "../src/cpu/cpu_llama.ts";
import type { CpuKernels } from "../src/cpu/cpu_kernels.ts";
import { TsKernels } from "../src/cpu/ts_kernels.ts";
import { createWasmKernels } from "../src/cpu/wasm_kernels.ts";
import { quantizedTensor } from "../src/model/weights.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import { dequantizeLinear } from "../src/quant/quantizer.ts";
import { quantizeAllLinears } from "./support/awq_model.ts";
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

/** 6 heads of 8: the WebAssembly attention takes head sizes that are multiples of 4. */
const WASM_HEADS = { hiddenSize: 48, headDim: 8 };

/** The kernels under test, exact (f32 activations). */
const KERNELS: { name: string; make: () => Promise<CpuKernels> }[] = [
  { name: "TsKernels", make: () => Promise.resolve(new TsKernels()) },
  { name: "WasmKernels", make: () => createWasmKernels({ threads: 2, activations: "f32" }) },
  {
    // a host without SharedArrayBuffer: one thread on an unshared memory, which
    // grows (detaching its buffer) as the weights are placed
    name: "WasmKernels on an unshared memory",
    make: () => createWasmKernels({ threads: 2, activations: "f32", sharedMemory: false }),
  },
];

for (const { name, make } of KERNELS) {
  for (const kind of ["llama", "mistral", "qwen2"] as const) {
    Deno.test(`CpuLlama on ${name} equals ReferenceLlama: prefill, then decode (${kind})`, async () => {
      const w = randomLlamaWeights(tinyConfig(kind, WASM_HEADS), 5);
      const model = CpuLlama.create(await make(), w, { maxSeq: 32, maxBatch: 16 });
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

  Deno.test(`CpuLlama.forwardRows on ${name} decodes sequences at their positions as alone`, async () => {
    const w = randomLlamaWeights(tinyConfig("mistral", WASM_HEADS), 9);
    const model = CpuLlama.create(await make(), w, { maxSeq: 24, sequences: 3 });
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
}

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

for (const { name, make } of KERNELS) {
  Deno.test({
    name: `CpuLlama on ${name} equals ReferenceLlama on stories260K`,
    ignore: !sharedPresent,
    async fn() {
      const w = await readLlama2c(STORIES);
      const model = CpuLlama.create(await make(), w, { maxSeq: 64 });
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
}

/** `w` with every linear quantized to 4 bits (RTN, groups of 32), codes kept. */
function int4Weights(w: LlamaWeights): LlamaWeights {
  const q = quantizeAllLinears(w, { bits: 4, groupSize: 32, zeroPoint: true });
  const names = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
  const fields = ["wq", "wk", "wv", "wo", "wGate", "wUp", "wDown"] as const;
  return {
    ...w,
    layers: w.layers.map((l, i) => {
      const out = { ...l };
      fields.forEach((f, j) => {
        const mod = j < 4 ? `self_attn.${names[j]}` : `mlp.${names[j]}`;
        out[f] = quantizedTensor(q.get(`model.layers.${i}.${mod}`)!, dequantizeLinear);
      });
      return out;
    }),
  };
}

Deno.test("CpuLlama int4: exact activations equal the dequantized reference; int8 stays close", async () => {
  const cfg = tinyConfig("llama", {
    hiddenSize: 64,
    numHeads: 8,
    headDim: 8,
    intermediateSize: 96,
  });
  const w = int4Weights(randomLlamaWeights(cfg, 4));
  const tokens = someTokens(16, cfg.vocabSize);
  const ref = new ReferenceLlama(w, 32).forward(tokens, 0); // reads the dequantized data
  const run = async (activations: "f32" | "int8") => {
    const m = CpuLlama.create(await createWasmKernels({ threads: 2, activations }), w, {
      maxSeq: 32,
    });
    try {
      return m.forward(tokens, 0, m.acquireCache(), "all");
    } finally {
      m.destroy();
    }
  };
  const exact = await run("f32");
  assert.ok(maxAbsDiff(exact, ref) < 1e-4, `exact: ${maxAbsDiff(exact, ref)}`);
  // int8 activations (per block of 32) move the logits by at most 3% of their range.
  const int8 = await run("int8");
  const d = maxAbsDiff(int8, ref);
  const range = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(d > 0 && d < 0.03 * range, `int8: max |diff| ${d}, max |logit| ${range}`);
  // The TypeScript kernels emulate the int8 rounding: the same logits closely.
  const ts = CpuLlama.create(new TsKernels({ activations: "int8" }), w, { maxSeq: 32 });
  try {
    const t = ts.forward(tokens, 0, ts.acquireCache(), "all");
    assert.ok(maxAbsDiff(int8, t) < 1e-3, `int8 wasm vs ts: ${maxAbsDiff(int8, t)}`);
  } finally {
    ts.destroy();
  }
});
