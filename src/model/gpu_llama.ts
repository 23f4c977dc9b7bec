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
 * Several sequences can share one upload of the weights:
 * {@link GpuLlama.createSequence} returns another GpuLlama with its own
 * per-sequence buffers (KV cache, input tokens, context, decode state,
 * logits) and the same weights, kernels and activation scratch. The scratch
 * can be shared because every submit runs whole forward passes, and the
 * queue runs submits one after another.
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
import {
  type GpuInt4Weight,
  INT4_CHUNK,
  int4Unsupported,
  packInt4,
  uploadInt4,
} from "../gpu/int4_weight.ts";
import { type AttentionShape, INT4_UNIFORM_X_BYTES, WebGpuKernels } from "../gpu/kernels.ts";
import { readBuffer } from "../gpu/readback.ts";
import type { KvDType, WeightDType } from "../gpu/shader_source.ts";
import type { LlamaConfig } from "./config.ts";
import type { HostTensor, LlamaWeights } from "./weights.ts";

/** How a GpuLlama is laid out on the device. */
export interface GpuLlamaOptions {
  /** KV cache length in tokens (default: the model's context, at most 2048). */
  maxSeq?: number;
  /** Most tokens one forward call processes (default 256, the eval window). */
  maxBatch?: number;
  /**
   * Weight storage: "auto" keeps quantized (AWQ) linears 4-bit on the GPU
   * where the int4 kernels read them (4-bit, groups of a multiple of 32 or
   * per channel; others are dequantized to f16 with a warning), F16 files in
   * f16 and F32/BF16 in f32. "int4" is "auto" but refuses, naming the tensor,
   * a quantized linear it cannot keep as int4. "f16"/"f32" dequantize
   * everything to that type.
   */
  weightDType?: WeightDType | "auto" | "int4";
  /** Fuse q/k/v and gate/up (with SiLU) of int4 layers into one dispatch each (default true). */
  fuseInt4?: boolean;
  /**
   * KV cache element type: "auto" (default) is f16 when the device has
   * shader-f16 and the weights are not f32 (int4 or f16), else f32.
   */
  kvDType?: KvDType | "auto";
  /**
   * Device memory the model may use, in bytes. A context whose KV cache does
   * not fit beside the weights is refused before anything is allocated, with
   * the number of tokens that would fit. Default: on software adapters the
   * host's available memory; on GPUs no check (WebGPU does not report it).
   */
  memoryBudgetBytes?: number;
}

/** A linear weight on the GPU: float (f32/f16) or repacked int4. */
type LinearWeight = GpuWeight | GpuInt4Weight;

/** Which logits a forward pass produces. */
export type LogitRows = "all" | "last" | "none";

interface GpuLayer {
  attnNorm: GPUBuffer;
  /** q/k/v as one int4 weight (then wq/wk/wv are absent), with its concatenated bias. */
  qkv?: { w: GpuInt4Weight; bias?: GPUBuffer };
  wq?: LinearWeight;
  wk?: LinearWeight;
  wv?: LinearWeight;
  wo: LinearWeight;
  bq?: GPUBuffer;
  bk?: GPUBuffer;
  bv?: GPUBuffer;
  ffnNorm: GPUBuffer;
  /** gate/up as one int4 weight [gate; up] (then wGate/wUp are absent). */
  gateUp?: GpuInt4Weight;
  wGate?: LinearWeight;
  wUp?: LinearWeight;
  wDown: LinearWeight;
}

/** How the weights of a model are held on the device. */
export interface WeightResidency {
  /** Bytes of all weights resident on the device. */
  residentBytes: number;
  /** Bytes the same weights would take with every linear in f16. */
  f16Bytes: number;
  /** Linears kept 4-bit. */
  int4Linears: number;
  /** Quantized linears that could not stay int4 and were dequantized, with the reason. */
  dequantized: string[];
}

