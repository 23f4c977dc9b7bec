/**
 * {@link TsKernels}: the CPU kernels in plain TypeScript. They are the
 * reference the WebAssembly kernels are tested against, and a working
 * (slow) backend wherever WebAssembly is not wanted.
 *
 * Memory is one growable, non-shared `WebAssembly.Memory`; pointers are byte
 * offsets into it. Linear weights are kept outside it as f32 (int4 weights
 * dequantized exactly from their codes, f16 weights as the f32 values they
 * hold), so `matmul` is the exact product. With `activations: "int8"` the
 * input of int4 matmuls is first rounded to int8 per block as the
 * WebAssembly int8 path does ({@link roundTripInt8}), which makes these
 * kernels the reference of that path too.
 *
 * @module
 */

import { FormatError } from "../errors.ts";
import { sampleLogits } from "../engine/host_sampler.ts";
import type { ResolvedSampling } from "../engine/sampling_options.ts";
import { dequantizeLinear } from "../quant/quantizer.ts";
import type { HostTensor } from "../model/weights.ts";
import {
  attention as refAttention,
  rmsnorm as refRmsnorm,
  ropeRotateHalf,
  siluMul as refSiluMul,
} from "../model/reference_ops.ts";
import { roundTripInt8 } from "./activation_quant.ts";
import type {
  ActivationMode,
  CpuAttentionShape,
  CpuKernels,
  CpuLinear,
  MatmulOut,
  Ptr,
} from "./cpu_kernels.ts";
import { checkLinearTensor, int4BlockSize } from "./int4_layout.ts";

const PAGE = 65536;

/** A linear weight of the TypeScript kernels: f32 values kept in JS memory. */
interface TsLinear extends CpuLinear {
  /** Row-major `[rows, cols]` values (dequantized for int4). */
  readonly values: Float32Array;
  /** Activation block of the int8 path (int4 only). */
  readonly block: number;
}

/** Options of {@link TsKernels}. */
export interface TsKernelsOptions {
  /** How int4 matmuls take their activations (default "f32", exact). */
  activations?: ActivationMode;
}

/**
 * The CPU kernels in plain TypeScript (single thread).
 *
 * @example
 * ```ts
 * import { TsKernels } from "./ts_kernels.ts";
 * const k = new TsKernels();
 * const w = k.linear({ data: new Float32Array([1, 2, 3, 4]), shape: [2, 2], dtype: "F32" }, "w");
 * const x = k.vector(new Float32Array([1, 1]));
 * const y = k.alloc(8);
 * k.matmul(w, x, y, 1);
 * k.f32(y, 2); // Float32Array [3, 7]
 * k.destroy();
 * ```
 */
