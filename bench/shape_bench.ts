/**
 * Real layer shapes on a software adapter: TinyLlama-1.1B layers (dim 2048,
 * FFN 5632, 32 heads, 4 kv heads, vocab 32000) but only 2 layers and random
 * weights, decoded with f16 and with f32 weights. Reports the f16/f32 decode
 * speed ratio and the effective weight-read bandwidth.
 *
 * At f32 the 32000 x 2048 embedding and lm_head are 262 MB each, over
 * lavapipe's 128 MiB storage binding limit, and GpuLlama refuses them; the
 * benchmark then uses vocab 16000 for both dtypes (131 MB at f32) and says so.
 *
 * @module
 */

import { GpuError } from "../src/errors.ts";
import type { WeightDType } from "../src/gpu/shader_source.ts";
import type { LlamaConfig } from "../src/model/config.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchResult,
  fixedPrompt,
  fmt,
  gpuStepTime,
  median,
  readbackRoundTripMs,
} from "./common.ts";
import { benchWeights, parameterCount, TINYLLAMA_CONFIG } from "./random_model.ts";

/** Layers kept from TinyLlama. */
export const SHAPE_LAYERS = 2;

/** The vocabulary used when the full one is refused. */
export const FALLBACK_VOCAB = 16000;

/** Weight bytes one decode step reads (linear weights, lm_head, norms; one embedding row). */
export function bytesPerToken(c: LlamaConfig, dtype: WeightDType): number {
  const b = dtype === "f16" ? 2 : 4;
  const dim = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const perLayer = (2 * qDim * dim + 2 * kvDim * dim + 3 * c.intermediateSize * dim) * b +
    2 * dim * 4;
  return c.numLayers * perLayer + (c.vocabSize + 1) * dim * b + dim * 4;
}

/** The shape benchmark. */
export const shapeBench: Benchmark = {
  name: "shape",
  description: "TinyLlama-1.1B layer shapes, 2 layers: f16 vs f32 decode tokens/s and GB/s",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { gpu, quick, log } = ctx;
    const steps = quick ? 4 : 16;
    const reps = quick ? 1 : 2;
    const notes: string[] = [];
    const figures: Record<string, number> = {};
    const opts = { maxSeq: 64, maxBatch: 8 };
    let config: LlamaConfig = { ...TINYLLAMA_CONFIG, numLayers: SHAPE_LAYERS };
    let weights: LlamaWeights = benchWeights(config);

    // Load f32 first: it is the one that may not fit.
    const loaded = new Map<WeightDType, { model: GpuLlama; loadSeconds: number }>();
    const load = async (dtype: WeightDType) => {
      const t0 = performance.now();
      const model = await GpuLlama.load(gpu, weights, { ...opts, weightDType: dtype });
      return { model, loadSeconds: (performance.now() - t0) / 1000 };
    };
    try {
      try {
        loaded.set("f32", await load("f32"));
      } catch (e) {
        if (!(e instanceof GpuError) || !/binding limit/.test(e.message)) throw e;
        const note = `vocab ${config.vocabSize} refused at f32 (${e.message}); ` +
          `using vocab ${FALLBACK_VOCAB} for both dtypes`;
        notes.push(note);
        log(`  NOTE: ${note}`);
        config = { ...config, vocabSize: FALLBACK_VOCAB };
        weights = benchWeights(config);
        loaded.set("f32", await load("f32"));
      }
      const params = parameterCount(weights);
      const rtMs = await readbackRoundTripMs(gpu, quick ? 5 : 15);
      const prompt = fixedPrompt(4, config.vocabSize);
      const desc = `dim ${config.hiddenSize}, FFN ${config.intermediateSize}, ` +
        `${config.numHeads}/${config.numKvHeads} heads, vocab ${config.vocabSize}, ` +
        `${config.numLayers} layers, untied lm_head; ${(params / 1e6).toFixed(1)}M parameters`;
      notes.push(desc);
      notes.push(
        `decode rate = ${steps} greedy steps in one submit + one readback (median of ${reps} alternating rounds); ` +
          `GB/s = weight bytes per token / ((submit time - readback round trip) / ${steps})`,
      );
      log(`  ${desc}`);
      log(`  ${steps} decode steps per submit, readback round trip ${fmt(rtMs)} ms`);
      log("  dtype   load s   tokens/s   GPU ms/token   weights MB/token   GB/s");
      // Both models resident; rounds alternate f32 / f16 so load from other
      // processes hits both alike.
      loaded.set("f16", await load("f16"));
      const dtypes = ["f32", "f16"] as const;
      const submits: Record<WeightDType, number[]> = { f32: [], f16: [] };
      for (let r = 0; r < reps; r++) {
        for (const dtype of dtypes) {
          const t = await gpuStepTime(loaded.get(dtype)!.model, prompt, steps, 1, rtMs);
          submits[dtype].push(t.submitMs);
        }
      }
      gpu.check();
      const rate: Partial<Record<WeightDType, number>> = {};
      for (const dtype of dtypes) {
        const submitMs = median(submits[dtype]);
        const gpuMsPerToken = (submitMs - rtMs) / steps;
        const bytes = bytesPerToken(config, dtype);
        const tps = steps / (submitMs / 1000);
        const gbps = bytes / (gpuMsPerToken / 1000) / 1e9;
        const loadSeconds = loaded.get(dtype)!.loadSeconds;
        rate[dtype] = tps;
        Object.assign(figures, {
          [`load_s_${dtype}`]: loadSeconds,
          [`tokens_per_s_${dtype}`]: tps,
          [`gpu_ms_per_token_${dtype}`]: gpuMsPerToken,
          [`weight_mb_per_token_${dtype}`]: bytes / 1e6,
          [`weight_gb_per_s_${dtype}`]: gbps,
        });
        log(
          `  ${dtype}   ${fmt(loadSeconds).padStart(6)}   ${fmt(tps).padStart(8)}   ` +
            `${fmt(gpuMsPerToken).padStart(12)}   ${fmt(bytes / 1e6).padStart(16)}   ${fmt(gbps)}`,
        );
      }
      figures.vocab_size = config.vocabSize;
      figures.ratio_f16_vs_f32 = rate.f16! / rate.f32!;
      figures.ratio_gb_per_s_f16_vs_f32 = figures.weight_gb_per_s_f16 / figures.weight_gb_per_s_f32;
      log(`  f16 / f32 decode tokens/s: ${fmt(figures.ratio_f16_vs_f32)}x (f32 = baseline)`);
    } finally {
      for (const { model } of loaded.values()) model.destroy();
    }
    return { figures, notes };
  },
};
