/**
 * {@link WasmKernels}: the CPU kernels in WebAssembly SIMD, multi-threaded
 * with Workers over one shared `WebAssembly.Memory`.
 *
 * - int4 linears are repacked at load (`int4_layout.ts`); their matmuls take
 *   int8 activations (quantized once per vector per block, integer dot
 *   products) or exact f32 activations (`activations: "f32"`).
 * - f16 linears (the fp16 lm_head, embeddings) stay f16 in memory and are
 *   widened in SIMD; f32/bf16 linears are f32.
 * - matmuls are split in 64-row chunks, attention in chunks of (row, head)
 *   units; the main thread works too and Workers take chunks with an atomic
 *   counter (`wasm_tasks.ts`). Small jobs (one chunk) stay on the main thread.
 * - RMSNorm, RoPE, SiLU-mul and sampling (`wasm_sampler.ts`) run in SIMD on
 *   the main thread; the embedding lookup is a copy in TypeScript.
 *
 * @module
 */

import { AwqEdgeError } from "../errors.ts";
import type { ResolvedSampling } from "../engine/sampling_options.ts";
import { f16BitsToF32Bits, f32ToF16 } from "../formats/half.ts";
import type { HostTensor } from "../model/weights.ts";
import type {
  ActivationMode,
  CpuAttentionShape,
  CpuKernels,
  CpuLinear,
  MatmulOut,
  Ptr,
} from "./cpu_kernels.ts";
import { checkLinearTensor, int4BlockSize, repackInt4 } from "./int4_layout.ts";
import {
  detectWasmFeatures,
  kernelBytes,
  noSimdError,
  type WasmFeatures,
} from "./wasm/kernels_module.ts";
import type { SimdVariant } from "./wasm/kernels_wat.ts";
import { samplerScratchBytes, wasmSample } from "./wasm_sampler.ts";
import {
  A,
  ChunkRunner,
  controlBlock,
  CTRL_BYTES,
  CTRL_DONE,
  CTRL_EXIT,
  CTRL_GEN,
  CTRL_NEXT,
  CTRL_OP,
  CTRL_PARAMS,
  CTRL_TOTAL,
  KIND_F16,
  KIND_F32,
  KIND_Q4F32,
  KIND_Q4I8,
  M,
  MAX_PARTS,
  OP_ATTENTION,
  OP_MATMUL,
  OP_READ,
  OP_SWIGLU,
  P,
  PART_BASE,
  PART_SLOTS,
  R,
  rowsPerChunk,
} from "./wasm_tasks.ts";

const PAGE = 65536;
const MAX_PAGES = 65536;

/** Options of {@link createWasmKernels}. */
export interface WasmKernelsOptions {
  /** Threads including the main thread (default: the CPUs, at most 8). */
  threads?: number;
  /** How int4 matmuls take their activations (default "int8"). */
  activations?: ActivationMode;
  /** Instruction set: "auto" (relaxed when the runtime has it), or forced. */
  simd?: "auto" | SimdVariant;
  /**
   * Use a shared memory (needed for more than one thread). Default: when
   * the runtime has SharedArrayBuffer; `false` forces the single-thread,
   * unshared fallback.
   */
  sharedMemory?: boolean;
  /** How long an idle Worker spins before sleeping, in ms (default 0.5). */
  spinMs?: number;
  /**
   * What the runtime supports, instead of detecting it (tests use this to
   * take the fallbacks of a runtime without relaxed SIMD, SharedArrayBuffer
   * or SIMD).
   */
  features?: WasmFeatures;
}

/** A linear weight placed in the WebAssembly memory. */
interface WasmLinear extends CpuLinear {
  /** KIND_* of wasm_tasks.ts. */
  readonly code: number;
  /** Values per int4 block (0 for dense). */
  readonly block: number;
  /** int4: blocks per row; dense: values per row, padded. */
  readonly blocksOrN: number;
  /** Bytes per row of `w`. */
  readonly rowBytes: number;
  /** Codes or values. */
  readonly w: Ptr;
  /** int4 scales. */
  readonly s: Ptr;
  /** int4 `-scale · zero`. */
  readonly m: Ptr;
}

