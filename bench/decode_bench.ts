/**
 * Decode throughput of stories260K (or random weights of its shape) with
 * 1, 4, 16 and 64 tokens per readback, as ratios against the
 * 1-token-per-readback baseline of the same run, and the per-token time of
 * the 64-per-readback mode split into GPU work and readback wait.
 *
 * @module
 */

import { GpuLlama } from "../src/model/gpu_llama.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchResult,
  fixedPrompt,
  fmt,
  generationRate,
  gpuStepTime,
  loadStories260K,
  median,
  readbackRoundTripMs,
} from "./common.ts";

/** Tokens per readback, the first one being the baseline. */
export const READBACK_MODES = [1, 4, 16, 64] as const;

/** The decode benchmark. */
export const decodeBench: Benchmark = {
  name: "decode",
  description: "stories260K decode tokens/s vs tokens per readback; GPU vs readback split",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { gpu, quick, log } = ctx;
    const tokens = quick ? 32 : 128;
    // At least one full readback of timed tokens in every mode.
    const timedTokens = (mode: number) => Math.ceil(tokens / mode) * mode;
    const reps = quick ? 1 : 3;
    const { weights, source } = await loadStories260K();
    const model = await GpuLlama.load(gpu, weights, { maxSeq: 512, maxBatch: 256 });
    const figures: Record<string, number> = {};
    const notes = [
      `model: ${source}`,
      `greedy, fixed 8-token prompt, ${tokens} timed tokens (at least one readback's worth) ` +
      `after the first readback, ` +
      `median of ${reps} run(s) per mode`,
    ];
    try {
      const prompt = fixedPrompt(8, model.config.vocabSize);
      await generationRate(model, prompt, 4, 8); // compile and warm up
      const rates = new Map<number, number[]>(READBACK_MODES.map((m) => [m, []]));
      const msPerToken64: number[] = [];
      // (a) total per-token time at 64 per readback (from the generator runs);
      // (b) bare readback round trip; (c) GPU time per token from K steps in
      // one submit. All are measured in every round, interleaved, so load
      // from other processes hits every figure alike.
      const K = 64;
      // The K steps run over the same mean position as the generator's timed
      // tokens at 64/readback (attention cost grows with the context).
      const meanPos = prompt.length + 1 + timedTokens(64) / 2;
      const stepPrompt = fixedPrompt(meanPos - K / 2, model.config.vocabSize);
      const rts: number[] = [];
      const submits: number[] = [];
      const encodes: number[] = [];
      for (let r = 0; r < reps; r++) {
        for (const mode of READBACK_MODES) {
          const g = await generationRate(model, prompt, mode, timedTokens(mode));
          rates.get(mode)!.push(g.tokensPerSecond);
          if (mode === 64) msPerToken64.push(g.msPerToken);
        }
        const rt = await readbackRoundTripMs(gpu, quick ? 8 : 10);
        const step = await gpuStepTime(model, stepPrompt, K, 1, rt);
        rts.push(rt);
        submits.push(step.submitMs);
        encodes.push(step.encodeMsPerToken);
      }
      const base = median(rates.get(1)!);
      log(
        `  model: ${source}; ${tokens} timed tokens per run (64 at 64/readback in quick mode), ` +
          `${reps} run(s) per mode`,
      );
      log("  tokens/readback   tokens/s   vs 1/readback");
      for (const mode of READBACK_MODES) {
        const tps = median(rates.get(mode)!);
        figures[`tokens_per_s_rb${mode}`] = tps;
        if (mode !== 1) figures[`ratio_rb${mode}_vs_rb1`] = tps / base;
        log(`  ${String(mode).padStart(15)}   ${fmt(tps).padStart(8)}   ${fmt(tps / base)}x`);
      }

      const totalMs = median(msPerToken64);
      const rtMs = median(rts);
      const submitMs = median(submits);
      const gpuMsPerToken = (submitMs - rtMs) / K;
      const encodeMsPerToken = median(encodes);
      const readbackPerToken = rtMs / 64;
      figures.total_ms_per_token_rb64 = totalMs;
      figures.readback_round_trip_ms = rtMs;
      figures.gpu_submit_ms_k64 = submitMs;
      figures.gpu_ms_per_token = gpuMsPerToken;
      figures.readback_ms_per_token_rb64 = readbackPerToken;
      figures.encode_ms_per_token = encodeMsPerToken;
      figures.host_other_ms_per_token_rb64 = totalMs - gpuMsPerToken - readbackPerToken -
        encodeMsPerToken;
      figures.gpu_share_rb64 = gpuMsPerToken / totalMs;
      figures.round_trip_vs_gpu_token = rtMs / gpuMsPerToken;
      log("  per-token split at 64 tokens/readback:");
      log(`    total                   ${fmt(totalMs)} ms`);
      log(
        `    GPU work                ${fmt(gpuMsPerToken)} ms  (${
          fmt(100 * gpuMsPerToken / totalMs)
        }% of total; ${K} steps in one submit took ${fmt(submitMs)} ms)`,
      );
      log(`    readback wait (RT/64)   ${fmt(readbackPerToken)} ms  (round trip ${fmt(rtMs)} ms)`);
      log(`    recording commands      ${fmt(encodeMsPerToken)} ms  (host, before submit)`);
      log(`    other host work         ${fmt(figures.host_other_ms_per_token_rb64)} ms (residual)`);
      log(`  one readback round trip = ${fmt(rtMs / gpuMsPerToken)} decode steps of GPU work`);
      gpu.check();
    } finally {
      model.destroy();
    }
    return { figures, notes };
  },
};
