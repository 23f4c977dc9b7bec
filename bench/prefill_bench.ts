/**
 * Prefill and perplexity-eval throughput of one 256-token window on
 * stories260K (or random weights of its shape), as ratios against the
 * decode tokens/s (64 tokens per readback) measured in the same run.
 *
 * @module
 */

import { CommandBatch } from "../src/gpu/command_batch.ts";
import { readBuffer } from "../src/gpu/readback.ts";
import { evaluatePerplexity } from "../src/engine/perplexity.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchResult,
  fixedPrompt,
  fmt,
  generationRate,
  loadStories260K,
  median,
} from "./common.ts";

/** Tokens in the window. */
export const WINDOW = 256;

/** The prefill benchmark. */
export const prefillBench: Benchmark = {
  name: "prefill",
  description: "stories260K prefill / eval tokens/s of one 256-token window vs decode tokens/s",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { gpu, quick, log } = ctx;
    const reps = quick ? 2 : 5;
    const { weights, source } = await loadStories260K();
    const model = await GpuLlama.load(gpu, weights, { maxSeq: 512, maxBatch: WINDOW });
    const figures: Record<string, number> = {};
    const notes = [
      `model: ${source}`,
      `prefill = forward(${WINDOW}, last logits) + one 4-byte readback; ` +
      `eval = evaluatePerplexity on one ${WINDOW}-token window; median of ${reps}`,
    ];
    try {
      const window = fixedPrompt(WINDOW, model.config.vocabSize);
      const plan = await model.forward(WINDOW, "last");
      const prefill: number[] = [];
      const evals: number[] = [];
      for (let r = 0; r <= reps; r++) {
        model.setInput(window, 0);
        const t0 = performance.now();
        new CommandBatch(gpu).runAll(plan).submit();
        await readBuffer(gpu, model.logitsBuffer, 0, 4);
        const t1 = performance.now();
        const e = await evaluatePerplexity(model, [window]);
        if (r > 0) { // r = 0 compiles and warms up
          prefill.push(WINDOW / ((t1 - t0) / 1000));
          evals.push(e.tokensPerSecond);
        }
      }
      const decodeTokens = quick ? 64 : 128; // whole readbacks of 64
      const decode: number[] = [];
      const prompt = fixedPrompt(8, model.config.vocabSize);
      await generationRate(model, prompt, 64, 8);
      for (let r = 0; r < (quick ? 1 : 3); r++) {
        decode.push((await generationRate(model, prompt, 64, decodeTokens)).tokensPerSecond);
      }
      const p = median(prefill);
      const e = median(evals);
      const d = median(decode);
      Object.assign(figures, {
        prefill_tokens_per_s: p,
        eval_tokens_per_s: e,
        decode_tokens_per_s_rb64: d,
        prefill_vs_decode: p / d,
        eval_vs_decode: e / d,
      });
      log(`  model: ${source}; window ${WINDOW} tokens, median of ${reps}`);
      log(`  decode (64/readback)  ${fmt(d).padStart(8)} tokens/s   1x (baseline)`);
      log(`  prefill               ${fmt(p).padStart(8)} tokens/s   ${fmt(p / d)}x`);
      log(`  eval (perplexity)     ${fmt(e).padStart(8)} tokens/s   ${fmt(e / d)}x`);
      gpu.check();
    } finally {
      model.destroy();
    }
    return { figures, notes };
  },
};