/**
 * Creates the WebAssembly kernels: picks the instruction set, makes the
 * memory and starts `threads - 1` Workers (call `destroy()` to stop them).
 * Falls back, with a note in `notes`, to plain SIMD without relaxed SIMD and
 * to one thread without SharedArrayBuffer; throws without SIMD.
 *
 * @example
 * ```ts
 * import { createWasmKernels } from "./wasm_kernels.ts";
 * const k = await createWasmKernels({ threads: 2 });
 * console.log(k.description); // e.g. "wasm simd128+relaxed, int8 activations, 2 threads"
 * k.destroy();
 * ```
 */
export async function createWasmKernels(options: WasmKernelsOptions = {}): Promise<WasmKernels> {
  const features = options.features ?? detectWasmFeatures();
  const notes: string[] = [];
  if (!features.simd) throw noSimdError();
  let variant: SimdVariant = options.simd === "plain" ? "plain" : "relaxed";
  if (variant === "relaxed" && !features.relaxed) {
    if (options.simd === "relaxed") {
      throw new AwqEdgeError("this runtime has no relaxed SIMD (asked for simd: relaxed)");
    }
    variant = "plain";
    notes.push("no relaxed SIMD in this runtime: plain SIMD kernels");
  }
  let threads = Math.max(1, Math.floor(options.threads ?? defaultThreads()));
  let shared = options.sharedMemory ?? features.sharedMemory;
  if (shared && !features.sharedMemory) {
    throw new AwqEdgeError("this runtime has no SharedArrayBuffer (asked for shared memory)");
  }
  if (!shared && threads > 1) {
    notes.push(
      features.sharedMemory
        ? "unshared memory requested: 1 thread"
        : "no SharedArrayBuffer in this runtime: 1 thread",
    );
    threads = 1;
  }
  if (!features.sharedMemory) shared = false;
  const memory = new WebAssembly.Memory({
    initial: 16,
    maximum: MAX_PAGES,
    shared,
  } as WebAssembly.MemoryDescriptor);
  const module = await WebAssembly.compile(
    kernelBytes(variant, shared) as Uint8Array<ArrayBuffer>,
  );
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const workers: Worker[] = [];
  try {
    for (let t = 1; t < threads; t++) {
      const w = new Worker(new URL("./wasm_worker.ts", import.meta.url), { type: "module" });
      workers.push(w);
      await new Promise<void>((resolve, reject) => {
        w.onmessage = () => resolve();
        w.onerror = (e) => {
          e.preventDefault();
          reject(new AwqEdgeError(`WebAssembly kernels: Worker ${t} failed: ${e.message}`));
        };
        w.postMessage({ module, memory, thread: t, spinMs: options.spinMs ?? 0.5 });
      });
    }
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e;
  }
  return new WasmKernels(memory, instance, workers, {
    variant,
    activations: options.activations ?? "int8",
    notes,
  });
}

function defaultThreads(): number {
  return Math.min(8, Math.max(1, navigator.hardwareConcurrency || 1));
}

// deno-lint-ignore no-explicit-any
type Fn = (...args: number[]) => any;

/**
 * The CPU kernels in WebAssembly SIMD on Workers. Create with
 * {@link createWasmKernels}.
 *
 * @example
 * ```ts
 * import { createWasmKernels } from "./wasm_kernels.ts";
 * const k = await createWasmKernels({ threads: 1 });
 * const w = k.linear({ data: new Float32Array([1, 2, 3, 4]), shape: [2, 2], dtype: "F32" }, "w");
 * const x = k.vector(new Float32Array([1, 1]));
 * const y = k.alloc(8);
 * k.matmul(w, x, y, 1);
 * k.f32(y, 2); // Float32Array [3, 7]
 * k.destroy();
 * ```
 */
export class WasmKernels implements CpuKernels {
  /** What runs them, e.g. "wasm simd128+relaxed, int8 activations, 2 threads". */
  readonly description: string;
  /** Threads including the main thread. */
  readonly threads: number;
  /** How int4 matmuls take their activations. */
  readonly activations: ActivationMode;
  /** The instruction set in use. */
  readonly variant: SimdVariant;
  /** Fallbacks taken at creation (empty when none). */
  readonly notes: readonly string[];
  #memory: WebAssembly.Memory;
  readonly #ex: Record<string, Fn>;
  readonly #workers: Worker[];
  #ctrlView: Int32Array;
  readonly #runner: ChunkRunner;
  #top = CTRL_BYTES;
  #gen = 0;
  #scratch = { ptr: 0, bytes: 0 };
  #attnScratch = { ptr: 0, bytes: 0 };
  #rope = { hd: 0, theta: 0, positions: 0, cos: 0, sin: 0 };
  #destroyed = false;

