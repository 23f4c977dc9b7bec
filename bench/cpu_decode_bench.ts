/**
 * CPU backend decode and prefill throughput on the random-weight 483M Llama
 * (dim 2048, FFN 5632, 8 layers, 32 heads, 4 kv heads, vocab 32000; int4
 * g128 linears, fp16 embedding and lm_head as AWQ checkpoints keep them):
 * int4 with int8 and with exact f32 activations against fp16 and f32 of the
 * same (dequantized) model, on 1 and 2 threads, and our WebGPU backend on the
 * same machine (a few tokens only: on a software adapter it is very slow).
 * Quick mode runs a stories260K-shaped model instead, 1 thread.
 *
 * @module
 */

import process from "node:process";
import { CpuInferenceModel } from "../src/cpu/cpu_inference_model.ts";
import { placedBytes } from "../src/cpu/cpu_llama.ts";
import type { ActivationMode } from "../src/cpu/cpu_kernels.ts";
import type { InferenceModel } from "../src/engine/inference_model.ts";
import { withWeightDType } from "../src/engine/open_inference_model.ts";
import { GpuInferenceModel } from "../src/engine/gpu_inference_model.ts";
import { resolveSampling } from "../src/engine/sampling_options.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchResult,
  fixedPrompt,
  fmt,
  median,
} from "./common.ts";
import {
  BENCH_483M_CONFIG,
  benchQuantizedWeights,
  parameterCount,
  STORIES260K_CONFIG,
} from "./random_model.ts";

/** One CPU configuration. */
interface Variant {
  /** Figure key part, e.g. "int4_int8". */
  key: string;
  /** Weight storage. */
  dtype: "auto" | "f16" | "f32";
  /** Activations of int4 matmuls. */
  activations: ActivationMode;
}

const VARIANTS: Variant[] = [
  { key: "int4_int8", dtype: "auto", activations: "int8" },
  { key: "int4_f32", dtype: "auto", activations: "f32" },
  { key: "f16", dtype: "f16", activations: "f32" },
  { key: "f32", dtype: "f32", activations: "f32" },
];

/** CPU seconds of this process (all threads, Workers included). */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Prefill and decode tokens/s of `model` (greedy sequences after a warm-up;
 * the median of `runs` runs of each), and decode tokens per CPU-second of
 * the process: on a shared machine wall time counts other programs' load,
 * CPU time does not (idle Workers spin 0.5 ms after each job, which CPU
 * time does count).
 */
export async function cpuRates(
  model: InferenceModel,
  prompt: readonly number[],
  decodeTokens: number,
  runs = 1,
): Promise<{ prefill: number; decode: number; decodePerCpuSecond: number }> {
  const greedy = resolveSampling();
  const prefill: number[] = [], decode: number[] = [], perCpu: number[] = [];
  for (let run = 0; run < runs; run++) {
    const seq = model.openSequence();
    try {
      if (run === 0) {
        await seq.prefill(prompt.slice(0, 4), greedy, []);
        await seq.decode(2);
      }
      const t0 = performance.now();
      await seq.prefill(prompt, greedy, []);
      const t1 = performance.now();
      const c1 = cpuSeconds();
      await seq.decode(decodeTokens);
      const t2 = performance.now();
      const c2 = cpuSeconds();
      prefill.push(prompt.length / ((t1 - t0) / 1000));
      decode.push(decodeTokens / ((t2 - t1) / 1000));
      perCpu.push(decodeTokens / (c2 - c1));
    } finally {
      seq.destroy();
    }
  }
  return { prefill: median(prefill), decode: median(decode), decodePerCpuSecond: median(perCpu) };
}

