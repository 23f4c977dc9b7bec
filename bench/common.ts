/**
 * Shared pieces of the benchmarks: the report format, timing helpers, the
 * model the decode/prefill benchmarks use, and the measurements several of
 * them share (readback round trip, GPU time per decode step, generation
 * throughput).
 *
 * Every figure is measured in the same run as the baseline it is compared
 * with; absolute numbers are printed too, but only the ratios mean much on a
 * noisy machine.
 *
 * @module
 */

import { CommandBatch } from "../src/gpu/command_batch.ts";
import type { GpuContext } from "../src/gpu/device.ts";
import { readBuffer } from "../src/gpu/readback.ts";
import { createUniform } from "../src/gpu/uniforms.ts";
import { Generator } from "../src/engine/generator.ts";
import { resolveSampling, samplerUniform } from "../src/engine/sampling_options.ts";
import { readLlama2c } from "../src/formats/llama2c.ts";
import type { GpuLlama } from "../src/model/gpu_llama.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import type { TokenByteSource } from "../src/tokenizer/streaming_decoder.ts";
import type { TextTokenizer } from "../src/tokenizer/types.ts";
import { benchWeights, STORIES260K_CONFIG } from "./random_model.ts";

/** Settings every benchmark gets. */
export interface BenchContext {
  /** The device. */
  gpu: GpuContext;
  /** Smaller counts. */
  quick: boolean;
  /** Prints one human-readable line (stdout, or stderr under --json). */
  log: (line: string) => void;
}

/** What one benchmark reports. */
export interface BenchResult {
  /** Every figure, by name (ratios, and the absolute values behind them). */
  figures: Record<string, number>;
  /** Facts about how it was measured (model used, fallbacks taken). */
  notes: string[];
}

/** A benchmark. */
export interface Benchmark {
  /** Name for `--only`. */
  name: string;
  /** One-line description. */
  description: string;
  /** Runs it. */
  run(ctx: BenchContext): Promise<BenchResult>;
}

/** Median of `xs` (not empty). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Formats a number for the human-readable output. */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  return x.toPrecision(digits);
}

/** Where stories260K lives in the shared models folder. */
export const STORIES260K_PATH =
  new URL("../../shared/models/stories260K/stories260K.bin", import.meta.url)
    .pathname;

/** stories260K from ../shared when present, else random weights of its shape. */
export async function loadStories260K(): Promise<{ weights: LlamaWeights; source: string }> {
  try {
    await Deno.stat(STORIES260K_PATH);
  } catch {
    return {
      weights: benchWeights(STORIES260K_CONFIG, { dtype: "F32" }),
      source: "random weights of the stories260K shape (checkpoint not found)",
    };
  }
  return { weights: await readLlama2c(STORIES260K_PATH), source: "stories260K.bin" };
}

/**
 * A tokenizer for the generator that never ends a generation (no EOS) and
 * decodes to nothing, so every run produces exactly the tokens asked for.
 */
export function countingTokenizer(vocabSize: number): TextTokenizer & TokenByteSource {
  return {
    vocabSize,
    bosId: 1,
    eosIds: [],
    encode: () => [1],
    decode: () => "",
    tokenBytes: () => new Uint8Array(0),
  };
}

/** A fixed prompt: BOS then `n - 1` ids spread over the vocabulary. */
export function fixedPrompt(n: number, vocabSize: number): number[] {
  const ids = [1];
  for (let i = 1; i < n; i++) ids.push(3 + ((i * 7919) % (vocabSize - 3)));
  return ids;
}

/** Median time (ms) of submitting an empty batch and reading 4 bytes back. */
export async function readbackRoundTripMs(gpu: GpuContext, n: number): Promise<number> {
  const buf = gpu.device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  try {
    const times: number[] = [];
    for (let i = 0; i < n + 2; i++) {
      const t0 = performance.now();
      new CommandBatch(gpu).submit();
      await readBuffer(gpu, buf, 0, 4);
      if (i >= 2) times.push(performance.now() - t0); // two warm-ups
    }
    return median(times);
  } finally {
    buf.destroy();
  }
}

