/**
 * The Llama forward pass on WebGPU. {@link GpuLlama.forward} reads top to
 * bottom like llama2.c's `forward()`: embed, then per layer norm, q/k/v, RoPE,
 * attention, output projection with residual, norm, SwiGLU FFN with residual,
 * then the final norm and the classifier. Each step is one GPU dispatch; the
 * list is built once per token count and replayed.
 *
 * Buffers stay on the GPU: token ids in, logits out, the KV cache, and the
 * decode state (`pos`, `nTok`, `step`, `done`) that RoPE, attention and the
 * sampler read, so many decode steps run in one submit.
 *
 * @example
 * ```ts ignore
 * const gpu = await acquireGpu();
 * const model = await GpuLlama.load(gpu, weights, { maxSeq: 256 });
 * const logits = await model.logits([1, 403, 407], 0); // [3, vocab]
 * ```
 * @module
 */

import { GpuError, RequestError } from "../errors.ts";
import { BufferPool } from "../gpu/buffer_pool.ts";
import { CommandBatch, type Dispatch } from "../gpu/command_batch.ts";
import type { GpuContext } from "../gpu/device.ts";
import { type GpuWeight, uploadVector, uploadWeight } from "../gpu/gpu_weight.ts";
import { type AttentionShape, WebGpuKernels } from "../gpu/kernels.ts";
import { readBuffer } from "../gpu/readback.ts";
import type { WeightDType } from "../gpu/shader_source.ts";
import type { LlamaConfig } from "./config.ts";
import type { HostTensor, LlamaWeights } from "./weights.ts";

/** How a GpuLlama is laid out on the device. */
export interface GpuLlamaOptions {
  /** KV cache length in tokens (default: the model's context, at most 2048). */
  maxSeq?: number;
  /** Most tokens one forward call processes (default 256, the eval window). */
  maxBatch?: number;
  /** Weight storage: "auto" keeps F16 files in f16 and F32/BF16 in f32. */
  weightDType?: WeightDType | "auto";
}

/** Which logits a forward pass produces. */
export type LogitRows = "all" | "last" | "none";

interface GpuLayer {
  attnNorm: GPUBuffer;
  wq: GpuWeight;
  wk: GpuWeight;
  wv: GpuWeight;
  wo: GpuWeight;
  bq?: GPUBuffer;
  bk?: GPUBuffer;
  bv?: GPUBuffer;
  ffnNorm: GPUBuffer;
  wGate: GpuWeight;
  wUp: GpuWeight;
  wDown: GpuWeight;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
}

/** Bytes of the decode state buffer: pos, nTok, step, done (u32 each). */
export const STATE_BYTES = 16;

/** A Llama-family model resident on a WebGPU device. */
export class GpuLlama {
  /** Model hyper-parameters. */
  readonly config: LlamaConfig;
  /** KV cache length. */
  readonly maxSeq: number;
  /** Most tokens per forward call. */
  readonly maxBatch: number;
  /** The device. */
  readonly gpu: GpuContext;
  /** Kernel builders (shared with the sampler). */
  readonly kernels: WebGpuKernels;
  /** Input token ids [maxBatch] (u32). */
  readonly tokens: GPUBuffer;
  /** Every token of the sequence so far, by position [maxSeq] (u32). */
  readonly context: GPUBuffer;
  /** Decode state: pos, nTok, step, done. */
  readonly state: GPUBuffer;
  /** Logits [maxBatch, vocab] (row 0 only for "last"). */
  readonly logitsBuffer: GPUBuffer;
  /** Bytes of weights resident on the device. */
  readonly weightBytes: number;