export class TsKernels implements CpuKernels {
  /** What runs them. */
  readonly description = "typescript";
  /** Always 1. */
  readonly threads = 1;
  /** How int4 matmuls take their activations. */
  readonly activations: ActivationMode;
  #memory: WebAssembly.Memory | undefined = new WebAssembly.Memory({
    initial: 1,
    maximum: 65536,
  });
  #top = 16; // 0 stays unused so a zero pointer is never valid

  /** Creates the kernels with an empty memory. */
  constructor(options: TsKernelsOptions = {}) {
    this.activations = options.activations ?? "f32";
  }

  #buffer(): ArrayBufferLike {
    if (!this.#memory) throw new Error("TsKernels used after destroy()");
    return this.#memory.buffer;
  }

  /** Allocates `bytes` of zeroed memory, 16-byte aligned. */
  alloc(bytes: number): Ptr {
    const ptr = this.#top;
    this.#top = ptr + Math.ceil(Math.max(bytes, 1) / 16) * 16;
    const have = this.#buffer().byteLength;
    if (this.#top > have) this.#memory!.grow(Math.ceil((this.#top - have) / PAGE));
    return ptr;
  }

  /** A view of `n` floats at `ptr`. */
  f32(ptr: Ptr, n: number): Float32Array {
    return new Float32Array(this.#buffer(), ptr, n);
  }

  /** Keeps the weight as f32 (int4 dequantized from its codes). */
  linear(t: HostTensor, label: string): CpuLinear {
    const { rows, cols } = checkLinearTensor(t, label);
    const ql = t.quantized;
    if (ql) {
      return {
        rows,
        cols,
        kind: "int4",
        bytes: ql.q.length / 2 + ql.scales.length * 4 + ql.zeros.length,
        label,
        values: dequantizeLinear(ql),
        // 0: a group size the WebAssembly kernels keep as f32 (exact activations)
        block: int4BlockSize(cols, ql.settings.groupSize) ?? 0,
      } as TsLinear;
    }
    const kind = t.dtype === "F32" ? "f32" : "f16";
    return {
      rows,
      cols,
      kind,
      bytes: rows * cols * (kind === "f32" ? 4 : 2),
      label,
      values: t.data,
      block: 0,
    } as TsLinear;
  }

  /** Copies a vector into memory. */
  vector(values: Float32Array): Ptr {
    const p = this.alloc(values.length * 4);
    this.f32(p, values.length).set(values);
    return p;
  }

  /** y[T, rows] (+)= x[T, cols] · Wᵀ (+ bias). */
  matmul(
    w: CpuLinear,
    x: Ptr,
    y: Ptr,
    T: number,
    options: { accumulate?: boolean; bias?: Ptr } = {},
  ): void {
    const lw = asTs(w);
    const { rows, cols, values } = lw;
    const bias = options.bias === undefined ? undefined : this.f32(options.bias, rows);
    const out = this.f32(y, T * rows);
    for (let t = 0; t < T; t++) {
      let xr = this.f32(x + t * cols * 4, cols);
      if (lw.kind === "int4" && this.activations === "int8" && lw.block > 0) {
        xr = roundTripInt8(xr, lw.block);
      }
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        const base = r * cols;
        for (let i = 0; i < cols; i++) acc += xr[i] * values[base + i];
        if (bias) acc += bias[r];
        out[t * rows + r] = options.accumulate ? out[t * rows + r] + acc : acc;
      }
    }
  }

  /** Each output in turn (the reference has nothing to share). */
  matmuls(x: Ptr, T: number, outs: readonly MatmulOut[]): void {
    for (const o of outs) this.matmul(o.w, x, o.y, T, { bias: o.bias });
  }

  /** gate = silu(x · Gᵀ) · (x · Uᵀ): two matmuls, then the SiLU-mul. */
  swiglu(wGate: CpuLinear, wUp: CpuLinear, x: Ptr, gate: Ptr, up: Ptr, T: number): void {
    this.matmul(wGate, x, gate, T);
    this.matmul(wUp, x, up, T);
    this.siluMul(gate, up, T * wGate.rows);
  }

  /** out[t, :] = row tokens[t] of the table. */
  embed(table: CpuLinear, tokens: ArrayLike<number>, out: Ptr): void {
    const { rows, cols, values } = asTs(table);
    const o = this.f32(out, tokens.length * cols);
    for (let t = 0; t < tokens.length; t++) {
      const id = tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= rows) {
        throw new RangeError(`${table.label}: token id ${id} is outside [0, ${rows})`);
      }
      o.set(values.subarray(id * cols, (id + 1) * cols), t * cols);
    }
  }

  /** out[t] = x[t] / rms(x[t]) * w. */
  rmsnorm(x: Ptr, w: Ptr, out: Ptr, T: number, dim: number, eps: number): void {
    refRmsnorm(this.f32(x, T * dim), this.f32(w, dim), eps, this.f32(out, T * dim));
  }

  /** RoPE (rotate_half) in place on q and k. */
  rope(q: Ptr, k: Ptr, T: number, pos0: number, shape: CpuAttentionShape, theta: number): void {
    const positions = Array.from({ length: T }, (_, t) => pos0 + t);
    const qv = this.f32(q, T * shape.nHeads * shape.headDim);
    const kv = this.f32(k, T * shape.nKv * shape.headDim);
    ropeRotateHalf(qv, positions, shape.headDim, theta, qv);
    ropeRotateHalf(kv, positions, shape.headDim, theta, kv);
  }

  /** Causal GQA over the f32 KV cache. */
  attention(
    q: Ptr,
    kCache: Ptr,
    vCache: Ptr,
    out: Ptr,
    T: number,
    pos0: number,
    shape: CpuAttentionShape,
  ): void {
    const { nHeads, nKv, headDim } = shape;
    const kvLen = (pos0 + T) * nKv * headDim;
    const qLen = T * nHeads * headDim;
    refAttention(
      this.f32(q, qLen),
      this.f32(kCache, kvLen),
      this.f32(vCache, kvLen),
      Array.from({ length: T }, (_, t) => pos0 + t),
      { numHeads: nHeads, numKvHeads: nKv, headDim },
      this.f32(out, qLen),
    );
  }

  /** gate = silu(gate) * up. */
  siluMul(gate: Ptr, up: Ptr, n: number): void {
    const g = this.f32(gate, n);
    refSiluMul(g, this.f32(up, n), g);
  }

  /** Releases the memory. */
  destroy(): void {
    this.#memory = undefined;
  }

  /** The next id, by `sampleLogits` itself (the reference). */
  sample(logits: Float32Array, context: ArrayLike<number>, sampling: ResolvedSampling): number {
    return sampleLogits(logits, context, sampling);
  }
}

function asTs(w: CpuLinear): TsLinear {
  if (!("values" in w)) {
    throw new FormatError(`${w.label}: not a linear of the TypeScript kernels`);
  }
  return w as TsLinear;
}