/**
 * Greedy generation of exactly `tokens` timed tokens with `perReadback`
 * decode steps per submit. The first readback (prefill plus the first token,
 * which the Generator submits alone) is not timed; `tokens` more follow it,
 * so every mode times the same number of steady-state tokens. Returns
 * tokens/s and the host's readback wait per token (ms).
 */
export async function generationRate(
  model: GpuLlama,
  prompt: readonly number[],
  perReadback: number,
  tokens: number,
): Promise<{ tokensPerSecond: number; msPerToken: number }> {
  const gen = new Generator(model, countingTokenizer(model.config.vocabSize));
  try {
    const it = gen.generateFromIds(prompt, {
      maxTokens: 1 + tokens,
      tokensPerReadback: perReadback,
      temperature: 0,
    });
    let first = -1;
    let r = await it.next();
    while (!r.done) {
      if (first < 0) first = r.value.tokenIds.length;
      r = await it.next();
    }
    const result = r.value;
    const timed = result.tokenIds.length - first;
    if (timed !== tokens) {
      throw new Error(`generation gave ${timed} timed tokens, expected ${tokens}`);
    }
    return {
      tokensPerSecond: timed / result.decodeSeconds,
      msPerToken: (result.decodeSeconds * 1000) / timed,
    };
  } finally {
    gen.destroy();
  }
}

/**
 * GPU time per decode step: `steps` forward+sample steps recorded into one
 * submit with a single readback, `reps` times. Returns the median wall time
 * from submit to readback done (ms), the GPU ms per token,
 * (that − roundTripMs) / steps, and the host time spent recording the
 * commands, per token (not part of the submit time).
 */
export async function gpuStepTime(
  model: GpuLlama,
  prompt: readonly number[],
  steps: number,
  reps: number,
  roundTripMs: number,
): Promise<{ submitMs: number; gpuMsPerToken: number; encodeMsPerToken: number }> {
  const gpu = model.gpu;
  const d = gpu.device;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const work = d.createBuffer({ size: model.config.vocabSize * 4, usage });
  const out = d.createBuffer({ size: Math.max(steps, 4) * 4, usage });
  const params = createUniform(
    gpu,
    samplerUniform(resolveSampling({ temperature: 0 }), model.config.vocabSize, model.maxSeq, []),
    { storage: true },
  );
  try {
    const sample = await model.kernels.sample(
      model.logitsBuffer,
      work,
      model.context,
      model.tokens,
      model.state,
      out,
      params,
    );
    const prefill = await model.forward(prompt.length, "last");
    const decode = await model.forward(1, "last");
    const times: number[] = [];
    const encodes: number[] = [];
    for (let rep = 0; rep <= reps; rep++) {
      // Restart from the prompt each time so the context stays short and equal.
      model.setInput(prompt, 0);
      new CommandBatch(gpu).runAll(prefill).run(sample).submit();
      await readBuffer(gpu, out, 0, 4);
      d.queue.writeBuffer(model.state, 8, new Uint32Array([0])); // step = 0
      const e0 = performance.now();
      const batch = new CommandBatch(gpu);
      for (let i = 0; i < steps; i++) batch.runAll(decode).run(sample);
      const t0 = performance.now(); // the clock starts at submit: recording is host work
      batch.submit();
      await readBuffer(gpu, out, 0, steps * 4);
      if (rep > 0) { // rep 0 warms up
        times.push(performance.now() - t0);
        encodes.push(t0 - e0);
      }
    }
    gpu.check();
    const submitMs = median(times);
    return {
      submitMs,
      gpuMsPerToken: (submitMs - roundTripMs) / steps,
      encodeMsPerToken: median(encodes) / steps,
    };
  } finally {
    work.destroy();
    out.destroy();
    params.destroy();
  }
}