/** The CPU decode/prefill benchmark. */
export const cpuDecodeBench: Benchmark = {
  name: "cpu",
  description: "CPU backend: 483M int4 (int8/f32 activations) vs fp16/f32 decode and prefill, " +
    "1 and 2 threads, vs WebGPU",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { gpu, quick, log } = ctx;
    const config = quick ? STORIES260K_CONFIG : BENCH_483M_CONFIG;
    const weights: LlamaWeights = benchQuantizedWeights(config, {
      groupSize: quick ? 32 : 128,
    });
    const promptLen = quick ? 16 : 128;
    const decodeTokens = quick ? 8 : 64;
    const runs = quick ? 1 : 3;
    const threads = quick ? [1] : [1, 2];
    const variants = quick ? VARIANTS.slice(0, 3) : VARIANTS;
    const prompt = fixedPrompt(promptLen, config.vocabSize);
    const maxSeq = promptLen + decodeTokens + 16;
    const figures: Record<string, number> = {};
    const notes = [
      `model: random ${quick ? "stories260K-shaped" : "483M"} Llama ` +
      `(${(parameterCount(weights) / 1e6).toFixed(1)}M parameters), int4 g${
        quick ? 32 : 128
      } linears, fp16 embed/lm_head; fp16/f32 variants are the same model dequantized`,
      `greedy; prefill = ${promptLen}-token prompt, decode = ${decodeTokens} ` +
      `tokens after it; int4: median of ${runs} run(s), others one run, after a warm-up; load average at start ${
        Deno.loadavg()[0].toFixed(1)
      } on ${navigator.hardwareConcurrency} CPUs`,
    ];
    const dequantized = new Map<string, LlamaWeights>();
    for (const v of variants) {
      const w = dequantized.get(v.dtype) ?? withWeightDType(weights, v.dtype);
      dequantized.set(v.dtype, w);
      for (const t of threads) {
        const l0 = performance.now();
        const model = await CpuInferenceModel.load(w, {
          maxSeq,
          threads: t,
          activations: v.activations,
        });
        const loadS = (performance.now() - l0) / 1000;
        try {
          if (model.notes.length && !notes.some((n) => n.startsWith("kernels:"))) {
            notes.push(`kernels: ${model.description}; ${model.notes.join("; ")}`);
          }
          // the int4 variants carry the targets: the median of several runs
          const r = await cpuRates(model, prompt, decodeTokens, v.dtype === "auto" ? runs : 1);
          figures[`decode_tps_${v.key}_t${t}`] = r.decode;
          figures[`prefill_tps_${v.key}_t${t}`] = r.prefill;
          figures[`decode_per_cpu_s_${v.key}_t${t}`] = r.decodePerCpuSecond;
          // Weight bytes read per token: every linear and lm_head, not the embedding table.
          const perToken = model.weightBytes - placedBytes(w.embed);
          figures[`decode_weight_gb_per_s_${v.key}_t${t}`] = perToken * r.decode / 1e9;
          figures[`weight_mb_${v.key}`] = model.weightBytes / 2 ** 20;
          log(
            `  ${v.key.padEnd(10)} ${t} thread(s): decode ${fmt(r.decode)} tok/s ` +
              `(${fmt(r.decodePerCpuSecond)} per CPU-s, weights read at ` +
              `${fmt(figures[`decode_weight_gb_per_s_${v.key}_t${t}`])} GB/s), prefill ` +
              `${fmt(r.prefill)} tok/s, weights ${fmt(model.weightBytes / 2 ** 20)} MiB ` +
              `(${model.description}; placed in ${loadS.toFixed(1)} s)`,
          );
        } finally {
          model.destroy();
        }
      }
    }
    const tMax = threads[threads.length - 1];
    for (const v of variants.slice(1)) {
      figures[`decode_int4_int8_vs_${v.key}_t${tMax}`] = figures[`decode_tps_int4_int8_t${tMax}`] /
        figures[`decode_tps_${v.key}_t${tMax}`];
    }
    // WebGPU on the same machine, same weights (int4 where the GPU kernels take it).
    const gpuPrompt = prompt.slice(0, quick ? 16 : 8);
    const gpuTokens = quick ? 8 : 3;
    const llama = await GpuLlama.load(gpu, weights, { maxSeq, maxBatch: 64 });
    const gm = new GpuInferenceModel(llama, { owns: true });
    try {
      const r = await cpuRates(gm, gpuPrompt, gpuTokens);
      figures.webgpu_decode_tps = r.decode;
      figures.webgpu_prefill_tps = r.prefill;
      figures[`decode_cpu_int4_int8_t${tMax}_vs_webgpu`] =
        figures[`decode_tps_int4_int8_t${tMax}`] /
        r.decode;
      log(
        `  webgpu on ${gm.description}: decode ${fmt(r.decode)} tok/s, prefill ` +
          `${fmt(r.prefill)} tok/s (${gpuPrompt.length}-token prompt, ${gpuTokens} tokens)`,
      );
    } finally {
      gm.destroy();
    }
    return { figures, notes };
  },
};
