/**
 * The Llama forward pass on the CPU, over {@link CpuKernels}. {@link CpuLlama.forward}
 * reads top to bottom like llama2.c's `forward()`: embed, then per layer
 * RMSNorm, q/k/v (+ Qwen2 biases), RoPE, the new keys and values into the
 * sequence's cache, attention, output projection with residual, RMSNorm,
 * gate/up, SiLU-mul, down projection with residual; then the final norm and
 * the classifier for the rows asked for.
 *
 * The weights are placed once in the kernels' memory (int4 linears stay
 * int4); each sequence owns a KV cache ({@link KvCache}, f32
 * `[maxSeq, kvDim]` per layer) taken from a pool, so several sequences run on
 * one set of weights. {@link CpuLlama.forwardRows} decodes B sequences in one
 * pass (one row each, at its own position, with its own cache), so the
 * weights are read once per step for all of them.
 *
 * Everything lives in one WebAssembly memory (at most 4 GiB): a context
 * whose caches would not fit is refused with the number of tokens that do.
 *
 * @example
 * ```ts ignore
 * const model = CpuLlama.create(kernels, weights, { maxSeq: 256 });
 * const seq = model.acquireCache();
 * const prompt = model.forward([1, 403, 407], 0, seq, "all"); // [3, vocab]
 * const next = model.forward([261], 3, seq, "last");          // [1, vocab]
 * model.destroy();
 * ```
 * @module
 */

import { FormatError, RequestError } from "../errors.ts";
import type { LlamaConfig } from "../model/config.ts";
import type { HostTensor, LlamaWeights } from "../model/weights.ts";
import type { CpuAttentionShape, CpuKernels, CpuLinear, Ptr } from "./cpu_kernels.ts";

/** The most a wasm32 memory can hold: 65536 pages of 64 KiB. */
export const WASM32_MAX_BYTES = 65536 * 65536;

/** Which logits a pass produces. */
export type CpuLogitRows = "all" | "last" | "none";

/** Options of {@link CpuLlama.create}. */
export interface CpuLlamaOptions {
  /** KV cache length in tokens per sequence (default: the model's context, at most 2048). */
  maxSeq?: number;
  /** Most rows one pass processes (default 256, the eval window). */
  maxBatch?: number;
  /** KV caches to allocate up front (default 1); more are allocated on demand. */
  sequences?: number;
  /** Bytes the kernels' memory may hold (default 4 GiB, wasm32). */
  memoryLimit?: number;
}

/** One sequence's key/value cache: per layer an f32 `[maxSeq, kvDim]` block of keys and of values. */
export interface KvCache {
  /** Pool index (for messages). */
  readonly index: number;
  /** Keys after RoPE, per layer. */
  readonly k: readonly Ptr[];
  /** Values, per layer. */
  readonly v: readonly Ptr[];
}

/** One row of a batched decode step: a token of a sequence at a position. */
export interface CpuRow {
  /** Input token id. */
  token: number;
  /** Its position in its sequence (the cache holds positions 0..pos-1). */
  pos: number;
  /** The sequence's cache. */
  cache: KvCache;
}

interface CpuLayer {
  attnNorm: Ptr;
  wq: CpuLinear;
  wk: CpuLinear;
  wv: CpuLinear;
  wo: CpuLinear;
  bq?: Ptr;
  bk?: Ptr;
  bv?: Ptr;
  ffnNorm: Ptr;
  wGate: CpuLinear;
  wUp: CpuLinear;
  wDown: CpuLinear;
}

interface Activations {
  x: Ptr;
  xb: Ptr;
  q: Ptr;
  k: Ptr;
  v: Ptr;
  att: Ptr;
  gate: Ptr;
  up: Ptr;
  logits: Ptr;
}

/** Rows of one sequence at consecutive positions, within a pass. */
interface Segment {
  cache: KvCache;
  pos0: number;
  count: number;
}

