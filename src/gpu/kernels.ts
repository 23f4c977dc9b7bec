/**
 * The model's operations as WebGPU kernels. Each method builds a reusable
 * {@link Dispatch} (pipeline, bind group, workgroup counts) for fixed buffers
 * and shapes; the model records its forward pass once per shape and replays it.
 * Kernel choice by shape lives in one table ({@link MATMUL_KERNELS}).
 *
 * @example
 * ```ts ignore
 * const k = new WebGpuKernels(gpu);
 * const d = await k.siluMul(gate, up, 172);
 * new CommandBatch(gpu).run(d).submit();
 * ```
 * @module
 */

import { GpuError } from "../errors.ts";
import { type Dispatch, makeDispatch } from "./command_batch.ts";
import type { GpuContext } from "./device.ts";
import type { GpuWeight, WeightChunk } from "./gpu_weight.ts";
import type { GpuInt4Weight } from "./int4_weight.ts";
import { PipelineCache } from "./pipeline_cache.ts";
import type { KvDType, WeightDType } from "./shader_source.ts";
import { createUniform, f32, u32 } from "./uniforms.ts";

/** Attention geometry shared by RoPE and attention kernels. */
export interface AttentionShape {
  /** Query heads. */
  nHeads: number;
  /** Key/value heads. */
  nKv: number;
  /** Head size. */
  headDim: number;
  /** KV cache rows. */
  maxSeq: number;
  /** KV cache element type (default f32; f16 needs the shader-f16 feature). */
  kv?: KvDType;
}

/** One row of the matmul kernel table. */
export interface MatmulKernel {
  /**
   * Entry point; its file is shaders/matmul.wgsl, matmul_vec4.wgsl for the
   * vec4 forms, or matmul_ux.wgsl for gemv4_ux.
   */
  entry: "gemv8_ux" | "gemv4_ux" | "gemv" | "gemm" | "gemm_reg" | "gemv4" | "gemm4";
  /**
   * Whether this row applies to T tokens of K features (read from `x`) of
   * weights of type `dtype` on this adapter.
   */
  when: (T: number, K: number, gpu: GpuContext, x?: GPUBuffer, dtype?: WeightDType) => boolean;
  /** Workgroup counts for T tokens and N output features. */
  workgroups: (T: number, N: number) => number | [number, number];
}

const VEC4_ENTRIES = new Set(["gemv4", "gemm4", "gemv4_ux", "gemv8_ux"]);
const gemvGroups = (_T: number, N: number) => Math.ceil(N / 64);
const regGroups = (T: number, N: number) => Math.ceil((Math.ceil(N / 4) * Math.ceil(T / 4)) / 64);

/**
 * The matmul kernel table: the first row whose `when` holds is used. Rows of
 * K % 4 == 0 get the vec4-load kernels; CPU-backed (software) adapters get
 * barrier-free kernels (and, for decode, the input through a uniform binding
 * with 4 rows per invocation), GPUs the shared-memory tile for prompts.
 */
export const MATMUL_KERNELS: readonly MatmulKernel[] = [
  {
    entry: "gemv8_ux",
    when: (T, K, gpu, x, dtype) =>
      T <= 4 && K % 8 === 0 && dtype === "f16" && gpu.isSoftware && x !== undefined &&
      uniformInputFits(T, K, x),
    workgroups: (_T, N) => Math.ceil(N / 4 / 64),
  },
  {
    entry: "gemv4_ux",
    when: (T, K, gpu, x) =>
      T <= 4 && K % 4 === 0 && gpu.isSoftware && x !== undefined && uniformInputFits(T, K, x),
    workgroups: (_T, N) => Math.ceil(N / 4 / 64),
  },
  { entry: "gemv4", when: (T, K) => T <= 4 && K % 4 === 0, workgroups: gemvGroups },
  { entry: "gemv", when: (T) => T <= 4, workgroups: gemvGroups },
  { entry: "gemm4", when: (_T, K, gpu) => gpu.isSoftware && K % 4 === 0, workgroups: regGroups },
  { entry: "gemm_reg", when: (_T, _K, gpu) => gpu.isSoftware, workgroups: regGroups },
  {
    entry: "gemm",
    when: () => true,
    workgroups: (T, N) => [Math.ceil(N / 64), Math.ceil(T / 64)],
  },
];

/** Bytes of the uniform binding the int4 GEMV reads x through (shaders/matmul_int4_ux.wgsl). */
export const INT4_UNIFORM_X_BYTES = 65536;

/** Entry points of the int4 matmul kernels (shaders/matmul_int4*.wgsl). */
export type Int4Entry =
  | "gemv_u4_slice"
  | "gemm_u4_slice"
  | "gemv_u4_ux"
  | "gemv_u4"
  | "gemv_u4_sg"
  | "gemv_u4_wg"
  | "gemm_u4_reg4"
  | "gemm_u4_reg"
  | "gemm_u4";

