/**
 * The WebGPU backend behind {@link InferenceModel}: a wrapper of `GpuLlama`
 * (src/model/gpu_llama.ts) whose sequences keep the decode loop on the GPU
 * (N forward + sample steps per submit, one readback of N ids), whose
 * perplexity computes NLLs with a kernel and reads them back per group of
 * windows, and whose decode slots are a `DecodeBatch`.
 *
 * @example
 * ```ts ignore
 * const model = new GpuInferenceModel(await GpuLlama.load(gpu, weights), { owns: true });
 * const seq = model.openSequence();
 * console.log(await seq.prefill([1, 403, 407], resolveSampling(), [2]));
 * model.destroy();
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { CommandBatch, type Dispatch } from "../gpu/command_batch.ts";
import { readBuffer } from "../gpu/readback.ts";
import { createUniform, packUniform } from "../gpu/uniforms.ts";
import { DecodeBatch } from "../model/decode_batch.ts";
import { GpuLlama } from "../model/gpu_llama.ts";
import type { DecodeSlots, InferenceModel, SequenceDecoder } from "./inference_model.ts";
import { type ResolvedSampling, resolveSampling, samplerUniform } from "./sampling_options.ts";

/** Options of {@link GpuInferenceModel}. */
export interface GpuInferenceModelOptions {
  /** destroy() also destroys the GpuLlama and its device (default false). */
  owns?: boolean;
  /** Called by destroy() after the model (e.g. to release the device). */
  onDestroy?: () => void;
}

/** A GpuLlama as an {@link InferenceModel}. */
export class GpuInferenceModel implements InferenceModel {
  /** Always "webgpu". */
  readonly backend = "webgpu" as const;
  /** The wrapped model. */
  readonly gpuModel: GpuLlama;
  readonly #options: GpuInferenceModelOptions;
  #nllScratch?: GPUBuffer;
  readonly #nllPlans = new Map<number, Dispatch>();

  /** Wraps `model`. */
  constructor(model: GpuLlama, options: GpuInferenceModelOptions = {}) {
    this.gpuModel = model;
    this.#options = options;
  }

  /** The adapter. */
  get description(): string {
    const g = this.gpuModel.gpu;
    return `${g.adapterDescription}${g.isSoftware ? " [software adapter]" : ""}`;
  }

  /** Model hyper-parameters. */
  get config(): GpuLlama["config"] {
    return this.gpuModel.config;
  }

  /** KV cache length. */
  get maxSeq(): number {
    return this.gpuModel.maxSeq;
  }

  /** Most tokens per pass. */
  get maxBatch(): number {
    return this.gpuModel.maxBatch;
  }

  /** Bytes of weights on the device. */
  get weightBytes(): number {
    return this.gpuModel.weightBytes;
  }

  /** A sequence on the model's own KV cache and decode state (one at a time). */
  openSequence(): SequenceDecoder {
    return new GpuSequence(this.gpuModel);
  }

  /** Each window is one batched pass; NLLs by kernel, one readback for all windows. */
  async windowNllSums(windows: readonly ArrayLike<number>[]): Promise<number[]> {
    const model = this.gpuModel;
    const gpu = model.gpu;
    const W = Math.max(...windows.map((w) => w.length));
    if (W > model.maxBatch) {
      throw new RequestError(`perplexity window of ${W} tokens exceeds ${model.maxBatch}`);
    }
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const scratch = this.#nllScratch ??= gpu.device.createBuffer({
      size: model.maxBatch * 4,
      usage,
    });
    const results = gpu.device.createBuffer({ size: windows.length * W * 4, usage });
    try {
      for (let i = 0; i < windows.length; i++) {
        const w = windows[i];
        const T = w.length;
        model.setInput(Array.from(w), 0);
        let nll = this.#nllPlans.get(T);
        if (!nll) {
          nll = await model.kernels.nll(
            model.logitsBuffer,
            model.tokens,
            scratch,
            T - 1,
            model.config.vocabSize,
          );
          this.#nllPlans.set(T, nll);
        }
        new CommandBatch(gpu)
          .runAll(await model.forward(T, "all"))
          .run(nll)
          .copy(scratch, 0, results, i * W * 4, (T - 1) * 4)
          .submit();
      }
      const values = new Float32Array(await readBuffer(gpu, results, 0, windows.length * W * 4));
      return windows.map((w, i) => {
        let sum = 0;
        for (let j = 0; j < w.length - 1; j++) sum += values[i * W + j];
        return sum;
      });
    } finally {
      results.destroy();
    }
  }

  /** A DecodeBatch of `slots` KV slots on the model's weights. */
  createDecodeSlots(slots: number, maxSteps: number): Promise<DecodeSlots> {
    return DecodeBatch.create(this.gpuModel, slots, maxSteps);
  }

  /** Releases the NLL scratch; with `owns`, the model too. */
  destroy(): void {
    this.#nllScratch?.destroy();
    this.#nllScratch = undefined;
    if (this.#options.owns) this.gpuModel.destroy();
    this.#options.onDestroy?.();
  }
}