/** Bytes a weight will take in the kernels' memory (int4: codes + f16 scales + zeros). */
export function placedBytes(t: HostTensor): number {
  const [rows, cols = 1] = t.shape;
  const q = t.quantized;
  if (q && q.settings.bits === 4) {
    const g = q.settings.groupSize > 0 ? q.settings.groupSize : cols;
    const groups = Math.ceil(cols / g);
    return rows * Math.ceil(cols / 2) + rows * groups * 3;
  }
  return rows * cols * (t.dtype === "F16" ? 2 : 4);
}

/** Int4 weights go to the int kernels; other bit widths run dequantized (f32). */
function forKernels(t: HostTensor): HostTensor {
  if (!t.quantized || t.quantized.settings.bits === 4) return t;
  return { data: t.data, shape: t.shape, dtype: "F32" };
}

function checkShape(t: HostTensor | undefined, shape: number[], name: string): void {
  if (t === undefined) return;
  const n = shape.reduce((a, b) => a * b, 1);
  const m = t.shape.reduce((a, b) => a * b, 1);
  if (n !== m) {
    throw new FormatError(`${name}: shape [${t.shape}] does not match the config ([${shape}])`);
  }
}

/** A Llama-family model whose weights live in a CPU kernels' memory. */
export class CpuLlama {
  /** Model hyper-parameters. */
  readonly config: LlamaConfig;
  /** KV cache length per sequence. */
  readonly maxSeq: number;
  /** Most rows per pass. */
  readonly maxBatch: number;
  /** The kernels (owned: destroyed with the model). */
  readonly kernels: CpuKernels;
  /** Bytes of weights placed in memory. */
  readonly weightBytes: number;
  /** Bytes of one sequence's KV cache. */
  readonly cacheBytes: number;
  readonly #memoryLimit: number;
  #usedBytes: number;
  readonly #embed: CpuLinear;
  readonly #lmHead: CpuLinear;
  readonly #norm: Ptr;
  readonly #layers: CpuLayer[];
  readonly #act: Activations;
  readonly #caches: KvCache[] = [];
  readonly #free: KvCache[] = [];

