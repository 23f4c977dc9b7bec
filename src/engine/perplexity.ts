/**
 * Perplexity with the protocol of docs/formats.md on either backend: each
 * window is one batched forward pass from position 0, and the NLLs of its
 * next tokens are summed by the backend (on WebGPU by a kernel, read back
 * every few windows, never per window).
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
import type { GpuLlama } from "../model/gpu_llama.ts";
import { asInferenceModel } from "./gpu_inference_model.ts";
import type { InferenceModel } from "./inference_model.ts";

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
  model: InferenceModel | GpuLlama,
  windows: readonly ArrayLike<number>[],
  options: PerplexityOptions = {},
): Promise<PerplexityResult> {
  if (windows.length === 0) throw new RequestError("perplexity: no window of 2 or more tokens");
  const m = asInferenceModel(model);
  const per = Math.max(1, options.windowsPerReadback ?? 32);
  const W = Math.max(...windows.map((w) => w.length));
  if (W > m.maxBatch) {
    throw new RequestError(`perplexity window of ${W} tokens exceeds ${m.maxBatch}`);
  }
  const t0 = performance.now();
  let sum = 0;
  let predicted = 0;
  let tokens = 0;
  try {
    for (let start = 0; start < windows.length; start += per) {
      const group = windows.slice(start, start + per);
      const sums = await m.windowNllSums(group);
      group.forEach((w, i) => {
        sum += sums[i];
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
    if (m !== model) m.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  const nll = sum / predicted;
  return { tokens, predicted, nll, ppl: Math.exp(nll), tokensPerSecond: tokens / seconds, seconds };
}
