// GpuLlama with int4 weights ("auto" on a quantized model): logits against the
// dequantized weights (f32 reference and the f16 GPU path), the fused and
// unfused layer forms, residency, refusal of what the int4 kernels cannot
// read, and stories260K through a real AWQ checkpoint (perplexity and greedy
// ids equal to the dequantized f16 path).

import assert from "node:assert/strict";
import { join } from "node:path";
import { Generator } from "../src/engine/generator.ts";
import { evaluatePerplexity } from "../src/engine/perplexity.ts";
import { GpuError } from "../src/errors.ts";
import { loadAwqWeights, writeAwqCheckpoint } from "../src/formats/awq_checkpoint.ts";
import { readLlama2c } from "../src/formats/llama2c.ts";
import { acquireGpu } from "../src/gpu/device.ts";
import { GpuLlama, type GpuLlamaOptions } from "../src/model/gpu_llama.ts";
import { ReferenceLlama } from "../src/model/reference_llama.ts";
import { type LlamaWeights, quantizedTensor } from "../src/model/weights.ts";
import { dequantizeLinear } from "../src/quant/quantizer.ts";
import type { QuantSettings } from "../src/quant/types.ts";
import { loadLlama2cTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import { moduleField, quantizeAllLinears } from "./support/awq_model.ts";
import {
  firstParagraphs,
  shared,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
  withTempDir,
} from "./support/cli_run.ts";
import { withGpuModel } from "./support/gpu_model.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";

if (!sharedPresent) console.warn(`skipping stories260K int4 test: ${SHARED_MISSING}`);

/** `w` with every linear replaced by its quantized form (a lazily dequantizing HostTensor). */
function quantized(w: LlamaWeights, s: QuantSettings): LlamaWeights {
  const layers = w.layers.map((l) => ({ ...l }));
  for (const [name, ql] of quantizeAllLinears(w, s)) {
    const { layer, field } = moduleField(name);
    layers[layer][field] = quantizedTensor(ql, dequantizeLinear);
  }
  return { ...w, layers };
}

/** The same model with the linears dequantized to plain f32 tensors. */
function dequantized(w: LlamaWeights): LlamaWeights {
  const layers = w.layers.map((l) => {
    const out = { ...l };
    for (const [k, t] of Object.entries(l)) {
      if (t?.quantized) {
        (out as Record<string, unknown>)[k] = { data: t.data, shape: t.shape, dtype: "F32" };
      }
    }
    return out;
  });
  return { ...w, layers };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Logits of a 37-token prefill (GEMM) then 3 single tokens (GEMV). */
async function logitsRun(model: GpuLlama): Promise<Float32Array[]> {
  const vocab = model.config.vocabSize;
  const prompt = Array.from({ length: 37 }, (_, i) => (i * 13 + 3) % vocab);
  const out = [await model.logits(prompt, 0)];
  for (let i = 0; i < 3; i++) out.push(await model.logits([(i * 31 + 5) % vocab], 37 + i));
  return out;
}

function refRun(w: LlamaWeights): Float32Array[] {
  const ref = new ReferenceLlama(w, 64);
  const vocab = w.config.vocabSize;
  const prompt = Array.from({ length: 37 }, (_, i) => (i * 13 + 3) % vocab);
  const out = [ref.forward(prompt, 0)];
  for (let i = 0; i < 3; i++) out.push(ref.forward([(i * 31 + 5) % vocab], 37 + i));
  return out;
}

for (const kind of ["llama", "qwen2"] as const) {
  for (const groupSize of [32, 0]) {
    Deno.test(`int4 GpuLlama (${kind}, g${groupSize}) matches the f32 reference of the dequantized weights, fused and unfused`, async () => {
      const w = quantized(randomLlamaWeights(tinyConfig(kind), 11), {
        bits: 4,
        groupSize,
        zeroPoint: true,
      });
      const expected = refRun(dequantized(w));
      for (const fuseInt4 of [true, false]) {
        const got = await withGpuModel(w, { fuseInt4 }, async (m) => {
          assert.equal(m.residency.int4Linears, 7 * w.config.numLayers);
          assert.deepEqual(m.residency.dequantized, []);
          assert.ok(m.residency.residentBytes < m.residency.f16Bytes);
          return await logitsRun(m);
        });
        const worst = Math.max(...got.map((g, i) => maxAbsDiff(g, expected[i])));
        assert.ok(worst < 2e-4, `fuse=${fuseInt4}: max |int4 - reference| = ${worst}`);
      }
    });
  }
}

Deno.test("int4 GpuLlama: weightDType f16 forces the dequantized path; int4 and f16 agree within f16 rounding", async () => {
  const w = quantized(randomLlamaWeights(tinyConfig("llama"), 12), {
    bits: 4,
    groupSize: 32,
    zeroPoint: true,
  });
  const f16 = await withGpuModel(w, { weightDType: "f16" }, async (m) => {
    assert.equal(m.residency.int4Linears, 0);
    return await logitsRun(m);
  });
  const int4 = await withGpuModel(w, {}, logitsRun);
  const worst = Math.max(...int4.map((g, i) => maxAbsDiff(g, f16[i])));
  // The f16 path also rounds the f32 embedding and lm_head of these weights.
  assert.ok(worst < 5e-2, `max |int4 - f16| = ${worst}`);
});

Deno.test("int4 GpuLlama: 8-bit linears are refused by weightDType int4 (naming the tensor) and dequantized by auto", async () => {
  const w = quantized(randomLlamaWeights(tinyConfig("llama"), 13), {
    bits: 8,
    groupSize: 32,
    zeroPoint: true,
  });
  const gpu = await acquireGpu();
  try {
    await assert.rejects(
      () => GpuLlama.load(gpu, w, { maxSeq: 16, weightDType: "int4" }),
      (e: Error) =>
        e instanceof GpuError &&
        /model\.layers\.0\.self_attn\.o_proj\.weight: cannot be kept as int4: 8-bit/.test(
          e.message,
        ),
    );
  } finally {
    gpu.destroy();
  }
  const warn = console.warn;
  const warnings: string[] = [];
  console.warn = (m: string) => warnings.push(m);
  try {
    const expected = refRun(dequantized(w));
    const got = await withGpuModel(w, {}, async (m) => {
      assert.equal(m.residency.int4Linears, 0);
      assert.equal(m.residency.dequantized.length, 7 * w.config.numLayers);
      return await logitsRun(m);
    });
    assert.ok(Math.max(...got.map((g, i) => maxAbsDiff(g, expected[i]))) < 5e-2);
  } finally {
    console.warn = warn;
  }
  assert.match(warnings.join("\n"), /14 quantized linear\(s\) dequantized to f16/);
});

Deno.test({
  name:
    "int4 GpuLlama on a w4 g32 AWQ checkpoint of stories260K: same perplexity and greedy ids as the f16 path",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      const fp = await readLlama2c(STORIES);
      const settings = { bits: 4, groupSize: 32, zeroPoint: true } as const;
      const awq = join(dir, "awq");
      await writeAwqCheckpoint(awq, {
        weights: fp,
        quantized: quantizeAllLinears(fp, settings),
        settings,
        layout: "gemm",
        tokenizerFiles: {},
        metadata: { method: "rtn" },
      });
      const w = await loadAwqWeights(awq);
      assert.ok(w.layers[0].wDown.quantized, "the loader keeps the codes");
      const tok = await loadLlama2cTokenizer(shared("models/stories260K/tok512.bin"), 512);
      const ids = tok.encode(firstParagraphs(6));
      const windows: number[][] = [];
      for (let i = 0; i + 2 <= ids.length; i += 128) windows.push(ids.slice(i, i + 128));
      const run = (opts: GpuLlamaOptions) =>
        withGpuModel(w, { maxSeq: 256, maxBatch: 128, ...opts }, async (m) => {
          const ppl = (await evaluatePerplexity(m, windows)).ppl;
          const gen = new Generator(m, tok);
          try {
            const it = gen.generateFromIds([1, 403, 407, 261, 378], {
              maxTokens: 24,
              temperature: 0,
              tokensPerReadback: 8,
            });
            let r = await it.next();
            while (!r.done) r = await it.next();
            return { ppl, ids: r.value.tokenIds, int4: m.residency.int4Linears };
          } finally {
            gen.destroy();
          }
        });
      const int4 = await run({});
      const f16 = await run({ weightDType: "f16" });
      assert.equal(int4.int4, 35);
      assert.equal(f16.int4, 0);
      const rel = Math.abs(int4.ppl - f16.ppl) / f16.ppl;
      assert.ok(rel < 1e-3, `ppl int4 ${int4.ppl} vs f16 ${f16.ppl} (rel ${rel})`);
      assert.deepEqual(int4.ids, f16.ids);
    });
  },
});
