/**
 * The kernel interface of the CPU backend: what a forward pass over host
 * memory needs, implemented once in plain TypeScript (the reference, for
 * tests) and once in WebAssembly SIMD on Workers (the fast path).
 *
 * Every buffer lives in one memory owned by the kernels (for the WebAssembly
 * backend a shared `WebAssembly.Memory`, so Workers see it) and is named by a
 * byte offset ({@link Ptr}). Calls are synchronous: they return when the
 * result is in memory.
 *
 * @example
 * ```ts ignore
 * const k: CpuKernels = await createCpuKernels({ threads: 2 });
 * const w = k.linear(weights.layers[0].wq, "model.layers.0.self_attn.q_proj.weight");
 * const x = k.alloc(dim * 4), y = k.alloc(w.rows * 4);
 * k.f32(x, dim).set(input);
 * k.matmul(w, x, y, 1);
 * console.log(k.f32(y, w.rows));
 * ```
 * @module
 */

import type { ResolvedSampling } from "../engine/sampling_options.ts";
import type { HostTensor } from "../model/weights.ts";

/** A byte offset into the kernels' memory (16-byte aligned when from alloc). */
export type Ptr = number;

/** How activations enter int4 matmuls. */
export type ActivationMode =
  /** Quantized to int8 per block of the input once per vector (llama.cpp's Q8 way; fastest). */
  | "int8"
  /** Exact f32 activations (slower; matches the dequantized reference). */
  | "f32";

/** A linear weight [rows = out, cols = in] placed in the kernels' memory. */
export interface CpuLinear {
  /** Output features. */
  readonly rows: number;
  /** Input features. */
  readonly cols: number;
  /** How it is stored: int4 (from an AWQ tensor, repacked), f16 or f32. */
  readonly kind: "int4" | "f16" | "f32";
  /** Bytes it occupies (codes + scales + zeros for int4). */
  readonly bytes: number;
  /** The tensor name, for errors. */
  readonly label: string;
}

/** One output of {@link CpuKernels.matmuls}: `y[T, w.rows] = x · wᵀ (+ bias)`. */
export interface MatmulOut {
  /** The linear. */
  w: CpuLinear;
  /** Where its output goes. */
  y: Ptr;
  /** Optional bias vector [w.rows]. */
  bias?: Ptr;
}

/** Attention geometry. */
export interface CpuAttentionShape {
  /** Query heads. */
  nHeads: number;
  /** Key/value heads (divides nHeads). */
  nKv: number;
  /** Dimension of one head (even). */
  headDim: number;
}

/** The operations of a Llama forward pass on the CPU. */
export interface CpuKernels {
  /** What runs them, e.g. "wasm simd128+relaxed, 2 threads" or "typescript". */
  readonly description: string;
  /** Threads used (1 for the reference). */
  readonly threads: number;
  /** How int4 matmuls take their activations. */
  readonly activations: ActivationMode;
  /**
   * Allocates `bytes` of zeroed memory, 16-byte aligned; `label` names it in
   * the error raised when memory is exhausted.
   */
  alloc(bytes: number, label?: string): Ptr;
  /** A view of `n` floats at `ptr` (take a new view after alloc: memory may grow). */
  f32(ptr: Ptr, n: number): Float32Array;
  /**
   * Places a linear weight `[out, in]` in memory: int4 when `t.quantized` has
   * 4 bits (3- and 8-bit are rejected with a message naming `label`), f16
   * when `t.dtype` is F16, else f32.
   */
  linear(t: HostTensor, label: string): CpuLinear;
  /** Copies a vector (norm weight, bias) into memory. */
  vector(values: Float32Array): Ptr;
  /**
   * y[T, rows] = x[T, cols] · Wᵀ (+ bias), or `y +=` that with
   * `accumulate` (the residual adds).
   */
  matmul(
    w: CpuLinear,
    x: Ptr,
    y: Ptr,
    T: number,
    options?: { accumulate?: boolean; bias?: Ptr },
  ): void;
  /**
   * Several linears of the same input, e.g. q/k/v: `outs[i].y = x · wᵢᵀ
   * (+ biasᵢ)`; the WebAssembly kernels prepare x once and run them as one job.
   */
  matmuls(x: Ptr, T: number, outs: readonly MatmulOut[]): void;
  /**
   * The feed-forward SwiGLU: `gate[T, n] = silu(x · Gᵀ) · (x · Uᵀ)` with
   * `up` [T, n] as scratch (n = rows of both linears).
   */
  swiglu(wGate: CpuLinear, wUp: CpuLinear, x: Ptr, gate: Ptr, up: Ptr, T: number): void;
  /** out[t, :] = row `tokens[t]` of `table` (dequantized to f32). */
  embed(table: CpuLinear, tokens: ArrayLike<number>, out: Ptr): void;
  /** out[t] = x[t] / rms(x[t]) * w, for T rows of `dim`. */
  rmsnorm(x: Ptr, w: Ptr, out: Ptr, T: number, dim: number, eps: number): void;
  /**
   * RoPE in HF `rotate_half` order, in place, on q [T, nHeads·hd] and
   * k [T, nKv·hd]; row t is at position `pos0 + t`.
   */
  rope(q: Ptr, k: Ptr, T: number, pos0: number, shape: CpuAttentionShape, theta: number): void;
  /**
   * Causal grouped-query attention: out[t] for query row t at position
   * `pos0 + t` attends to positions 0..pos0+t of `kCache`/`vCache`
   * ([maxSeq, nKv·hd] f32, already holding the T new rows).
   */
  attention(
    q: Ptr,
    kCache: Ptr,
    vCache: Ptr,
    out: Ptr,
    T: number,
    pos0: number,
    shape: CpuAttentionShape,
  ): void;
  /** gate[i] = silu(gate[i]) * up[i] for n values. */
  siluMul(gate: Ptr, up: Ptr, n: number): void;
  /** Stops the Workers and releases the memory. */
  destroy(): void;
  /**
   * Picks the next id from one row of `logits` given the `context` (every
   * token so far, prompt included), as `sampleLogits` of
   * src/engine/host_sampler.ts does (the reference).
   */
  sample(logits: Float32Array, context: ArrayLike<number>, sampling: ResolvedSampling): number;
}