/** The GPU decode loop of one sequence: the sampler writes ids to a buffer read back per call. */
class GpuSequence implements SequenceDecoder {
  readonly #model: GpuLlama;
  readonly #work: GPUBuffer;
  readonly #out: GPUBuffer;
  readonly #params: GPUBuffer;
  readonly #outCap = 256;
  #sample?: Promise<Dispatch>;
  #wait = 0;

  constructor(model: GpuLlama) {
    this.#model = model;
    const d = model.gpu.device;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.#work = d.createBuffer({ size: model.config.vocabSize * 4, usage });
    this.#out = d.createBuffer({ size: this.#outCap * 4, usage });
    this.#params = createUniform(
      model.gpu,
      samplerUniform(resolveSampling(), model.config.vocabSize, model.maxSeq, []),
      { storage: true },
    );
  }

  get waitSeconds(): number {
    return this.#wait / 1000;
  }

  #sampleDispatch(): Promise<Dispatch> {
    const m = this.#model;
    this.#sample ??= m.kernels.sample(
      m.logitsBuffer,
      this.#work,
      m.context,
      m.tokens,
      m.state,
      this.#out,
      this.#params,
    );
    return this.#sample;
  }

  async prefill(
    promptIds: readonly number[],
    sampling: ResolvedSampling,
    eosIds: readonly number[],
  ): Promise<number> {
    const m = this.#model;
    const gpu = m.gpu;
    gpu.device.queue.writeBuffer(
      this.#params,
      0,
      packUniform(samplerUniform(sampling, m.config.vocabSize, m.maxSeq, eosIds)),
    );
    const sample = await this.#sampleDispatch();
    // All but the last chunk without logits; the last chunk then samples.
    let pos = 0;
    while (promptIds.length - pos > m.maxBatch) {
      const chunk = promptIds.slice(pos, pos + m.maxBatch);
      m.setInput(chunk, pos);
      new CommandBatch(gpu).runAll(await m.forward(chunk.length, "none")).submit();
      pos += chunk.length;
    }
    const last = promptIds.slice(pos);
    m.setInput(last, pos);
    new CommandBatch(gpu).runAll(await m.forward(last.length, "last")).run(sample).submit();
    return (await this.#read(1))[0];
  }

  async decode(steps: number): Promise<Uint32Array> {
    const want = Math.max(1, Math.min(steps, this.#outCap));
    const m = this.#model;
    const sample = await this.#sampleDispatch();
    const decodeStep = await m.forward(1, "last");
    const batch = new CommandBatch(m.gpu);
    for (let i = 0; i < want; i++) batch.runAll(decodeStep).run(sample);
    batch.submit();
    return await this.#read(want);
  }

  async #read(n: number): Promise<Uint32Array> {
    const m = this.#model;
    const r0 = performance.now();
    const out = new Uint32Array(await readBuffer(m.gpu, this.#out, 0, n * 4));
    this.#wait += performance.now() - r0;
    m.gpu.device.queue.writeBuffer(m.state, 8, new Uint32Array([0])); // step = 0
    return out;
  }

  destroy(): void {
    this.#work.destroy();
    this.#out.destroy();
    this.#params.destroy();
  }
}

/**
 * `model` as an {@link InferenceModel}: a GpuLlama is wrapped (without
 * taking ownership); anything else is returned as is.
 *
 * @example
 * ```ts ignore
 * const m = asInferenceModel(gpuLlama); // m.backend === "webgpu"
 * ```
 */
export function asInferenceModel(model: InferenceModel | GpuLlama): InferenceModel {
  return model instanceof GpuLlama ? new GpuInferenceModel(model) : model;
}