  #pool: BufferPool;
  #embed: GpuWeight;
  #lmHead: GpuWeight;
  #norm: GPUBuffer;
  #layers: GpuLayer[];
  #act: {
    x: GPUBuffer;
    xb: GPUBuffer;
    q: GPUBuffer;
    k: GPUBuffer;
    v: GPUBuffer;
    att: GPUBuffer;
    gate: GPUBuffer;
    up: GPUBuffer;
  };
  #plans = new Map<string, Promise<Dispatch[]>>();

  private constructor(
    gpu: GpuContext,
    weights: LlamaWeights,
    maxSeq: number,
    maxBatch: number,
    dtype: (t: HostTensor) => WeightDType,
  ) {
    const c = weights.config;
    this.gpu = gpu;
    this.config = c;
    this.maxSeq = maxSeq;
    this.maxBatch = maxBatch;
    this.kernels = new WebGpuKernels(gpu);
    const pool = this.#pool = new BufferPool(gpu);
    const up = (t: HostTensor, label: string) => uploadWeight(gpu, pool, t, dtype(t), label);
    this.#embed = up(weights.embed, "model.embed_tokens.weight");
    this.#lmHead = weights.lmHead === weights.embed
      ? this.#embed
      : up(weights.lmHead, "lm_head.weight");
    this.#norm = uploadVector(pool, weights.norm, "model.norm.weight");
    const kvDim = c.numKvHeads * c.headDim;
    this.#layers = weights.layers.map((l, i) => {
      const name = (s: string) => `model.layers.${i}.${s}`;
      return {
        attnNorm: uploadVector(pool, l.attnNorm, name("input_layernorm.weight")),
        wq: up(l.wq, name("self_attn.q_proj.weight")),
        wk: up(l.wk, name("self_attn.k_proj.weight")),
        wv: up(l.wv, name("self_attn.v_proj.weight")),
        wo: up(l.wo, name("self_attn.o_proj.weight")),
        bq: l.bq && uploadVector(pool, l.bq, name("self_attn.q_proj.bias")),
        bk: l.bk && uploadVector(pool, l.bk, name("self_attn.k_proj.bias")),
        bv: l.bv && uploadVector(pool, l.bv, name("self_attn.v_proj.bias")),
        ffnNorm: uploadVector(pool, l.ffnNorm, name("post_attention_layernorm.weight")),
        wGate: up(l.wGate, name("mlp.gate_proj.weight")),
        wUp: up(l.wUp, name("mlp.up_proj.weight")),
        wDown: up(l.wDown, name("mlp.down_proj.weight")),
        kCache: pool.acquire(maxSeq * kvDim * 4, name("k_cache")),
        vCache: pool.acquire(maxSeq * kvDim * 4, name("v_cache")),
      };
    });
    this.weightBytes = pool.allocatedBytes - c.numLayers * 2 * maxSeq * kvDim * 4;
    const qDim = c.numHeads * c.headDim;
    const f = (n: number, label: string) => pool.acquire(maxBatch * n * 4, label);
    this.#act = {
      x: f(c.hiddenSize, "x"),
      xb: f(Math.max(c.hiddenSize, qDim), "xb"),
      q: f(qDim, "q"),
      k: f(kvDim, "k"),
      v: f(kvDim, "v"),
      att: f(qDim, "att"),
      gate: f(c.intermediateSize, "gate"),
      up: f(c.intermediateSize, "up"),
    };
    this.tokens = pool.acquire(maxBatch * 4 + 4, "tokens");
    this.context = pool.acquire(maxSeq * 4, "context");
    this.state = pool.acquire(STATE_BYTES, "state");
    this.logitsBuffer = pool.acquire(maxBatch * c.vocabSize * 4, "logits");
  }

  /** Uploads `weights` and allocates the KV cache and activations. */
  static async load(
    gpu: GpuContext,
    weights: LlamaWeights,
    options: GpuLlamaOptions = {},
  ): Promise<GpuLlama> {
    const c = weights.config;
    const maxSeq = options.maxSeq ?? Math.min(c.maxPositionEmbeddings, 2048);
    const maxBatch = Math.min(options.maxBatch ?? 256, maxSeq);
    if (c.headDim % 2 !== 0 || c.headDim > 256) {
      throw new GpuError(`head_dim ${c.headDim} is not supported (even, at most 256)`);
    }
    const kvBytes = c.numLayers * 2 * maxSeq * c.numKvHeads * c.headDim * 4;
    const limit = gpu.limits.maxStorageBufferBindingSize;
    if (kvBytes / c.numLayers / 2 > limit) {
      const fits = Math.floor(limit / (c.numKvHeads * c.headDim * 4));
      throw new GpuError(`A context of ${maxSeq} tokens does not fit; at most ${fits} fit`);
    }
    const choice = options.weightDType ?? "auto";
    const dtype = (t: HostTensor): WeightDType =>
      choice !== "auto" ? choice : t.dtype === "F16" ? "f16" : "f32";
    const model = new GpuLlama(gpu, weights, maxSeq, maxBatch, dtype);
    await model.forward(1, "last"); // compile the pipelines up front
    gpu.check();
    return model;
  }

  /** Attention geometry for the kernels. */
  get shape(): AttentionShape {
    const c = this.config;
    return { nHeads: c.numHeads, nKv: c.numKvHeads, headDim: c.headDim, maxSeq: this.maxSeq };
  }

  /**
   * The dispatches of one forward pass over T tokens (token ids in `tokens`,
   * positions from `state.pos`), producing the logits `rows` asks for in
   * `logitsBuffer`. Built on first use per (T, rows), then reused.
   */
  forward(T: number, rows: LogitRows): Promise<Dispatch[]> {
    if (T < 1 || T > this.maxBatch) {
      throw new RequestError(`forward: ${T} tokens (1..${this.maxBatch} per call)`);
    }
    const key = `${T}/${rows}`;
    let plan = this.#plans.get(key);
    if (!plan) {
      plan = this.#record(T, rows);
      this.#plans.set(key, plan);
    }
    return plan;
  }

  async #record(T: number, rows: LogitRows): Promise<Dispatch[]> {
    const c = this.config;
    const k = this.kernels;
    const { x, xb, q, k: kb, v, att, gate, up } = this.#act;
    const eps = c.rmsNormEps;
    const shape = this.shape;
    const steps: Promise<Dispatch>[] = [];
    const step = (d: Promise<Dispatch>) => steps.push(d);

    step(k.embed(this.#embed, this.tokens, x, T));
    for (const L of this.#layers) {
      // attention block
      step(k.rmsnorm(x, L.attnNorm, xb, T, c.hiddenSize, eps));
      step(k.matmul(L.wq, xb, q, T, { bias: L.bq }));
      step(k.matmul(L.wk, xb, kb, T, { bias: L.bk }));
      step(k.matmul(L.wv, xb, v, T, { bias: L.bv }));
      step(k.ropeStore(q, kb, v, L.kCache, L.vCache, this.state, T, shape, c.ropeTheta));
      step(k.attention(q, L.kCache, L.vCache, att, this.state, T, shape));
      step(k.matmul(L.wo, att, x, T, { accumulate: true })); // x += Wo · att
      // feed-forward block
      step(k.rmsnorm(x, L.ffnNorm, xb, T, c.hiddenSize, eps));
      step(k.matmul(L.wGate, xb, gate, T));
      step(k.matmul(L.wUp, xb, up, T));
      step(k.siluMul(gate, up, T * c.intermediateSize));
      step(k.matmul(L.wDown, gate, x, T, { accumulate: true })); // x += Wdown · (silu(g) * u)
    }
    if (rows !== "none") {
      const n = rows === "all" ? T : 1;
      step(k.rmsnorm(x, this.#norm, xb, n, c.hiddenSize, eps, T - n));
      step(k.matmul(this.#lmHead, xb, this.logitsBuffer, n));
    }
    return await Promise.all(steps);
  }

  /**
   * Writes `ids` as the next input tokens at positions `startPos...` and sets
   * the decode state (pos = startPos, nTok = ids.length, step = 0, done = 0).
   * Takes effect for work submitted afterwards.
   */
  setInput(ids: readonly number[], startPos: number): void {
    if (startPos + ids.length > this.maxSeq) {
      throw new RequestError(
        `${startPos + ids.length} tokens exceed the context of ${this.maxSeq} tokens`,
      );
    }
    const q = this.gpu.device.queue;
    const u = Uint32Array.from(ids);
    q.writeBuffer(this.tokens, 0, u);
    q.writeBuffer(this.context, startPos * 4, u);
    q.writeBuffer(this.state, 0, new Uint32Array([startPos, ids.length, 0, 0]));
  }

  /**
   * Runs a forward pass over `ids` at positions `startPos...` (extending the
   * KV cache) and returns logits [ids.length, vocab]. One readback: meant for
   * tests and tools, not for the decode loop.
   */
  async logits(ids: readonly number[], startPos: number): Promise<Float32Array> {
    this.setInput(ids, startPos);
    const plan = await this.forward(ids.length, "all");
    new CommandBatch(this.gpu).runAll(plan).submit();
    const bytes = ids.length * this.config.vocabSize * 4;
    return new Float32Array(await readBuffer(this.gpu, this.logitsBuffer, 0, bytes));
  }

  /** Releases every buffer of the model. */
  destroy(): void {
    this.kernels.destroy();
    this.#pool.destroy();
  }
}