/** One row of the int4 matmul kernel table. */
export interface Int4Kernel {
  /** Entry point. */
  entry: Int4Entry;
  /** Its file, shaders/<shader>.wgsl. */
  shader:
    | "matmul_int4"
    | "matmul_int4_ux"
    | "matmul_int4_sg"
    | "matmul_int4_reg"
    | "matmul_int4_slice";
  /**
   * The entry computing silu(gate) * up over a [gate; up] weight in one pass,
   * if any, and its workgroup counts for T tokens and N1 = hidden outputs.
   * For a two-pass kernel (`sum`), the entry of the second pass instead.
   */
  swiglu?: { entry: string; workgroups: (T: number, N1: number) => number };
  /**
   * Two-pass kernels: the entry that adds up the partial sums the first pass
   * wrote (shaders/matmul_int4_slice.wgsl) and stores y.
   */
  sum?: string;
  /** Two-pass kernels: chunks of 32 columns per slice of x (SLICE or SLICE_T in the shader). */
  slice?: number;
  /**
   * Whether this row applies to T tokens of K features read from `x` on this
   * adapter, for a weight in groups of G columns (K when per channel).
   */
  when: (T: number, K: number, gpu: GpuContext, x: GPUBuffer, G: number) => boolean;
  /** Workgroup counts for T tokens, N output rows and K input features. */
  workgroups: (T: number, N: number, K: number) => number | [number, number];
}

/** Chunks of 32 columns per slice of x: gemv_u4_slice (SLICE) and gemm_u4_slice (SLICE_T). */
export const INT4_SLICE_CHUNKS = { gemv: 16, gemm: 8 } as const;
/** Rows per invocation (override R) and invocations per workgroup of the slice kernels. */
const SLICE_R = 64;
const SLICE_WG = 8;
/** Tokens per invocation of gemm_u4_slice (TOK in the shader). */
const SLICE_TOKENS = 4;

/**
 * Whether the slice kernels (shaders/matmul_int4_slice.wgsl) handle K input
 * features in groups of G columns with slices of `chunks` chunks of 32: K a
 * multiple of 32, and pieces of min(G / 32, chunks) chunks dividing both a
 * slice and a group.
 *
 * @example
 * ```ts ignore
 * sliceFits(4096, 128); // true
 * sliceFits(4096, 4096); // true: per channel, 8 whole slices per group
 * sliceFits(96, 96); // false: pieces of 3 chunks do not tile a slice
 * sliceFits(4096, 512, 8); // true: a group is two 8-chunk slices
 * ```
 */
export function sliceFits(K: number, G: number, chunks: number = INT4_SLICE_CHUNKS.gemv): boolean {
  const gc = G / 32;
  const piece = Math.min(gc, chunks);
  return K % 32 === 0 && G % 32 === 0 && chunks % piece === 0 && gc % piece === 0;
}

/**
 * Slices of x per token for a slice kernel.
 *
 * @example
 * ```ts ignore
 * slicesOf(11008); // 22: 21 whole 512-column slices and a 256-column tail
 * slicesOf(11008, 8); // 43
 * ```
 */
export function slicesOf(K: number, chunks: number = INT4_SLICE_CHUNKS.gemv): number {
  return Math.ceil(K / (32 * chunks));
}

/**
 * The override constants of a slice kernel for K input features in groups of
 * G columns: WHOLE (1 when K is a multiple of the slice, so the kernel skips
 * its bounds tests) besides the tile sizes.
 *
 * @example
 * ```ts ignore
 * sliceConstants(4096, 128); // { WG: 8, R: 64, GC: 4, P: 4, WHOLE: 1 }
 * sliceConstants(11008, 11008, 8); // { WG: 8, R: 64, GC: 344, P: 8, WHOLE: 1 }
 * sliceConstants(4064, 32); // { WG: 8, R: 64, GC: 1, P: 1, WHOLE: 0 }: a 15-chunk last slice
 * ```
 */
export function sliceConstants(
  K: number,
  G: number,
  chunks: number = INT4_SLICE_CHUNKS.gemv,
): Record<string, number> {
  const gc = G / 32;
  const whole = K % (32 * chunks) === 0 ? 1 : 0;
  return { WG: SLICE_WG, R: SLICE_R, GC: gc, P: Math.min(gc, chunks), WHOLE: whole };
}

/**
 * Whether x (T rows of K floats) can be read through the 64 KiB uniform binding.
 *
 * @example
 * ```ts ignore
 * uniformInputFits(1, 11008, xb); // true for a >= 64 KiB buffer with UNIFORM usage
 * uniformInputFits(4, 11008, xb); // false: 176 KB of x
 * ```
 */
export function uniformInputFits(T: number, K: number, x: GPUBuffer): boolean {
  return T * K * 4 <= INT4_UNIFORM_X_BYTES && (K % 4 === 0 || T === 1) &&
    x.size >= INT4_UNIFORM_X_BYTES && (x.usage & GPUBufferUsage.UNIFORM) !== 0;
}

const perRow = (_T: number, N: number) => N;
const perInvocation = (_T: number, N: number) => Math.ceil(N / WG);
const sliceRowBlocks = (N: number) => Math.ceil(N / (SLICE_R * SLICE_WG));
const sliceSum = {
  entry: "gemv_u4_slice_sum_swiglu",
  workgroups: (T: number, N1: number) => Math.ceil(T * N1 / WG),
};