  /** Use {@link createWasmKernels}. */
  constructor(
    memory: WebAssembly.Memory,
    instance: WebAssembly.Instance,
    workers: Worker[],
    opts: { variant: SimdVariant; activations: ActivationMode; notes: string[] },
  ) {
    this.#memory = memory;
    this.#ex = instance.exports as unknown as Record<string, Fn>;
    this.#workers = workers;
    this.#ctrlView = controlBlock(memory);
    this.#runner = new ChunkRunner(instance.exports, memory, 0);
    this.threads = workers.length + 1;
    this.activations = opts.activations;
    this.variant = opts.variant;
    this.notes = opts.notes;
    this.description = `wasm simd128${opts.variant === "relaxed" ? "+relaxed" : ""}, ` +
      `${opts.activations} activations, ${this.threads} thread${this.threads > 1 ? "s" : ""}`;
  }

  /** The control block, viewed anew when an unshared memory has grown (detaching the old view). */
  get #ctrl(): Int32Array {
    if (this.#ctrlView.buffer !== this.#memory.buffer) this.#ctrlView = controlBlock(this.#memory);
    return this.#ctrlView;
  }

  /** Bytes allocated so far. */
  get usedBytes(): number {
    return this.#top;
  }

  /** The most memory the kernels can ever hold (4 GiB). */
  get maxBytes(): number {
    return MAX_PAGES * PAGE;
  }

