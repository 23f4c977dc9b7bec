/**
 * Perplexity on the GPU with the protocol of docs/formats.md: each window is
 * one batched forward pass from position 0, the NLL of every next token is
 * computed by a kernel, and results are read back every few windows, never
 * per window.
 *
 * @example
 * ```ts ignore
 * const stream = buildTokenStream(text, tokenizer);
 * const r = await evaluatePerplexity(model, windows(stream, model.maxSeq));
 * console.log(r.ppl);
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { CommandBatch } from "../gpu/command_batch.ts";
import { readBuffer } from "../gpu/readback.ts";
import type { GpuLlama } from "../model/gpu_llama.ts";

/** What {@link evaluatePerplexity} reports. */
export interface PerplexityResult {
  /** Tokens in the stream (sum of window lengths). */
  tokens: number;
  /** Tokens predicted (each window's length minus one). */
  predicted: number;
  /** Mean negative log-likelihood in nats. */
  nll: number;
  /** exp(nll). */
  ppl: number;
  /** Tokens processed per second. */
  tokensPerSecond: number;
  /** Wall seconds. */
  seconds: number;
}

/** Progress of a running evaluation. */
export interface PerplexityProgress {
  /** Windows done. */
  done: number;
  /** Windows in all. */
  total: number;
  /** Running perplexity. */
  ppl: number;
}

/** Options for {@link evaluatePerplexity}. */
export interface PerplexityOptions {
  /** Called after each readback. */
  onProgress?: (p: PerplexityProgress) => void;
  /** Windows per readback (default 32). */
  windowsPerReadback?: number;
  /** Stops early with a RequestError. */
  signal?: AbortSignal;
}

/** Evaluates the mean next-token NLL of `windows` (each at most model.maxBatch tokens). */
export async function evaluatePerplexity(
  model: GpuLlama,
  windows: readonly ArrayLike<number>[],
  options: PerplexityOptions = {},
): Promise<PerplexityResult> {
  if (windows.length === 0) throw new RequestError("perplexity: no window of 2 or more tokens");
  const gpu = model.gpu;
  const per = Math.max(1, options.windowsPerReadback ?? 32);
  const W = Math.max(...windows.map((w) => w.length));
  if (W > model.maxBatch) {
    throw new RequestError(`perplexity window of ${W} tokens exceeds ${model.maxBatch}`);
  }
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const scratch = gpu.device.createBuffer({ size: W * 4, usage });
  const results = gpu.device.createBuffer({ size: per * W * 4, usage });
  const nllPlans = new Map<number, Awaited<ReturnType<typeof model.kernels.nll>>>();
  const t0 = performance.now();
  let sum = 0;
  let predicted = 0;
  let tokens = 0;
  try {
    for (let start = 0; start < windows.length; start += per) {
      const group = windows.slice(start, start + per);
      for (let i = 0; i < group.length; i++) {
        const w = group[i];
        const T = w.length;
        model.setInput(Array.from(w), 0);
        let nll = nllPlans.get(T);
        if (!nll) {
          nll = await model.kernels.nll(
            model.logitsBuffer,
            model.tokens,
            scratch,
            T - 1,
            model.config.vocabSize,
          );
          nllPlans.set(T, nll);
        }
        new CommandBatch(gpu)
          .runAll(await model.forward(T, "all"))
          .run(nll)
          .copy(scratch, 0, results, i * W * 4, (T - 1) * 4)
          .submit();
      }
      const values = new Float32Array(await readBuffer(gpu, results, 0, group.length * W * 4));
      group.forEach((w, i) => {
        for (let j = 0; j < w.length - 1; j++) sum += values[i * W + j];
        predicted += w.length - 1;
        tokens += w.length;
      });
      if (!Number.isFinite(sum)) {
        throw new RequestError(
          `perplexity: non-finite NLL in windows ${start}..${start + group.length - 1}`,
        );
      }
      options.onProgress?.({
        done: start + group.length,
        total: windows.length,
        ppl: Math.exp(sum / predicted),
      });
      if (options.signal?.aborted) throw new RequestError("perplexity evaluation aborted");
    }
  } finally {
    scratch.destroy();
    results.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  const nll = sum / predicted;
  return { tokens, predicted, nll, ppl: Math.exp(nll), tokensPerSecond: tokens / seconds, seconds };
}