/**
 * The int4 matmul kernel table: the first row whose `when` holds is used.
 * CPU-backed adapters (lavapipe: every load at a non-constant index a
 * per-lane gather, barriers expensive) decode with the two-pass slice kernel
 * (x gathered once per 512-column slice and shared by 64 rows; about 1.6-1.8x
 * the next row) where the group size allows, else with 4 rows per invocation
 * reading x through a uniform binding (about 2x the storage form there), and
 * prefill with the slice kernel for 4 tokens per invocation (about 2.7x the
 * register tile), else the barrier-free 4x4 register tile; GPUs decode with a workgroup per row
 * (subgroupAdd when the adapter has subgroups, a shared-memory tree
 * otherwise) and prefill with the shared-memory tile.
 */
export const INT4_KERNELS: readonly Int4Kernel[] = [
  {
    entry: "gemv_u4_slice",
    shader: "matmul_int4_slice",
    sum: "gemv_u4_slice_sum",
    slice: INT4_SLICE_CHUNKS.gemv,
    swiglu: sliceSum,
    when: (T, K, gpu, _x, G) => T <= 4 && gpu.isSoftware && sliceFits(K, G),
    workgroups: (T, N, K) => [sliceRowBlocks(N), T * slicesOf(K)],
  },
  {
    entry: "gemv_u4_ux",
    shader: "matmul_int4_ux",
    swiglu: { entry: "gemv_u4_ux_swiglu", workgroups: (_T, N1) => Math.ceil(N1 / 2 / WG) },
    when: (T, K, gpu, x) => T <= 4 && gpu.isSoftware && uniformInputFits(T, K, x),
    workgroups: (_T, N) => Math.ceil(N / 4 / WG),
  },
  {
    entry: "gemv_u4",
    shader: "matmul_int4",
    swiglu: { entry: "gemv_u4_swiglu", workgroups: perInvocation },
    when: (T, _K, gpu) => T <= 4 && gpu.isSoftware,
    workgroups: perInvocation,
  },
  {
    entry: "gemm_u4_slice",
    shader: "matmul_int4_slice",
    sum: "gemv_u4_slice_sum",
    slice: INT4_SLICE_CHUNKS.gemm,
    swiglu: sliceSum,
    when: (_T, K, gpu, _x, G) => gpu.isSoftware && sliceFits(K, G, INT4_SLICE_CHUNKS.gemm),
    workgroups: (T, N, K) => [
      sliceRowBlocks(N),
      Math.ceil(T / SLICE_TOKENS) * slicesOf(K, INT4_SLICE_CHUNKS.gemm),
    ],
  },
  {
    entry: "gemm_u4_reg4",
    shader: "matmul_int4_reg",
    when: (_T, K, gpu) => gpu.isSoftware && K % 4 === 0,
    workgroups: (T, N) => Math.ceil((Math.ceil(N / 4) * Math.ceil(T / 4)) / WG),
  },
  {
    entry: "gemm_u4_reg",
    shader: "matmul_int4",
    when: (_T, _K, gpu) => gpu.isSoftware,
    workgroups: (T, N) => Math.ceil((Math.ceil(N / 4) * Math.ceil(T / 4)) / WG),
  },
  {
    entry: "gemv_u4_sg",
    shader: "matmul_int4_sg",
    swiglu: { entry: "gemv_u4_sg_swiglu", workgroups: perRow },
    when: (T, _K, gpu) => T <= 4 && gpu.hasSubgroups,
    workgroups: perRow,
  },
  {
    entry: "gemv_u4_wg",
    shader: "matmul_int4",
    swiglu: { entry: "gemv_u4_wg_swiglu", workgroups: perRow },
    when: (T) => T <= 4,
    workgroups: perRow,
  },
  {
    entry: "gemm_u4",
    shader: "matmul_int4",
    when: () => true,
    workgroups: (T, N) => [Math.ceil(N / (4 * GEMM_TS)), Math.ceil(T / (4 * GEMM_TS))],
  },
];

/** Workgroup edge of gemm_u4 (override TS); its tile is 4 TS tokens x 4 TS rows. */
const GEMM_TS = 16;

/** One row of the attention kernel table. */
export interface AttentionKernel {
  /** Shader file and entry point (shaders/<shader>.wgsl), over rows of KV slots. */
  shader: "attention" | "attention_rows";
  /** Whether this row applies to the geometry on this adapter. */
  when: (shape: AttentionShape, gpu: GpuContext) => boolean;
  /** Workgroup counts for T tokens. */
  workgroups: (T: number, shape: AttentionShape) => number | [number, number];
}

/**
 * The attention kernel table: one invocation per (head, token) on CPU-backed
 * adapters (head size a multiple of 4), a workgroup per (head, token) otherwise.
 */
export const ATTENTION_KERNELS: readonly AttentionKernel[] = [
  {
    shader: "attention_rows",
    when: (shape, gpu) => gpu.isSoftware && shape.headDim % 4 === 0,
    workgroups: (T, shape) => Math.ceil((shape.nHeads * T) / ROWS_WG),
  },
  {
    shader: "attention",
    when: () => true,
    workgroups: (T, shape) => [shape.nHeads, T],
  },
];

const WG = 64;
/**
 * Workgroup size of attention_rows: one SIMD group of lavapipe's 8 lanes, so
 * the 32 heads of a decode step are 4 workgroups that its threads share
 * instead of one workgroup on one thread.
 */
const ROWS_WG = 8;