  private constructor(
    kernels: CpuKernels,
    weights: LlamaWeights,
    maxSeq: number,
    maxBatch: number,
    memoryLimit: number,
  ) {
    const c = weights.config;
    this.config = c;
    this.kernels = kernels;
    this.maxSeq = maxSeq;
    this.maxBatch = maxBatch;
    this.#memoryLimit = memoryLimit;
    const k = kernels;
    const lin = (t: HostTensor, label: string) => k.linear(forKernels(t), label);
    const vec = (t: HostTensor) => k.vector(t.data);
    this.#embed = lin(weights.embed, "model.embed_tokens.weight");
    this.#lmHead = weights.lmHead === weights.embed
      ? this.#embed
      : lin(weights.lmHead, "lm_head.weight");
    this.#norm = vec(weights.norm);
    this.#layers = weights.layers.map((l, i) => {
      const name = (s: string) => `model.layers.${i}.${s}`;
      return {
        attnNorm: vec(l.attnNorm),
        wq: lin(l.wq, name("self_attn.q_proj.weight")),
        wk: lin(l.wk, name("self_attn.k_proj.weight")),
        wv: lin(l.wv, name("self_attn.v_proj.weight")),
        wo: lin(l.wo, name("self_attn.o_proj.weight")),
        bq: l.bq && vec(l.bq),
        bk: l.bk && vec(l.bk),
        bv: l.bv && vec(l.bv),
        ffnNorm: vec(l.ffnNorm),
        wGate: lin(l.wGate, name("mlp.gate_proj.weight")),
        wUp: lin(l.wUp, name("mlp.up_proj.weight")),
        wDown: lin(l.wDown, name("mlp.down_proj.weight")),
      };
    });
    const linears = [
      this.#embed,
      ...this.#layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]),
    ];
    if (this.#lmHead !== this.#embed) linears.push(this.#lmHead);
    this.weightBytes = linears.reduce((s, l) => s + l.bytes, 0);
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const f = (n: number) => k.alloc(maxBatch * n * 4);
    this.#act = {
      x: f(c.hiddenSize),
      xb: f(Math.max(c.hiddenSize, qDim)),
      q: f(qDim),
      k: f(kvDim),
      v: f(kvDim),
      att: f(qDim),
      gate: f(c.intermediateSize),
      up: f(c.intermediateSize),
      logits: f(c.vocabSize),
    };
    this.cacheBytes = c.numLayers * 2 * maxSeq * kvDim * 4;
    this.#usedBytes = this.weightBytes + activationBytes(c, maxBatch);
  }

  /**
   * Checks the weights against the config and the memory budget without
   * placing anything (so a context that does not fit fails before the
   * kernels start); returns the resolved sizes.
   */
  static plan(
    weights: LlamaWeights,
    options: CpuLlamaOptions = {},
  ): { maxSeq: number; maxBatch: number; sequences: number; limit: number } {
    const c = weights.config;
    const maxSeq = options.maxSeq ?? Math.min(c.maxPositionEmbeddings, 2048);
    if (!Number.isInteger(maxSeq) || maxSeq < 2) {
      throw new RequestError(`context ${maxSeq} must be an integer >= 2`);
    }
    const maxBatch = Math.min(options.maxBatch ?? 256, maxSeq);
    const sequences = options.sequences ?? 1;
    const limit = options.memoryLimit ?? WASM32_MAX_BYTES;
    checkWeights(weights);
    const dim = c.hiddenSize;
    const all = [
      weights.embed,
      ...weights.layers.flatMap((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]),
    ];
    if (weights.lmHead !== weights.embed) all.push(weights.lmHead);
    const weightBytes = all.reduce((s, t) => s + placedBytes(t), 0) +
      (c.numLayers * 2 + 1) * dim * 4;
    const fixed = weightBytes + activationBytes(c, maxBatch);
    const perToken = c.numLayers * 2 * c.numKvHeads * c.headDim * 4;
    if (fixed + sequences * maxSeq * perToken > limit) {
      throw contextError(maxSeq, sequences, fixed, perToken, limit);
    }
    return { maxSeq, maxBatch, sequences, limit };
  }

  /**
   * Checks the weights against the config and the memory budget, places the
   * weights in `kernels`' memory and preallocates `options.sequences` caches.
   * Throws a RequestError naming the context that fits when it does not.
   */
  static create(
    kernels: CpuKernels,
    weights: LlamaWeights,
    options: CpuLlamaOptions = {},
  ): CpuLlama {
    const { maxSeq, maxBatch, sequences, limit } = CpuLlama.plan(weights, options);
    const model = new CpuLlama(kernels, weights, maxSeq, maxBatch, limit);
    for (let i = 0; i < sequences; i++) model.#free.push(model.#allocCache());
    return model;
  }

  /** Attention geometry for the kernels. */
  get shape(): CpuAttentionShape {
    const c = this.config;
    return { nHeads: c.numHeads, nKv: c.numKvHeads, headDim: c.headDim };
  }

  #allocCache(): KvCache {
    if (this.#usedBytes + this.cacheBytes > this.#memoryLimit) {
      const perToken = this.cacheBytes / this.maxSeq;
      throw contextError(
        this.maxSeq,
        this.#caches.length + 1,
        this.#usedBytes - this.#caches.length * this.cacheBytes,
        perToken,
        this.#memoryLimit,
      );
    }
    const k = this.kernels;
    const bytes = this.cacheBytes / this.config.numLayers / 2;
    const cache: KvCache = {
      index: this.#caches.length,
      k: this.#layers.map(() => k.alloc(bytes)),
      v: this.#layers.map(() => k.alloc(bytes)),
    };
    this.#usedBytes += this.cacheBytes;
    this.#caches.push(cache);
    return cache;
  }

  /** A free KV cache for a new sequence (allocated when none is free). */
  acquireCache(): KvCache {
    return this.#free.pop() ?? this.#allocCache();
  }

  /** Returns a sequence's cache to the pool. */
  releaseCache(cache: KvCache): void {
    if (!this.#free.includes(cache)) this.#free.push(cache);
  }

  /**
   * Runs `tokens` of one sequence at positions `pos0, pos0+1, ...` (the
   * cache must hold positions 0..pos0-1), extending its cache, and returns
   * the logits of every row (`"all"`, [T, vocab]), of the last row
   * (`"last"`, [1, vocab]) or none (an empty array). At most maxBatch tokens.
   */
  forward(
    tokens: readonly number[],
    pos0: number,
    cache: KvCache,
    rows: CpuLogitRows,
  ): Float32Array<ArrayBuffer> {
    const T = tokens.length;
    if (T < 1 || T > this.maxBatch) {
      throw new RequestError(`forward: ${T} tokens (1..${this.maxBatch} per call)`);
    }
    if (!Number.isInteger(pos0) || pos0 < 0 || pos0 + T > this.maxSeq) {
      throw new RequestError(
        `${pos0 + T} tokens exceed the context of ${this.maxSeq} tokens`,
      );
    }
    return this.#pass(tokens, [{ cache, pos0, count: T }], rows);
  }

  /**
   * One decode step for B sequences: row r is `rows[r].token` at
   * `rows[r].pos` of its own cache. Returns logits [B, vocab].
   */
  forwardRows(rows: readonly CpuRow[]): Float32Array<ArrayBuffer> {
    const B = rows.length;
    if (B < 1 || B > this.maxBatch) {
      throw new RequestError(`forwardRows: ${B} rows (1..${this.maxBatch} per call)`);
    }
    for (const r of rows) {
      if (!Number.isInteger(r.pos) || r.pos < 0 || r.pos >= this.maxSeq) {
        throw new RequestError(`position ${r.pos} is outside the context of ${this.maxSeq} tokens`);
      }
    }
    return this.#pass(
      rows.map((r) => r.token),
      rows.map((r) => ({ cache: r.cache, pos0: r.pos, count: 1 })),
      "all",
    );
  }

  /** The forward pass over T rows made of consecutive segments of sequences. */
  #pass(
    tokens: readonly number[],
    segments: Segment[],
    rows: CpuLogitRows,
  ): Float32Array<ArrayBuffer> {
    const c = this.config;
    const k = this.kernels;
    const { x, xb, q, k: kb, v, att, gate, up, logits } = this.#act;
    const T = tokens.length;
    const dim = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const eps = c.rmsNormEps;
    const shape = this.shape;
    for (const tok of tokens) {
      if (!Number.isInteger(tok) || tok < 0 || tok >= c.vocabSize) {
        throw new RequestError(`token ${tok} is outside [0, ${c.vocabSize})`);
      }
    }

    k.embed(this.#embed, tokens, x);
    for (const [l, L] of this.#layers.entries()) {
      // attention block
      k.rmsnorm(x, L.attnNorm, xb, T, dim, eps);
      k.matmuls(xb, T, [
        { w: L.wq, y: q, bias: L.bq },
        { w: L.wk, y: kb, bias: L.bk },
        { w: L.wv, y: v, bias: L.bv },
      ]);
      let row = 0;
      for (const s of segments) {
        const qs = q + row * qDim * 4;
        const ks = kb + row * kvDim * 4;
        const vs = v + row * kvDim * 4;
        k.rope(qs, ks, s.count, s.pos0, shape, c.ropeTheta);
        this.#store(s.cache.k[l], ks, s.pos0, s.count);
        this.#store(s.cache.v[l], vs, s.pos0, s.count);
        k.attention(qs, s.cache.k[l], s.cache.v[l], att + row * qDim * 4, s.count, s.pos0, shape);
        row += s.count;
      }
      k.matmul(L.wo, att, x, T, { accumulate: true }); // x += Wo · att
      // feed-forward block
      k.rmsnorm(x, L.ffnNorm, xb, T, dim, eps);
      k.swiglu(L.wGate, L.wUp, xb, gate, up, T); // gate = silu(Wgate · xb) * (Wup · xb)
      k.matmul(L.wDown, gate, x, T, { accumulate: true }); // x += Wdown · gate
    }
    if (rows === "none") return new Float32Array(0);
    const n = rows === "all" ? T : 1;
    k.rmsnorm(x + (T - n) * dim * 4, this.#norm, xb, n, dim, eps);
    k.matmul(this.#lmHead, xb, logits, n);
    return new Float32Array(k.f32(logits, n * c.vocabSize));
  }

  /** Copies `count` rows of kvDim floats from `src` into `cache` at row `pos0`. */
  #store(cache: Ptr, src: Ptr, pos0: number, count: number): void {
    const kvDim = this.config.numKvHeads * this.config.headDim;
    const n = count * kvDim;
    this.kernels.f32(cache + pos0 * kvDim * 4, n).set(this.kernels.f32(src, n));
  }

  /** Stops the kernels' Workers and releases the memory. */
  destroy(): void {
    this.kernels.destroy();
  }
}

function activationBytes(c: LlamaConfig, maxBatch: number): number {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const per = c.hiddenSize + Math.max(c.hiddenSize, qDim) + 2 * qDim + 2 * kvDim +
    2 * c.intermediateSize + c.vocabSize;
  return maxBatch * per * 4;
}

function contextError(
  maxSeq: number,
  sequences: number,
  fixedBytes: number,
  perToken: number,
  limit: number,
): RequestError {
  const mib = (b: number) => (b / 2 ** 20).toFixed(0);
  const fits = Math.max(0, Math.floor((limit - fixedBytes) / (perToken * sequences)));
  return new RequestError(
    `a context of ${maxSeq} tokens${sequences > 1 ? ` for ${sequences} sequences` : ""} needs ` +
      `${mib(sequences * maxSeq * perToken)} MiB of KV cache beside ${mib(fixedBytes)} MiB of ` +
      `weights and activations, more than the ${mib(limit)} MiB a WebAssembly memory holds; ` +
      `at most ${fits} tokens fit${sequences > 1 ? " per sequence" : ""} (--context ${fits})`,
  );
}

function checkWeights(w: LlamaWeights): void {
  const c = w.config;
  const dim = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const hidden = c.intermediateSize;
  if (w.layers.length !== c.numLayers) {
    throw new FormatError(`weights: ${w.layers.length} layers, config says ${c.numLayers}`);
  }
  if (c.headDim % 2 !== 0) throw new FormatError(`head_dim ${c.headDim} must be even`);
  checkShape(w.embed, [c.vocabSize, dim], "model.embed_tokens.weight");
  checkShape(w.lmHead, [c.vocabSize, dim], "lm_head.weight");
  checkShape(w.norm, [dim], "model.norm.weight");
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}`;
    checkShape(l.attnNorm, [dim], `${p}.input_layernorm.weight`);
    checkShape(l.wq, [qDim, dim], `${p}.self_attn.q_proj.weight`);
    checkShape(l.wk, [kvDim, dim], `${p}.self_attn.k_proj.weight`);
    checkShape(l.wv, [kvDim, dim], `${p}.self_attn.v_proj.weight`);
    checkShape(l.wo, [dim, qDim], `${p}.self_attn.o_proj.weight`);
    checkShape(l.bq, [qDim], `${p}.self_attn.q_proj.bias`);
    checkShape(l.bk, [kvDim], `${p}.self_attn.k_proj.bias`);
    checkShape(l.bv, [kvDim], `${p}.self_attn.v_proj.bias`);
    checkShape(l.ffnNorm, [dim], `${p}.post_attention_layernorm.weight`);
    checkShape(l.wGate, [hidden, dim], `${p}.mlp.gate_proj.weight`);
    checkShape(l.wUp, [hidden, dim], `${p}.mlp.up_proj.weight`);
    checkShape(l.wDown, [dim, hidden], `${p}.mlp.down_proj.weight`);
  });
}