/** One layer's KV cache (per sequence, or [slots, maxSeq, kvDim] for a batch). */
export interface LayerCache {
  /** Keys after RoPE. */
  kCache: GPUBuffer;
  /** Values. */
  vCache: GPUBuffer;
}

/**
 * The buffers of a forward pass over rows of several sequences (KV slots):
 * row r is a token of slot rows[r].x at position states[slot].pos +
 * rows[r].y, and its K/V live in that slot's region of the batch caches.
 * See {@link GpuLlama.forwardRows} and src/model/decode_batch.ts.
 */
export interface BatchIO {
  /** Input token ids, one per row (u32). */
  tokens: GPUBuffer;
  /** Per row (slot, offset) (u32 pairs). */
  rows: GPUBuffer;
  /** Per slot decode state {pos, nTok, step, done}. */
  states: GPUBuffer;
  /** Per layer caches [slots, maxSeq, kvDim]. */
  cache: LayerCache[];
  /** Logits, one row per row ("all") or row 0 only ("last"). */
  logits: GPUBuffer;
}

/** What sequences of one model share: the uploaded weights and the activation scratch. */
interface SharedWeights {
  pool: BufferPool;
  embed: GpuWeight;
  lmHead: GpuWeight;
  norm: GPUBuffer;
  layers: GpuLayer[];
  act: Activations;
  weightBytes: number;
  residency: WeightResidency;
}

interface Activations {
  x: GPUBuffer;
  xb: GPUBuffer;
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  att: GPUBuffer;
  gate: GPUBuffer;
  up: GPUBuffer;
}

/** How #upload stores each tensor. */
interface UploadPlan {
  /** Float type of tensors not kept int4. */
  dtype: (t: HostTensor) => WeightDType;
  /** Keep quantized linears int4 where possible. */
  int4: boolean;
  /** Refuse quantized linears that cannot stay int4 instead of dequantizing them. */
  strict: boolean;
  /** Pack q/k/v and gate/up together. */
  fuse: boolean;
}

/**
 * Resident bytes of the weights under `plan` (without uploading): int4
 * linears as repacked codes + scales/zeros, everything else at its float size.
 */
function estimateWeightBytes(weights: LlamaWeights, plan: UploadPlan): number {
  const seen = new Set<HostTensor>();
  let bytes = 0;
  const add = (t: HostTensor | undefined, matrix: boolean) => {
    if (!t || seen.has(t)) return;
    seen.add(t);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const q = t.quantized;
    if (matrix && q && plan.int4 && !int4Unsupported(q)) {
      const groups = q.settings.groupSize === 0
        ? 1
        : Math.ceil(q.inFeatures / q.settings.groupSize);
      bytes += q.outFeatures * (Math.ceil(q.inFeatures / INT4_CHUNK) * 16 + groups * 4);
    } else {
      bytes += matrix ? n * (plan.dtype(t) === "f16" ? 2 : 4) : n * 4;
    }
  };
  add(weights.embed, true);
  add(weights.lmHead, true);
  add(weights.norm, false);
  for (const l of weights.layers) {
    for (const t of [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]) add(t, true);
    for (const t of [l.attnNorm, l.ffnNorm, l.bq, l.bk, l.bv]) add(t, false);
  }
  return bytes;
}

/** The host's available memory (lavapipe's device memory), or undefined if unknown. */
function hostAvailableBytes(): number | undefined {
  try {
    return Deno.systemMemoryInfo().available;
  } catch {
    return undefined;
  }
}

/**
 * Refuses, before anything is allocated, a context whose per-layer KV cache
 * exceeds one storage binding or whose KV cache does not fit in the memory
 * budget beside the weights and activations, saying how many tokens would fit.
 */