/** Builds dispatches for every kernel the forward pass and sampler use. */
export class WebGpuKernels {
  readonly #gpu: GpuContext;
  readonly #pipelines: PipelineCache;
  /** Uniform buffers created for dispatches, released by destroy(). */
  readonly #uniforms: GPUBuffer[] = [];
  /** Bound where a kernel declares an optional input that is absent (e.g. bias). */
  readonly #empty: GPUBuffer;
  /** Bound to the unused split outputs of the int4 matmul (writable, so one each). */
  readonly #sinks: [GPUBuffer, GPUBuffer];
  /** Scratch for the two-pass int4 GEMV's partial sums, one per size. */
  readonly #partials = new Map<number, GPUBuffer>();
  /** Rows (slot 0, offset t) of one sequence: it runs the batch kernels as slot 0. */
  #sequenceRows = { buffer: undefined as GPUBuffer | undefined, rows: 0 };

  /** Creates a kernel set on `gpu`'s device. */
  constructor(gpu: GpuContext, pipelines: PipelineCache = new PipelineCache(gpu)) {
    this.#gpu = gpu;
    this.#pipelines = pipelines;
    this.#empty = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    this.#uniforms.push(this.#empty);
    this.#sinks = [0, 1].map(() =>
      gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE })
    ) as [GPUBuffer, GPUBuffer];
    this.#uniforms.push(...this.#sinks);
  }

  #uniform(fields: Parameters<typeof createUniform>[1]): GPUBuffer {
    const b = createUniform(this.#gpu, fields);
    this.#uniforms.push(b);
    return b;
  }

  /**
   * A buffer of rows (slot 0, offset t) for t < T, at least: what one
   * sequence binds where a batch binds its rows, its state buffer standing in
   * for the states of slot 0 and its caches for slot 0's region.
   */
  #rowsOfOneSequence(T: number): GPUBuffer {
    const have = this.#sequenceRows;
    if (have.buffer && have.rows >= T) return have.buffer;
    const rows = Math.max(T, 2 * have.rows, 256);
    const ids = new Uint32Array(2 * rows);
    for (let t = 0; t < rows; t++) ids[2 * t + 1] = t;
    const buffer = this.#gpu.device.createBuffer({
      label: "rows of one sequence",
      size: ids.byteLength,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.#gpu.device.queue.writeBuffer(buffer, 0, ids);
    this.#uniforms.push(buffer);
    this.#sequenceRows = { buffer, rows };
    return buffer;
  }

  /** The KV cache element type of `shape`, checked against the device. */
  #kv(shape: AttentionShape): KvDType {
    const kv = shape.kv ?? "f32";
    if (kv === "f16" && !this.#gpu.hasF16) {
      throw new GpuError("an f16 KV cache needs the shader-f16 feature, which this device lacks");
    }
    return kv;
  }

  /** RoPE kernels' uniform block (rope_store*.wgsl `Params`). */
  #ropeParams(T: number, shape: AttentionShape, theta: number): GPUBuffer {
    const { nHeads, nKv, headDim, maxSeq } = shape;
    return this.#uniform([
      u32(T),
      u32(nHeads),
      u32(nKv),
      u32(headDim),
      f32(theta),
      u32(maxSeq),
      u32(0),
      u32(0),
    ]);
  }

  /** Attention kernels' uniform block (attention*.wgsl `Params`). */
  #attentionParams(T: number, shape: AttentionShape): GPUBuffer {
    const { nHeads, nKv, headDim, maxSeq } = shape;
    return this.#uniform([
      u32(T),
      u32(nHeads),
      u32(nKv),
      u32(headDim),
      u32(maxSeq),
      u32(0),
      u32(0),
      u32(0),
    ]);
  }

  /** x[t, :] = E[tokens[t], :] for t < T (E in one binding; see {@link embedRows}). */
  async embed(E: GpuWeight, tokens: GPUBuffer, x: GPUBuffer, T: number): Promise<Dispatch> {
    if (E.chunks) throw new GpuError("embed: a split table needs embedRows()");
    return await this.#embedChunk(
      E,
      { buffer: E.buffer, row0: 0, rows: E.rows },
      true,
      tokens,
      x,
      T,
    );
  }

  /** {@link embed} for a table of any size: one dispatch per row chunk of a split table. */
  async embedRows(E: GpuWeight, tokens: GPUBuffer, x: GPUBuffer, T: number): Promise<Dispatch[]> {
    const chunks = E.chunks ?? [{ buffer: E.buffer, row0: 0, rows: E.rows }];
    return await Promise.all(
      chunks.map((c, i) => this.#embedChunk(E, c, i === chunks.length - 1, tokens, x, T)),
    );
  }

  async #embedChunk(
    E: GpuWeight,
    chunk: WeightChunk,
    last: boolean,
    tokens: GPUBuffer,
    x: GPUBuffer,
    T: number,
  ): Promise<Dispatch> {
    const pipeline = await this.#pipelines.get({
      shader: "embedding",
      entry: "embed",
      weights: E.dtype,
      constants: { WG, LAST: last },
    });
    const params = this.#uniform([u32(T), u32(E.cols), u32(chunk.rows), u32(chunk.row0)]);
    return makeDispatch(
      this.#gpu,
      pipeline,
      [chunk.buffer, tokens, x, params],
      Math.ceil((T * E.cols) / WG),
    );
  }

  /** y[r, :] = rmsnorm(x[rowStart + r, :]) * w for r < rows. */
  async rmsnorm(
    x: GPUBuffer,
    w: GPUBuffer,
    y: GPUBuffer,
    rows: number,
    dim: number,
    eps: number,
    rowStart = 0,
  ): Promise<Dispatch> {
    const pipeline = await this.#pipelines.get({
      shader: "rmsnorm",
      entry: "rmsnorm",
      constants: { WG },
    });
    const params = this.#uniform([u32(dim), u32(rowStart), f32(eps), u32(0)]);
    return makeDispatch(this.#gpu, pipeline, [x, w, y, params], rows);
  }

  /**
   * y[t, n] = x[t, :] · W[n, :] (+ bias[n]) (+ y[t, n] with `accumulate`), for
   * T tokens; the kernel comes from {@link MATMUL_KERNELS} unless `entry`
   * names one (tests use it to reach every entry point on any adapter).
   */
  async matmul(
    W: GpuWeight,
    x: GPUBuffer,
    y: GPUBuffer,
    T: number,
    options: { bias?: GPUBuffer; accumulate?: boolean; entry?: MatmulKernel["entry"] } = {},
  ): Promise<Dispatch> {
    if (W.chunks) throw new GpuError("matmul: a split weight needs matmulRows()");
    return await this.#matmul(W, W.buffer, W.rows, x, y, 0, T, options);
  }

  /**
   * {@link matmul} for a weight of any size: one dispatch per row chunk of a
   * split weight (e.g. a 32000 x 2048 f32 lm_head over a 128 MiB binding
   * limit), each writing its columns of y [T, W.rows]. Chunks of 64 rows
   * start at 256-byte offsets, which every adapter's storage offset
   * alignment divides.
   */
  async matmulRows(
    W: GpuWeight,
    x: GPUBuffer,
    y: GPUBuffer,
    T: number,
    options: { bias?: GPUBuffer; accumulate?: boolean; entry?: MatmulKernel["entry"] } = {},
  ): Promise<Dispatch[]> {
    if (!W.chunks) return [await this.matmul(W, x, y, T, options)];
    if (options.bias) throw new GpuError("matmulRows: a bias on a split weight is not supported");
    return await Promise.all(W.chunks.map((c) => {
      const yc: GPUBufferBinding = { buffer: y, offset: c.row0 * 4, size: y.size - c.row0 * 4 };
      return this.#matmul(W, c.buffer, c.rows, x, yc, W.rows, T, options);
    }));
  }

  async #matmul(
    W: GpuWeight,
    buffer: GPUBuffer,
    rows: number,
    x: GPUBuffer,
    y: GPUBuffer | GPUBufferBinding,
    ldy: number,
    T: number,
    options: { bias?: GPUBuffer; accumulate?: boolean; entry?: MatmulKernel["entry"] },
  ): Promise<Dispatch> {
    const kernel = options.entry
      ? MATMUL_KERNELS.find((k) => k.entry === options.entry)!
      : MATMUL_KERNELS.find((k) => k.when(T, W.cols, this.#gpu, x, W.dtype))!;
    const vec4 = VEC4_ENTRIES.has(kernel.entry);
    if (vec4 && W.cols % 4 !== 0) {
      throw new GpuError(`${kernel.entry} needs K divisible by 4 (got ${W.cols})`);
    }
    const ux8 = kernel.entry === "gemv8_ux";
    const ux = ux8 || kernel.entry === "gemv4_ux";
    if (ux && !uniformInputFits(T, W.cols, x)) {
      throw new GpuError(
        `${kernel.entry}: x of ${T} x ${W.cols} floats cannot be read through a ` +
          `${INT4_UNIFORM_X_BYTES}-byte uniform binding`,
      );
    }
    if (ux8 && (W.dtype !== "f16" || W.cols % 8 !== 0)) {
      throw new GpuError(
        `gemv8_ux needs f16 weights and K divisible by 8 (got ${W.dtype}, ${W.cols})`,
      );
    }
    const pipeline = await this.#pipelines.get({
      shader: ux8 ? "matmul_ux8" : ux ? "matmul_ux" : vec4 ? "matmul_vec4" : "matmul",
      entry: kernel.entry,
      weights: ux8 ? "f16x8" : vec4 ? `${W.dtype}x4` : W.dtype,
      constants: {
        WG,
        HAS_BIAS: Boolean(options.bias),
        ACCUMULATE: Boolean(options.accumulate),
      },
    });
    const params = this.#uniform([u32(T), u32(W.cols), u32(rows), u32(ldy)]);
    const bias = options.bias ?? this.#empty;
    return makeDispatch(
      this.#gpu,
      pipeline,
      [buffer, ux ? { buffer: x, size: INT4_UNIFORM_X_BYTES } : x, y, bias, params],
      kernel.workgroups(T, rows),
    );
  }

  #int4Kernel(W: GpuInt4Weight, x: GPUBuffer, T: number, entry?: Int4Entry): Int4Kernel {
    const kernel = entry
      ? INT4_KERNELS.find((k) => k.entry === entry)!
      : INT4_KERNELS.find((k) => k.when(T, W.cols, this.#gpu, x, W.groupSize))!;
    if (kernel.slice && !sliceFits(W.cols, W.groupSize, kernel.slice)) {
      const slice = 32 * kernel.slice;
      throw new GpuError(
        `${kernel.entry} needs K divisible by 32 and groups that divide or are multiples of ` +
          `its ${slice}-column slices (got K ${W.cols}, groups of ${W.groupSize})`,
      );
    }
    if (kernel.shader === "matmul_int4_ux" && !uniformInputFits(T, W.cols, x)) {
      throw new GpuError(
        `${kernel.entry}: x of ${T} x ${W.cols} floats cannot be read through a ` +
          `${INT4_UNIFORM_X_BYTES}-byte uniform binding (needs T*K*4 <= that, K % 4 == 0 ` +
          `when T > 1, and a buffer of at least that size with UNIFORM usage)`,
      );
    }
    if (kernel.shader === "matmul_int4_reg" && W.cols % 4 !== 0) {
      throw new GpuError(`${kernel.entry} needs K divisible by 4 (got ${W.cols})`);
    }
    if (kernel.shader === "matmul_int4_sg" && !this.#gpu.hasSubgroups) {
      throw new GpuError(`${kernel.entry} needs the subgroups feature, which this device lacks`);
    }
    return kernel;
  }

  /**
   * Params of matmul_int4_core for `kernel`; a slice kernel gets its count of
   * slices of x in _p0. Both passes of a two-pass kernel read the same params.
   */
  #int4Params(
    W: GpuInt4Weight,
    kernel: Int4Kernel,
    T: number,
    n1: number,
    n2: number,
  ): GPUBuffer {
    return this.#uniform([
      u32(T),
      u32(W.cols),
      u32(W.rows),
      u32(W.groupSize),
      u32(n1),
      u32(n2),
      u32(kernel.slice ? slicesOf(W.cols, kernel.slice) : 0),
      u32(0),
    ]);
  }

  #xBinding(kernel: Int4Kernel, x: GPUBuffer): GPUBuffer | GPUBufferBinding {
    return kernel.shader === "matmul_int4_ux" ? { buffer: x, size: INT4_UNIFORM_X_BYTES } : x;
  }

  /**
   * y = x · Wᵀ for an int4 weight (shaders/matmul_int4*.wgsl), T tokens; the
   * kernel comes from {@link INT4_KERNELS} unless `entry` names one. A weight
   * packed from several linears (fused q/k/v) writes part i to `outputs[i]`
   * ([T, rows of part i] each); `bias` covers all rows; `accumulate` adds to
   * the first output's previous contents.
   */
  async matmulInt4(
    W: GpuInt4Weight,
    x: GPUBuffer,
    outputs: GPUBuffer | readonly GPUBuffer[],
    T: number,
    options: { bias?: GPUBuffer; accumulate?: boolean; entry?: Int4Entry } = {},
  ): Promise<Dispatch[]> {
    const outs = Array.isArray(outputs) ? outputs : [outputs as GPUBuffer];
    if (outs.length !== W.parts.length || W.parts.length > 3) {
      throw new GpuError(
        `matmulInt4: ${outs.length} output(s) for a weight of ${W.parts.length} part(s) (1 to 3)`,
      );
    }
    const kernel = this.#int4Kernel(W, x, T, options.entry);
    const pipeline = await this.#pipelines.get({
      shader: kernel.shader,
      entry: kernel.sum ?? kernel.entry,
      constants: {
        ...(kernel.entry === "gemm_u4" ? { TS: GEMM_TS } : { WG }),
        HAS_BIAS: Boolean(options.bias),
        ACCUMULATE: Boolean(options.accumulate),
      },
    });
    const n1 = W.parts[0];
    const n2 = n1 + (W.parts[1] ?? 0);
    const params = this.#int4Params(W, kernel, T, n1, n2);
    // Bindings 2-4 and 6-7 (matmul_int4_core, matmul_int4_output); 0, 1 and 5
    // are the weight and x, which a sum pass does not read.
    const y = [outs[0], options.bias ?? this.#empty, params];
    const splits = [outs[1] ?? this.#sinks[0], outs[2] ?? this.#sinks[1]];
    if (kernel.sum) {
      const first = await this.#slicePartials(W, x, T, kernel, params);
      return [
        first.dispatch,
        makeDispatch(
          this.#gpu,
          pipeline,
          [null, null, ...y, null, ...splits, first.part],
          Math.ceil(T * W.rows / WG),
        ),
      ];
    }
    return [
      makeDispatch(
        this.#gpu,
        pipeline,
        [W.codes, this.#xBinding(kernel, x), ...y, W.sz, ...splits],
        kernel.workgroups(T, W.rows, W.cols),
      ),
    ];
  }

  /**
   * The first pass of a two-pass int4 GEMV: partial sums of every row over
   * each slice of x into a scratch buffer shared by calls of the same size
   * (each call's two dispatches run back to back, so they never overlap).
   */
  async #slicePartials(
    W: GpuInt4Weight,
    x: GPUBuffer,
    T: number,
    kernel: Int4Kernel,
    params: GPUBuffer,
  ): Promise<{ dispatch: Dispatch; part: GPUBuffer }> {
    const size = 4 * T * slicesOf(W.cols, kernel.slice) * W.rows;
    let part = this.#partials.get(size);
    if (!part) {
      part = this.#gpu.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE });
      this.#partials.set(size, part);
      this.#uniforms.push(part);
    }
    const pipeline = await this.#pipelines.get({
      shader: kernel.shader,
      entry: kernel.entry,
      constants: sliceConstants(W.cols, W.groupSize, kernel.slice),
    });
    const dispatch = makeDispatch(
      this.#gpu,
      pipeline,
      [W.codes, x, null, null, params, W.sz, null, null, part],
      kernel.workgroups(T, W.rows, W.cols),
    );
    return { dispatch, part };
  }

  /**
   * The SwiGLU input of the FFN from an int4 weight packed as [gate; up]:
   * gate[t, n] = silu(Wgate · x) * (Wup · x), up used as scratch. One fused
   * dispatch where the chosen GEMV has a fused form (decode), else the
   * two-output matmul then silu_mul.
   */
  async gateUpInt4(
    W: GpuInt4Weight,
    x: GPUBuffer,
    gate: GPUBuffer,
    up: GPUBuffer,
    T: number,
    options: { entry?: Int4Entry; fused?: boolean } = {},
  ): Promise<Dispatch[]> {
    if (W.parts.length !== 2 || W.parts[0] !== W.parts[1]) {
      throw new GpuError(`gateUpInt4: the weight must be [gate; up] of equal parts`);
    }
    const hidden = W.parts[0];
    const kernel = this.#int4Kernel(W, x, T, options.entry);
    if (!kernel.swiglu || options.fused === false) {
      return [
        ...await this.matmulInt4(W, x, [gate, up], T, { entry: kernel.entry }),
        await this.siluMul(gate, up, T * hidden),
      ];
    }
    const params = this.#int4Params(W, kernel, T, hidden, W.rows);
    const pipeline = await this.#pipelines.get({
      shader: kernel.shader,
      entry: kernel.swiglu.entry,
      constants: { WG },
    });
    const workgroups = kernel.swiglu.workgroups(T, hidden);
    if (kernel.sum) {
      const first = await this.#slicePartials(W, x, T, kernel, params);
      return [
        first.dispatch,
        makeDispatch(
          this.#gpu,
          pipeline,
          [null, null, gate, null, params, null, null, null, first.part],
          workgroups,
        ),
      ];
    }
    return [
      makeDispatch(
        this.#gpu,
        pipeline,
        [W.codes, this.#xBinding(kernel, x), gate, null, params, W.sz],
        workgroups,
      ),
    ];
  }

  /**
   * RoPE on q (in place) and k (into the cache), v copied into the cache, for
   * T tokens of one sequence at positions state.pos + t.
   */
  ropeStore(
    q: GPUBuffer,
    k: GPUBuffer,
    v: GPUBuffer,
    kCache: GPUBuffer,
    vCache: GPUBuffer,
    state: GPUBuffer,
    T: number,
    shape: AttentionShape,
    theta: number,
  ): Promise<Dispatch> {
    const rows = this.#rowsOfOneSequence(T);
    return this.ropeStoreBatched(q, k, v, kCache, vCache, state, rows, T, shape, theta);
  }

  /**
   * RoPE and KV store for T rows of a batch (shaders/rope_store.wgsl): row r
   * is a token of slot rows[r].x at position states[slot].pos + rows[r].y;
   * the caches are [slots, shape.maxSeq, kvDim].
   */
  async ropeStoreBatched(
    q: GPUBuffer,
    k: GPUBuffer,
    v: GPUBuffer,
    kCache: GPUBuffer,
    vCache: GPUBuffer,
    states: GPUBuffer,
    rows: GPUBuffer,
    T: number,
    shape: AttentionShape,
    theta: number,
  ): Promise<Dispatch> {
    const buffers = [q, k, v, kCache, vCache, states, rows];
    const pipeline = await this.#pipelines.get({
      shader: "rope_store",
      entry: "rope_store",
      constants: { WG },
      kv: this.#kv(shape),
    });
    const params = this.#ropeParams(T, shape, theta);
    const n = T * (shape.nHeads + shape.nKv) * (shape.headDim / 2);
    return makeDispatch(this.#gpu, pipeline, [...buffers, params], Math.ceil(n / WG));
  }

  /**
   * Causal GQA attention of T queries of one sequence (positions state.pos +
   * t) over its cache; the kernel comes from {@link ATTENTION_KERNELS} unless
   * `options.entry` names one.
   */
  attention(
    q: GPUBuffer,
    kCache: GPUBuffer,
    vCache: GPUBuffer,
    out: GPUBuffer,
    state: GPUBuffer,
    T: number,
    shape: AttentionShape,
    options: { entry?: "attention" | "attention_rows" } = {},
  ): Promise<Dispatch> {
    const rows = this.#rowsOfOneSequence(T);
    return this.attentionBatched(q, kCache, vCache, out, state, rows, T, shape, options);
  }

  /**
   * Causal GQA attention of T rows of a batch over their slots' regions of
   * the [slots, maxSeq, kvDim] caches (row r: slot rows[r].x, position
   * states[slot].pos + rows[r].y); the form comes from
   * {@link ATTENTION_KERNELS} unless `options.entry` names one. The
   * row-per-invocation form reads heads as vec4s.
   */
  async attentionBatched(
    q: GPUBuffer,
    kCache: GPUBuffer,
    vCache: GPUBuffer,
    out: GPUBuffer,
    states: GPUBuffer,
    rows: GPUBuffer,
    T: number,
    shape: AttentionShape,
    options: { entry?: AttentionKernel["shader"] } = {},
  ): Promise<Dispatch> {
    const kernel = options.entry
      ? ATTENTION_KERNELS.find((k) => k.shader === options.entry)!
      : ATTENTION_KERNELS.find((k) => k.when(shape, this.#gpu))!;
    if (kernel.shader === "attention_rows" && shape.headDim % 4 !== 0) {
      throw new GpuError(
        `${kernel.shader} needs a head size divisible by 4 (got ${shape.headDim})`,
      );
    }
    const pipeline = await this.#pipelines.get({
      shader: kernel.shader,
      entry: kernel.shader,
      constants: kernel.shader === "attention_rows"
        ? { WG: ROWS_WG, HD4: shape.headDim / 4 }
        : { WG },
      kv: this.#kv(shape),
    });
    const params = this.#attentionParams(T, shape);
    return makeDispatch(
      this.#gpu,
      pipeline,
      [q, kCache, vCache, out, states, rows, params],
      kernel.workgroups(T, shape),
    );
  }

  /** g = silu(g) * u over n elements. */
  async siluMul(g: GPUBuffer, u: GPUBuffer, n: number): Promise<Dispatch> {
    const pipeline = await this.#pipelines.get({
      shader: "silu_mul",
      entry: "silu_mul",
      constants: { WG },
    });
    const params = this.#uniform([u32(n), u32(0), u32(0), u32(0)]);
    return makeDispatch(this.#gpu, pipeline, [g, u, params], Math.ceil(n / WG));
  }

  /** out[r] = -log softmax(logits[r])[tokens[r + 1]] for r < rows. */
  async nll(
    logits: GPUBuffer,
    tokens: GPUBuffer,
    out: GPUBuffer,
    rows: number,
    vocab: number,
  ): Promise<Dispatch> {
    const pipeline = await this.#pipelines.get({ shader: "nll", entry: "nll", constants: { WG } });
    const params = this.#uniform([u32(rows), u32(vocab), u32(0), u32(0)]);
    return makeDispatch(this.#gpu, pipeline, [logits, tokens, out, params], rows);
  }

  /**
   * Samples the next token of one sequence from logits row 0: the batch
   * sampler (shaders/sample.wgsl) on slot 0, so `state` (16 bytes) and `ctx`
   * ([maxSeq]) are slot 0's, the id goes to out[state.step] and tokens[0].
   * `params` holds the sampler settings (`samplerUniform`) and needs STORAGE
   * usage (`createUniform(gpu, fields, { storage: true })`).
   */
  sample(
    logits: GPUBuffer,
    work: GPUBuffer,
    ctx: GPUBuffer,
    tokens: GPUBuffer,
    state: GPUBuffer,
    out: GPUBuffer,
    params: GPUBuffer,
  ): Promise<Dispatch> {
    const rows = this.#rowsOfOneSequence(1);
    return this.sampleBatched(logits, work, ctx, tokens, state, out, params, rows, 1, 0);
  }

  /**
   * Samples one token per row of a batch (shaders/sample.wgsl), one
   * workgroup per row: row r uses logits row r and slot rows[r].x's settings
   * (`params`: one sampler block of 64 bytes per slot), context (`ctx`:
   * [slots, maxSeq]) and state (`states`: [slots] × 16 bytes), and writes
   * the slot's id to out[slot * outStride + step].
   */
  async sampleBatched(
    logits: GPUBuffer,
    work: GPUBuffer,
    ctx: GPUBuffer,
    tokens: GPUBuffer,
    states: GPUBuffer,
    out: GPUBuffer,
    params: GPUBuffer,
    rows: GPUBuffer,
    T: number,
    outStride: number,
  ): Promise<Dispatch> {
    const pipeline = await this.#pipelines.get({ shader: "sample", entry: "sample" });
    const batch = this.#uniform([u32(outStride), u32(0), u32(0), u32(0)]);
    return makeDispatch(
      this.#gpu,
      pipeline,
      [logits, work, ctx, tokens, states, out, params, rows, batch],
      T,
    );
  }

  /**
   * out[r] = wrapping u32 sum of row r of `src` ([rows, words4] vec4<u32>),
   * one invocation per row (shaders/read_rows.wgsl): the memory-read
   * baseline the int4 benchmark compares the GEMV against.
   */
  async readRows(src: GPUBuffer, out: GPUBuffer, rows: number, words4: number): Promise<Dispatch> {
    const pipeline = await this.#pipelines.get({
      shader: "read_rows",
      entry: "read_rows",
      constants: { WG },
    });
    const params = this.#uniform([u32(rows), u32(words4), u32(0), u32(0)]);
    return makeDispatch(this.#gpu, pipeline, [src, out, params], Math.ceil(rows / WG));
  }

  /** Releases the uniform buffers created by this kernel set. */
  destroy(): void {
    for (const b of this.#uniforms) b.destroy();
    this.#uniforms.length = 0;
    this.#partials.clear();
  }
}
