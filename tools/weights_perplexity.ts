/**
 * Shared by the AWQ diagnostics: perplexity of in-memory weights (hybrids,
 * mirrored errors) on the first `fraction` of a text, with the protocol of
 * docs/formats.md, on one GPU device kept for every evaluation. Weights are
 * uploaded as f32, so quantized tensors are evaluated dequantized.
 *
 * @example
 * ```ts ignore
 * const judge = await weightsPerplexity(fp.tokenizer, "eval.txt", 0.5);
 * console.log(await judge.ppl(fp.weights));
 * judge.close();
 * ```
 * @module
 */

import { acquireGpu } from "../src/gpu/device.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import { evaluatePerplexity } from "../src/engine/perplexity.ts";
import { buildTokenStream, windows } from "../src/engine/perplexity_stream.ts";
import type { TextTokenizer } from "../src/tokenizer/types.ts";

/** Evaluates weights on a fixed token stream. */
export interface WeightsPerplexity {
  /** Perplexity of `w` on the stream. */
  ppl(w: LlamaWeights): Promise<number>;
  /** Releases the device. */
  close(): void;
}

/** Tokenizes the first `fraction` of `textPath` and opens a device; see the module doc. */
export async function weightsPerplexity(
  tokenizer: Pick<TextTokenizer, "encode">,
  textPath: string,
  fraction: number,
): Promise<WeightsPerplexity> {
  const text = await Deno.readTextFile(textPath);
  const stream = buildTokenStream(text.slice(0, Math.floor(text.length * fraction)), tokenizer);
  const gpu = await acquireGpu();
  return {
    async ppl(w) {
      const m = await GpuLlama.load(gpu, w, { weightDType: "f32" });
      try {
        return (await evaluatePerplexity(m, windows(stream, m.maxSeq))).ppl;
      } finally {
        m.destroy();
      }
    },
    close: () => gpu.destroy(),
  };
}