function checkContextFits(
  gpu: GpuContext,
  weights: LlamaWeights,
  plan: UploadPlan,
  maxSeq: number,
  maxBatch: number,
  kvDType: KvDType,
  budget: number | undefined,
): void {
  const c = weights.config;
  const perToken = c.numKvHeads * c.headDim * (kvDType === "f16" ? 2 : 4); // one layer, K or V
  const limit = gpu.limits.maxStorageBufferBindingSize;
  if (maxSeq * perToken > limit) {
    const fits = Math.floor(limit / perToken);
    throw new GpuError(
      `A context of ${maxSeq} tokens does not fit; at most ${fits} fit ` +
        `(one layer's ${kvDType} K cache must fit a ${limit}-byte storage binding)`,
    );
  }
  budget ??= gpu.isSoftware ? hostAvailableBytes() : undefined;
  if (budget === undefined) return;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const act = maxBatch * 4 *
    (3 * c.hiddenSize + 2 * qDim + 2 * kvDim + 2 * c.intermediateSize + c.vocabSize);
  const fixed = estimateWeightBytes(weights, plan) + act;
  const kvPerToken = 2 * c.numLayers * perToken;
  if (fixed + maxSeq * kvPerToken > budget) {
    const fits = Math.max(0, Math.floor((budget - fixed) / kvPerToken));
    throw new GpuError(
      `A context of ${maxSeq} tokens does not fit in ${(budget / 1e9).toFixed(2)} GB of device ` +
        `memory: the weights and activations take ${(fixed / 1e9).toFixed(2)} GB and each token ` +
        `of ${kvDType} KV cache ${kvPerToken} bytes; at most ${fits} tokens fit`,
    );
  }
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
  /** Resident weight bytes against f16, int4 linears and the ones dequantized. */
  readonly residency: WeightResidency;
  /** KV cache element type. */
  readonly kvDType: KvDType;

  /** This sequence's buffers (KV cache, tokens, context, state, logits). */
  #pool: BufferPool;
  /** Weights and scratch, shared with the other sequences of the same upload. */
  #shared: SharedWeights;
  /** The sequence that owns the weights (undefined for that one). */
  #parent?: GpuLlama;
  #children = new Set<GpuLlama>();
  #cache: LayerCache[];
  #plans = new Map<string, Promise<Dispatch[]>>();

  private constructor(
    gpu: GpuContext,
    config: LlamaConfig,
    maxSeq: number,
    maxBatch: number,
    kvDType: KvDType,
    source: { weights: LlamaWeights; plan: UploadPlan } | {
      parent: GpuLlama;
    },
  ) {
    const c = config;
    this.gpu = gpu;
    this.config = c;
    this.maxSeq = maxSeq;
    this.maxBatch = maxBatch;
    this.kvDType = kvDType;
    const kvDim = c.numKvHeads * c.headDim;
    const kvElem = kvDType === "f16" ? 2 : 4;
    if ("parent" in source) {
      this.#parent = source.parent;
      this.kernels = source.parent.kernels;
      this.#shared = source.parent.#shared;
    } else {
      this.kernels = new WebGpuKernels(gpu);
      this.#shared = GpuLlama.#upload(gpu, source.weights, maxBatch, source.plan);
    }
    this.weightBytes = this.#shared.weightBytes;
    this.residency = this.#shared.residency;
    const pool = this.#pool = new BufferPool(gpu);
    this.#cache = Array.from({ length: c.numLayers }, (_, i) => ({
      kCache: pool.acquire(maxSeq * kvDim * kvElem, `model.layers.${i}.k_cache`),
      vCache: pool.acquire(maxSeq * kvDim * kvElem, `model.layers.${i}.v_cache`),
    }));
    this.tokens = pool.acquire(maxBatch * 4 + 4, "tokens");
    this.context = pool.acquire(maxSeq * 4, "context");
    this.state = pool.acquire(STATE_BYTES, "state");
    this.logitsBuffer = pool.acquire(maxBatch * c.vocabSize * 4, "logits");
  }

  static #upload(
    gpu: GpuContext,
    weights: LlamaWeights,
    maxBatch: number,
    plan: UploadPlan,
  ): SharedWeights {
    const c = weights.config;
    const pool = new BufferPool(gpu);
    const notInt4 = new Map<string, string>(); // label -> why it was dequantized
    let int4Linears = 0;
    let int4Bytes = 0;
    let int4F16Bytes = 0;
    const up = (t: HostTensor, label: string) => uploadWeight(gpu, pool, t, plan.dtype(t), label);
    /** Whether these tensors stay int4 (records why not for quantized ones). */
    const int4 = (ts: HostTensor[], labels: string[]): boolean => {
      if (!plan.int4) return false;
      let ok = true;
      ts.forEach((t, i) => {
        if (!t.quantized) return (ok = false);
        const why = int4Unsupported(t.quantized);
        if (why) {
          if (plan.strict) throw new GpuError(`${labels[i]}: cannot be kept as int4: ${why}`);
          notInt4.set(labels[i], why);
          ok = false;
        }
      });
      return ok;
    };
    const upInt4 = (ts: HostTensor[], label: string): GpuInt4Weight => {
      const w = uploadInt4(pool, packInt4(ts.map((t) => t.quantized!), label), label);
      int4Linears += ts.length;
      int4Bytes += w.bytes;
      int4F16Bytes += w.f16Bytes;
      return w;
    };
    const linear = (t: HostTensor, label: string): LinearWeight =>
      int4([t], [label]) ? upInt4([t], label) : up(t, label);
    const embed = up(weights.embed, "model.embed_tokens.weight");
    const lmHead = weights.lmHead === weights.embed ? embed : up(weights.lmHead, "lm_head.weight");
    const norm = uploadVector(pool, weights.norm, "model.norm.weight");
    const kvDim = c.numKvHeads * c.headDim;
    const sameGroups = (ts: HostTensor[]) =>
      ts.every((t) => t.quantized?.settings.groupSize === ts[0].quantized?.settings.groupSize);
    const layers = weights.layers.map((l, i): GpuLayer => {
      const name = (s: string) => `model.layers.${i}.${s}`;
      const layer: GpuLayer = {
        attnNorm: uploadVector(pool, l.attnNorm, name("input_layernorm.weight")),
        wo: linear(l.wo, name("self_attn.o_proj.weight")),
        ffnNorm: uploadVector(pool, l.ffnNorm, name("post_attention_layernorm.weight")),
        wDown: linear(l.wDown, name("mlp.down_proj.weight")),
      };
      const qkvNames = ["q_proj", "k_proj", "v_proj"].map((s) => name(`self_attn.${s}.weight`));
      const qkv = [l.wq, l.wk, l.wv];
      if (plan.fuse && int4(qkv, qkvNames) && sameGroups(qkv)) {
        const bias = l.bq && l.bk && l.bv
          ? uploadVector(pool, {
            data: Float32Array.from([...l.bq.data, ...l.bk.data, ...l.bv.data]),
            shape: [l.bq.data.length + 2 * kvDim],
            dtype: "F32",
          }, name("self_attn.qkv_proj.bias"))
          : undefined;
        layer.qkv = { w: upInt4(qkv, name("self_attn.qkv_proj (fused q/k/v)")), bias };
      } else {
        layer.wq = linear(l.wq, qkvNames[0]);
        layer.wk = linear(l.wk, qkvNames[1]);
        layer.wv = linear(l.wv, qkvNames[2]);
        layer.bq = l.bq && uploadVector(pool, l.bq, name("self_attn.q_proj.bias"));
        layer.bk = l.bk && uploadVector(pool, l.bk, name("self_attn.k_proj.bias"));
        layer.bv = l.bv && uploadVector(pool, l.bv, name("self_attn.v_proj.bias"));
      }
      const guNames = [name("mlp.gate_proj.weight"), name("mlp.up_proj.weight")];
      if (plan.fuse && int4([l.wGate, l.wUp], guNames) && sameGroups([l.wGate, l.wUp])) {
        layer.gateUp = upInt4([l.wGate, l.wUp], name("mlp.gate_up_proj (fused gate/up)"));
      } else {
        layer.wGate = linear(l.wGate, guNames[0]);
        layer.wUp = linear(l.wUp, guNames[1]);
      }
      return layer;
    });
    const weightBytes = pool.allocatedBytes;
    const dequantized = [...notInt4].map(([label, why]) => `${label}: ${why}`);
    if (dequantized.length) {
      console.warn(
        `awq-edge: ${dequantized.length} quantized linear(s) dequantized to f16 on the GPU ` +
          `(not readable by the int4 kernels), e.g. ${dequantized[0]}`,
      );
    }
    const residency: WeightResidency = {
      residentBytes: weightBytes,
      f16Bytes: weightBytes - int4Bytes + int4F16Bytes,
      int4Linears,
      dequantized,
    };
    const qDim = c.numHeads * c.headDim;
    // At least 64 KiB each: the int4 GEMV may bind an input as a 64 KiB uniform.
    const f = (n: number, label: string) =>
      pool.acquire(Math.max(maxBatch * n * 4, INT4_UNIFORM_X_BYTES), label);
    const act = {
      x: f(c.hiddenSize, "x"),
      xb: f(Math.max(c.hiddenSize, qDim), "xb"),
      q: f(qDim, "q"),
      k: f(kvDim, "k"),
      v: f(kvDim, "v"),
      att: f(qDim, "att"),
      gate: f(c.intermediateSize, "gate"),
      up: f(c.intermediateSize, "up"),
    };
    return { pool, embed, lmHead, norm, layers, act, weightBytes, residency };
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
    const choice = options.weightDType ?? "auto";
    const plan: UploadPlan = {
      dtype: (t: HostTensor): WeightDType =>
        choice === "f16" || choice === "f32" ? choice : t.dtype === "F16" ? "f16" : "f32",
      int4: choice === "auto" || choice === "int4",
      strict: choice === "int4",
      fuse: options.fuseInt4 ?? true,
    };
    const kvChoice = options.kvDType ?? "auto";
    const kvDType: KvDType = kvChoice !== "auto"
      ? kvChoice
      : gpu.hasF16 && plan.dtype(weights.embed) === "f16"
      ? "f16"
      : "f32";
    if (kvDType === "f16" && !gpu.hasF16) {
      throw new GpuError("An f16 KV cache needs the shader-f16 feature, which this adapter lacks");
    }
    checkContextFits(gpu, weights, plan, maxSeq, maxBatch, kvDType, options.memoryBudgetBytes);
    const model = new GpuLlama(gpu, c, maxSeq, maxBatch, kvDType, { weights, plan });
    await model.forward(1, "last"); // compile the pipelines up front
    gpu.check();
    return model;
  }

  /**
   * Another sequence on the same weights: its own KV cache, tokens, context,
   * decode state and logits (so it can be used exactly like this model, e.g.
   * by its own Generator), sharing the upload. Destroy it with destroy();
   * destroying the model that owns the weights destroys its sequences too.
   */
  async createSequence(): Promise<GpuLlama> {
    const owner = this.#parent ?? this;
    const seq = new GpuLlama(this.gpu, this.config, this.maxSeq, this.maxBatch, this.kvDType, {
      parent: owner,
    });
    owner.#children.add(seq);
    await seq.forward(1, "last");
    return seq;
  }

  /** Attention geometry for the kernels. */
  get shape(): AttentionShape {
    const c = this.config;
    return {
      nHeads: c.numHeads,
      nKv: c.numKvHeads,
      headDim: c.headDim,
      maxSeq: this.maxSeq,
      kv: this.kvDType,
    };
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

  /**
   * The dispatches of one forward pass over T rows of a batch (see
   * {@link BatchIO}): the same pass as {@link forward}, with RoPE, the KV
   * store and attention reading each row's slot and position. Not cached
   * here; the caller (a DecodeBatch) keeps its plans.
   */
  forwardRows(T: number, rows: LogitRows, io: BatchIO): Promise<Dispatch[]> {
    if (T < 1 || T > this.maxBatch) {
      throw new RequestError(`forwardRows: ${T} rows (1..${this.maxBatch} per call)`);
    }
    return this.#record(T, rows, io);
  }

  async #record(T: number, rows: LogitRows, io?: BatchIO): Promise<Dispatch[]> {
    const c = this.config;
    const k = this.kernels;
    const { x, xb, q, k: kb, v, att, gate, up } = this.#shared.act;
    const eps = c.rmsNormEps;
    const shape = this.shape;
    const steps: Promise<Dispatch | Dispatch[]>[] = [];
    const step = (d: Promise<Dispatch | Dispatch[]>) => steps.push(d);
    const mm = (
      W: LinearWeight,
      xIn: GPUBuffer,
      y: GPUBuffer,
      n: number,
      opts: { bias?: GPUBuffer; accumulate?: boolean } = {},
    ) => W.dtype === "int4" ? k.matmulInt4(W, xIn, y, n, opts) : k.matmul(W, xIn, y, n, opts);

    const w = this.#shared;
    const tokens = io?.tokens ?? this.tokens;
    const logits = io?.logits ?? this.logitsBuffer;
    step(k.embedRows(w.embed, tokens, x, T));
    for (const [i, L] of w.layers.entries()) {
      const { kCache, vCache } = io?.cache[i] ?? this.#cache[i];
      // attention block
      step(k.rmsnorm(x, L.attnNorm, xb, T, c.hiddenSize, eps));
      if (L.qkv) {
        step(k.matmulInt4(L.qkv.w, xb, [q, kb, v], T, { bias: L.qkv.bias }));
      } else {
        step(mm(L.wq!, xb, q, T, { bias: L.bq }));
        step(mm(L.wk!, xb, kb, T, { bias: L.bk }));
        step(mm(L.wv!, xb, v, T, { bias: L.bv }));
      }
      if (io) {
        step(
          k.ropeStoreBatched(q, kb, v, kCache, vCache, io.states, io.rows, T, shape, c.ropeTheta),
        );
        step(k.attentionBatched(q, kCache, vCache, att, io.states, io.rows, T, shape));
      } else {
        step(k.ropeStore(q, kb, v, kCache, vCache, this.state, T, shape, c.ropeTheta));
        step(k.attention(q, kCache, vCache, att, this.state, T, shape));
      }
      step(mm(L.wo, att, x, T, { accumulate: true })); // x += Wo · att
      // feed-forward block
      step(k.rmsnorm(x, L.ffnNorm, xb, T, c.hiddenSize, eps));
      if (L.gateUp) {
        step(k.gateUpInt4(L.gateUp, xb, gate, up, T)); // gate = silu(Wg · xb) * (Wu · xb)
      } else {
        step(mm(L.wGate!, xb, gate, T));
        step(mm(L.wUp!, xb, up, T));
        step(k.siluMul(gate, up, T * c.intermediateSize));
      }
      step(mm(L.wDown, gate, x, T, { accumulate: true })); // x += Wdown · (silu(g) * u)
    }
    if (rows !== "none") {
      const n = rows === "all" ? T : 1;
      step(k.rmsnorm(x, w.norm, xb, n, c.hiddenSize, eps, T - n));
      step(k.matmulRows(w.lmHead, xb, logits, n));
    }
    return (await Promise.all(steps)).flat();
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

  /**
   * Releases this sequence's buffers; on the model that owns the weights,
   * also the weights, the kernels and every sequence created from it.
   */
  destroy(): void {
    this.#pool.destroy();
    if (this.#parent) {
      this.#parent.#children.delete(this);
      return;
    }
    for (const child of this.#children) child.#pool.destroy();
    this.#children.clear();
    this.kernels.destroy();
    this.#shared.pool.destroy();
  }
}