  /** Allocates `bytes` of zeroed memory, 64-byte aligned. */
  alloc(bytes: number, label = "buffer"): Ptr {
    if (this.#destroyed) throw new AwqEdgeError("WebAssembly kernels used after destroy()");
    const ptr = this.#top;
    const end = ptr + Math.ceil(Math.max(bytes, 1) / 64) * 64;
    const have = this.#memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      try {
        if (end > this.maxBytes) throw new RangeError("past the maximum");
        this.#memory.grow(pages);
      } catch {
        const mib = (n: number) => `${Math.floor(n / 2 ** 20)} MiB`;
        throw new AwqEdgeError(
          `CPU memory exhausted: ${label} needs ${mib(bytes)} more, ${mib(ptr)} already in use, ` +
            `at most ${mib(Math.min(this.maxBytes, have))} available`,
        );
      }
    }
    this.#top = end;
    return ptr;
  }

  /** A view of `n` floats at `ptr` (take a new view after alloc). */
  f32(ptr: Ptr, n: number): Float32Array {
    return new Float32Array(this.#memory.buffer, ptr, n);
  }

  #u8(ptr: Ptr, n: number): Uint8Array {
    return new Uint8Array(this.#memory.buffer, ptr, n);
  }

  /** Places a linear weight in memory (int4 repacked, f16 as f16, else f32). */
  linear(t: HostTensor, label: string): CpuLinear {
    const { rows, cols } = checkLinearTensor(t, label);
    const ql = t.quantized;
    if (ql && int4BlockSize(cols, ql.settings.groupSize) !== undefined) {
      const p = repackInt4(ql, label);
      const rowBytes = (p.blocks * p.block) / 2;
      // Codes interleaved by 4 rows per block: [rows/4][blocks][4][block/2].
      const rows4 = Math.ceil(rows / 4) * 4;
      const half = p.block / 2;
      const w = this.alloc(rows4 * rowBytes, label);
      const codes = this.#u8(w, rows4 * rowBytes);
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < p.blocks; b++) {
          const src = r * rowBytes + b * half;
          codes.set(p.codes.subarray(src, src + half), interleavedIndex(r, b, p.blocks) * half);
        }
      }
      // Scales interleaved by 4 rows: [rows/4][blocks][4].
      const n4 = Math.ceil(rows / 4) * 4 * p.blocks;
      const s = this.alloc(n4 * 4, label);
      const m = this.alloc(n4 * 4, label);
      const sv = this.f32(s, n4), mv = this.f32(m, n4);
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < p.blocks; b++) {
          const at = interleavedIndex(r, b, p.blocks);
          sv[at] = p.s[r * p.blocks + b];
          mv[at] = p.m[r * p.blocks + b];
        }
      }
      return {
        rows,
        cols,
        kind: "int4",
        bytes: p.codes.length + p.s.length * 8,
        label,
        code: this.activations === "int8" ? KIND_Q4I8 : KIND_Q4F32,
        block: p.block,
        blocksOrN: p.blocks,
        rowBytes,
        w,
        s,
        m,
      } as WasmLinear;
    }
    // Dense: f16 rows padded to 8 values, f32 rows to 4.
    const f16 = !ql && t.dtype === "F16";
    const n = Math.ceil(cols / (f16 ? 8 : 4)) * (f16 ? 8 : 4);
    const rowBytes = n * (f16 ? 2 : 4);
    // Rows interleaved by 4 per 16 bytes: [rows/4][n/step][4][16 bytes].
    const rows4 = Math.ceil(rows / 4) * 4;
    const w = this.alloc(rows4 * rowBytes, label);
    const data = t.data;
    const step = f16 ? 8 : 4;
    const dst = f16
      ? new Uint16Array(this.#memory.buffer, w, rows4 * n)
      : new Float32Array(this.#memory.buffer, w, rows4 * n);
    for (let r = 0; r < rows; r++) {
      const src = f16
        ? f32ToF16(data.subarray(r * cols, (r + 1) * cols))
        : data.subarray(r * cols, (r + 1) * cols);
      const base = (r >> 2) * 4 * n + (r & 3) * step;
      for (let k = 0; k < cols; k++) dst[base + (k - (k % step)) * 4 + (k % step)] = src[k];
    }
    return {
      rows,
      cols,
      kind: f16 ? "f16" : "f32",
      bytes: rows * rowBytes,
      label,
      code: f16 ? KIND_F16 : KIND_F32,
      block: 0,
      blocksOrN: n,
      rowBytes,
      w,
      s: 0,
      m: 0,
    } as WasmLinear;
  }

  /** Copies a vector into memory. */
  vector(values: Float32Array): Ptr {
    const p = this.alloc(values.length * 4, "vector");
    this.f32(p, values.length).set(values);
    return p;
  }

  #scratchOf(bytes: number): Ptr {
    if (this.#scratch.bytes < bytes) {
      const size = Math.max(bytes, this.#scratch.bytes * 2);
      this.#scratch = { ptr: this.alloc(size, "activation scratch"), bytes: size };
    }
    return this.#scratch.ptr;
  }

  /** y[T, rows] (+)= x[T, cols] · Wᵀ (+ bias). */
  matmul(
    w: CpuLinear,
    x: Ptr,
    y: Ptr,
    T: number,
    options: { accumulate?: boolean; bias?: Ptr } = {},
  ): void {
    this.#matmulJob(OP_MATMUL, [{ w, y, bias: options.bias }], x, T, options.accumulate ?? false);
  }

  /**
   * Several linears over the same input as one job (the input prepared
   * once); linears of different kinds or block sizes run one after another.
   */
  matmuls(x: Ptr, T: number, outs: readonly MatmulOut[]): void {
    for (let i = 0; i < outs.length; i += MAX_PARTS) {
      const group = outs.slice(i, i + MAX_PARTS);
      if (group.every((o) => sameJob(asWasm(o.w), asWasm(group[0].w)))) {
        this.#matmulJob(OP_MATMUL, group, x, T, false);
      } else {
        for (const o of group) this.#matmulJob(OP_MATMUL, [o], x, T, false);
      }
    }
  }

  /**
   * gate[T, n] = silu(x · Gᵀ) · (x · Uᵀ), with `up` [T, n] as scratch: one
   * job whose chunks compute both linears' rows and apply the SiLU to them.
   */
  swiglu(wGate: CpuLinear, wUp: CpuLinear, x: Ptr, gate: Ptr, up: Ptr, T: number): void {
    const g = asWasm(wGate), u = asWasm(wUp);
    if (g.rows === u.rows && sameJob(g, u)) {
      this.#matmulJob(OP_SWIGLU, [{ w: g, y: gate }, { w: u, y: up }], x, T, false);
    } else {
      this.matmul(g, x, gate, T);
      this.matmul(u, x, up, T);
      this.siluMul(gate, up, T * g.rows);
    }
  }

  /**
   * Prepares the input once (int8 codes and block sums, or padded f32
   * values) and runs `outs` — linears of one kind, block and width — as one
   * job of row chunks.
   */
  #matmulJob(op: number, outs: readonly MatmulOut[], x: Ptr, T: number, acc: boolean): void {
    const lw = asWasm(outs[0].w);
    const { cols, code } = lw;
    const ex = this.#ex;
    let xp = x, xStride = cols * 4, xd = 0, xs = 0;
    if (code === KIND_Q4I8 || code === KIND_Q4F32) {
      // int8 codes (or padded f32 values) per input row; d and Σ per block in
      // the [T/4][blocks][4] layout of the kernels.
      const blocks = lw.blocksOrN;
      const kp = blocks * lw.block;
      const int8 = code === KIND_Q4I8;
      xStride = kp * (int8 ? (this.variant === "relaxed" ? 1 : 2) : 4);
      const dBytes = Math.ceil(T / 4) * blocks * 16;
      const base = this.#scratchOf(T * xStride + 2 * dBytes + 64);
      xp = base;
      xd = base + Math.ceil((T * xStride) / 16) * 16;
      xs = xd + dBytes;
      for (let t = 0; t < T; t++) {
        const at = interleavedIndex(t, 0, blocks) * 4;
        if (int8) {
          ex.quant_i8(x + t * cols * 4, cols, lw.block, blocks, xp + t * xStride, xd + at, xs + at);
        } else {
          ex.prep_f32(x + t * cols * 4, cols, kp, 1, xp + t * xStride, lw.block, xs + at);
        }
      }
    } else if (code === KIND_F16 || cols !== lw.blocksOrN) {
      // f16 takes x scaled by 2^64 (see kernels_wat.ts); both take padded rows.
      const n = lw.blocksOrN;
      xStride = n * 4;
      xp = this.#scratchOf(T * xStride);
      const scale = code === KIND_F16 ? 2 ** 64 : 1;
      for (let t = 0; t < T; t++) {
        ex.prep_f32(x + t * cols * 4, cols, n, scale, xp + t * xStride, 0, 0);
      }
    }
    const params: number[] = [];
    params[M.kind] = code;
    params[M.block] = lw.block;
    params[M.T] = T;
    params[M.blocksOrN] = lw.blocksOrN;
    params[M.x] = xp;
    params[M.xStride] = xStride;
    params[M.xd] = xd;
    params[M.xs] = xs;
    params[M.acc] = acc ? 1 : 0;
    params[M.parts] = outs.length;
    let chunks = 0;
    for (const [i, o] of outs.entries()) {
      const w = asWasm(o.w);
      const b = PART_BASE + i * PART_SLOTS;
      const rpc = rowsPerChunk(w.rows, w.rowBytes, this.threads);
      params[b + P.w] = w.w;
      params[b + P.s] = w.s;
      params[b + P.m] = w.m;
      params[b + P.rowBytes] = w.rowBytes;
      params[b + P.rows] = w.rows;
      params[b + P.y] = o.y;
      params[b + P.bias] = o.bias ?? 0;
      params[b + P.rowsPerChunk] = rpc;
      // SwiGLU's chunks cover gate and up at once: count the gate's only.
      if (op === OP_MATMUL || i === 0) chunks += Math.ceil(w.rows / rpc);
    }
    this.#run(op, chunks, params);
  }

  /** Posts a job to every thread, works on it, and returns when it is done. */
  #run(op: number, total: number, params: number[]): void {
    const ctrl = this.#ctrl;
    ctrl.set(params, CTRL_PARAMS);
    ctrl[CTRL_OP] = op;
    ctrl[CTRL_TOTAL] = total;
    const gen = this.#gen = (this.#gen + 1) & 0x3fffffff;
    Atomics.store(ctrl, CTRL_DONE, 0);
    Atomics.store(ctrl, CTRL_NEXT, (gen & 0x7fff) << 16);
    Atomics.store(ctrl, CTRL_GEN, gen);
    if (this.#workers.length > 0 && total > 1) Atomics.notify(ctrl, CTRL_GEN);
    this.#runner.runAll(gen);
    let spins = 0;
    for (;;) {
      const done = Atomics.load(ctrl, CTRL_DONE);
      if (done >= total) return;
      if (++spins > 4096) Atomics.wait(ctrl, CTRL_DONE, done, 5);
    }
  }

  /** out[t, :] = row tokens[t] of the table, as f32. */
  embed(table: CpuLinear, tokens: ArrayLike<number>, out: Ptr): void {
    const lw = asWasm(table);
    const { rows, cols } = lw;
    const buf = this.#memory.buffer;
    for (let t = 0; t < tokens.length; t++) {
      const id = tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= rows) {
        throw new RangeError(`${table.label}: token id ${id} is outside [0, ${rows})`);
      }
      const o = this.f32(out + t * cols * 4, cols);
      if (lw.code === KIND_F32 || lw.code === KIND_F16) {
        const step = lw.code === KIND_F16 ? 8 : 4;
        const n = lw.blocksOrN;
        const base = (id >> 2) * 4 * n + (id & 3) * step;
        const src = lw.code === KIND_F16
          ? new Uint16Array(buf, lw.w, Math.ceil(rows / 4) * 4 * n)
          : new Float32Array(buf, lw.w, Math.ceil(rows / 4) * 4 * n);
        const bits = new Uint32Array(buf, out + t * cols * 4, cols);
        for (let k = 0; k < cols; k++) {
          const v = src[base + (k - (k % step)) * 4 + (k % step)];
          if (lw.code === KIND_F16) bits[k] = f16BitsToF32Bits(v);
          else o[k] = v;
        }
      } else {
        const codes = new Uint8Array(buf, lw.w, Math.ceil(rows / 4) * 4 * lw.rowBytes);
        const half = lw.block / 2;
        const n4 = Math.ceil(rows / 4) * 4 * lw.blocksOrN;
        const s = this.f32(lw.s, n4), m = this.f32(lw.m, n4);
        for (let k = 0; k < cols; k++) {
          const at = interleavedIndex(id, Math.floor(k / lw.block), lw.blocksOrN);
          const byte = codes[at * half + ((k % lw.block) >> 5) * 16 + (k & 15)];
          const q = (k & 31) < 16 ? byte & 15 : byte >> 4;
          o[k] = q * s[at] + m[at];
        }
      }
    }
  }

  /** out[t] = x[t] / rms(x[t]) * w. */
  rmsnorm(x: Ptr, w: Ptr, out: Ptr, T: number, dim: number, eps: number): void {
    this.#ex.rmsnorm(x, w, out, T, dim, eps);
  }

  /**
   * RoPE (rotate_half) in place on q and k, in SIMD; the angle tables
   * (`pos · theta^(-2i/hd)`, cos and sin computed in f64 as the reference
   * does, stored f32) are kept in memory and grown as positions are reached.
   */
  rope(q: Ptr, k: Ptr, T: number, pos0: number, shape: CpuAttentionShape, theta: number): void {
    const { nHeads, nKv, headDim: hd } = shape;
    const table = this.#ropeTable(hd, theta, pos0 + T);
    const rowBytes = (hd / 2) * 4;
    const cos = table.cos + pos0 * rowBytes, sin = table.sin + pos0 * rowBytes;
    this.#ex.rope(q, T, nHeads, hd, cos, sin);
    this.#ex.rope(k, T, nKv, hd, cos, sin);
  }

  #ropeTable(hd: number, theta: number, positions: number) {
    const r = this.#rope;
    if (r.hd === hd && r.theta === theta && r.positions >= positions) return r;
    const n = Math.max(positions, r.hd === hd && r.theta === theta ? r.positions * 2 : 0, 256);
    const half = hd / 2;
    const cos = this.alloc(n * half * 4, "RoPE table"),
      sin = this.alloc(n * half * 4, "RoPE table");
    const cv = this.f32(cos, n * half), sv = this.f32(sin, n * half);
    for (let i = 0; i < half; i++) {
      const f = Math.pow(theta, (-2 * i) / hd);
      for (let p = 0; p < n; p++) {
        cv[p * half + i] = Math.cos(p * f);
        sv[p * half + i] = Math.sin(p * f);
      }
    }
    return this.#rope = { hd, theta, positions: n, cos, sin };
  }

  /** Causal GQA over the f32 KV cache, threaded over (row, head) units. */
  attention(
    q: Ptr,
    kCache: Ptr,
    vCache: Ptr,
    out: Ptr,
    T: number,
    pos0: number,
    shape: CpuAttentionShape,
  ): void {
    const { nHeads, nKv, headDim: hd } = shape;
    if (hd % 4 !== 0 || nHeads % nKv !== 0) {
      throw new AwqEdgeError(
        `attention: head size ${hd} must be a multiple of 4 and ${nKv} kv heads divide ${nHeads}`,
      );
    }
    const units = T * nHeads;
    const seq = pos0 + T;
    const stride = Math.ceil((seq + 4) / 16) * 64;
    const need = stride * this.threads;
    if (this.#attnScratch.bytes < need) {
      const bytes = Math.max(need, this.#attnScratch.bytes * 2);
      this.#attnScratch = { ptr: this.alloc(bytes, "attention scratch"), bytes };
    }
    const work = units * seq * hd;
    const perChunk = work < 1 << 16 ? units : Math.max(1, Math.ceil(units / (this.threads * 8)));
    const params = [];
    params[A.q] = q;
    params[A.kc] = kCache;
    params[A.vc] = vCache;
    params[A.out] = out;
    params[A.pos0] = pos0;
    params[A.nHeads] = nHeads;
    params[A.nKv] = nKv;
    params[A.hd] = hd;
    params[A.scratch] = this.#attnScratch.ptr;
    params[A.scratchStride] = stride;
    params[A.units] = units;
    params[A.perChunk] = perChunk;
    this.#run(OP_ATTENTION, Math.ceil(units / perChunk), params);
  }

  /** gate = silu(gate) * up. */
  siluMul(gate: Ptr, up: Ptr, n: number): void {
    this.#ex.silu_mul(gate, up, 0, n);
  }

  /**
   * Reads `bytes` (a multiple of 64) at `ptr` with every thread at once, in
   * 1 MiB chunks handed out like matmul rows: the read-bandwidth probe of the
   * benchmarks, through the same job machinery as the kernels.
   */
  readMemory(ptr: Ptr, bytes: number): void {
    const chunkBytes = 1 << 20;
    const params = [];
    params[R.ptr] = ptr;
    params[R.bytes] = bytes;
    params[R.chunkBytes] = chunkBytes;
    this.#run(OP_READ, Math.ceil(bytes / chunkBytes), params);
  }

  /** Stops the Workers and releases the memory. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    Atomics.store(this.#ctrl, CTRL_EXIT, 1);
    Atomics.add(this.#ctrl, CTRL_GEN, 1);
    Atomics.notify(this.#ctrl, CTRL_GEN);
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
  }

  #sampleScratch = { ptr: 0, bytes: 0 };

  /** The next id, with the sampler's passes in SIMD (`wasm_sampler.ts`). */
  sample(logits: Float32Array, context: ArrayLike<number>, sampling: ResolvedSampling): number {
    const bytes = samplerScratchBytes(logits.length);
    if (this.#sampleScratch.bytes < bytes) {
      this.#sampleScratch = { ptr: this.alloc(bytes, "sampler scratch"), bytes };
    }
    return wasmSample(this.#ex, this.#memory, this.#sampleScratch.ptr, logits, context, sampling);
  }
}

/** Index of (row or input row r, block b) in a [rows/4][blocks][4] layout. */
function interleavedIndex(r: number, b: number, blocks: number): number {
  return ((r >> 2) * blocks + b) * 4 + (r & 3);
}

function asWasm(w: CpuLinear): WasmLinear {
  if (!("code" in w)) throw new AwqEdgeError(`${w.label}: not a linear of the WebAssembly kernels`);
  return w as WasmLinear;
}

/** Whether two linears can share one matmul job (one prepared input). */
function sameJob(a: WasmLinear, b: WasmLinear): boolean {
  return a.code === b.code && a.block === b.block && a.blocksOrN === b.blocksOrN &&
    a.cols === b.cols;
}
