/**
 * WebGPU dispatches of the AWQ searches (shaders/awq_*.wgsl): fake
 * quantization with candidate scales, activation statistics, squared-error
 * reduction, calibration attention and the clip search. Each builder returns
 * a reusable Dispatch; uniform buffers are released by {@link AwqKernels.release}.
 *
 * @example
 * ```ts ignore
 * const k = new AwqKernels(gpu);
 * const d = await k.fakeQuant(w, s, null, out, rows, cols, settings, 0);
 * new CommandBatch(gpu).run(d).submit();
 * k.release();
 * ```
 * @module
 */

import { type Dispatch, makeDispatch } from "../gpu/command_batch.ts";
import type { GpuContext } from "../gpu/device.ts";
import { PipelineCache } from "../gpu/pipeline_cache.ts";
import { createUniform, f32, u32, type UniformField } from "../gpu/uniforms.ts";
import type { QuantSettings } from "./types.ts";

const WG = 64;

/** Builds the AWQ search dispatches on one device. */
export class AwqKernels {
  readonly #gpu: GpuContext;
  readonly #pipelines: PipelineCache;
  #uniforms: GPUBuffer[] = [];
  readonly #empty: GPUBuffer;

  /** Creates the kernel set (pipelines compile on first use). */
  constructor(gpu: GpuContext, pipelines: PipelineCache = new PipelineCache(gpu)) {
    this.#gpu = gpu;
    this.#pipelines = pipelines;
    this.#empty = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  }

  #uniform(fields: UniformField[]): GPUBuffer {
    const b = createUniform(this.#gpu, fields);
    this.#uniforms.push(b);
    return b;
  }

  async #dispatch(
    shader: string,
    entry: string,
    buffers: (GPUBuffer | null)[],
    workgroups: number,
  ): Promise<Dispatch> {
    const constants: Record<string, number> = entry === "sum_into" ? {} : { WG };
    const pipeline = await this.#pipelines.get({ shader, entry, constants });
    return makeDispatch(this.#gpu, pipeline, buffers, workgroups);
  }

  /**
   * out = Q(W * s) / s for W [rows, cols] f32; `s` holds candidate scales
   * (this candidate at element offset `sOffset`), null for none; `clip` holds
   * per-(row, group) caps, null for none.
   */
  fakeQuant(
    w: GPUBuffer,
    s: GPUBuffer | null,
    clip: GPUBuffer | null,
    out: GPUBuffer,
    rows: number,
    cols: number,
    q: QuantSettings,
    sOffset = 0,
  ): Promise<Dispatch> {
    const g = groupWidth(cols, q.groupSize);
    const params = this.#uniform([
      u32(rows),
      u32(cols),
      u32(g),
      u32(q.bits),
      u32(q.zeroPoint ? 1 : 0),
      u32(sOffset),
      u32(s ? 1 : 0),
      u32(clip ? 1 : 0),
    ]);
    const groups = rows * Math.ceil(cols / g);
    return this.#dispatch(
      "awq_quant",
      "fake_quant",
      [w, s ?? this.#empty, clip ?? this.#empty, out, params],
      Math.ceil(groups / WG),
    );
  }

  /** out[c] += Σ_r |x[r, c]| over `rows` tokens. */
  absSum(x: GPUBuffer, out: GPUBuffer, rows: number, cols: number): Promise<Dispatch> {
    const params = this.#uniform([u32(rows), u32(cols), u32(0), u32(0)]);
    return this.#dispatch(
      "awq_stats",
      "abs_sum",
      [x, null, out, params],
      Math.ceil(cols / WG),
    );
  }

  /** scratch[r] = Σ_c (a - b)²; then loss[slot] += Σ_r scratch[r]. Two dispatches. */
  async squaredError(
    a: GPUBuffer,
    b: GPUBuffer,
    scratch: GPUBuffer,
    loss: GPUBuffer,
    slot: number,
    rows: number,
    cols: number,
  ): Promise<Dispatch[]> {
    const p1 = this.#uniform([u32(rows), u32(cols), u32(0), u32(0)]);
    const p2 = this.#uniform([u32(rows), u32(cols), u32(slot), u32(rows)]);
    return [
      await this.#dispatch("awq_stats", "row_sq_err", [a, b, scratch, p1], Math.ceil(rows / WG)),
      await this.#dispatch("awq_stats", "sum_into", [scratch, null, loss, p2], 1),
    ];
  }

  #blockParams(
    N: number,
    L: number,
    nHeads: number,
    nKv: number,
    headDim: number,
    theta: number,
  ) {
    return this.#uniform([
      u32(N),
      u32(L),
      u32(nHeads),
      u32(nKv),
      u32(headDim),
      f32(theta),
      u32(0),
      u32(0),
    ]);
  }

  /** RoPE in place on q [N, nHeads*hd] and k [N, nKv*hd], position t % L. */
  ropeCalib(
    q: GPUBuffer,
    k: GPUBuffer,
    N: number,
    L: number,
    nHeads: number,
    nKv: number,
    headDim: number,
    theta: number,
  ): Promise<Dispatch> {
    const params = this.#blockParams(N, L, nHeads, nKv, headDim, theta);
    const n = N * (nHeads + nKv) * (headDim / 2);
    return this.#dispatch(
      "awq_block",
      "rope_calib",
      [q, k, null, null, params],
      Math.ceil(n / WG),
    );
  }

  /** Causal attention within each sequence of L tokens. */
  attentionCalib(
    q: GPUBuffer,
    k: GPUBuffer,
    v: GPUBuffer,
    out: GPUBuffer,
    N: number,
    L: number,
    nHeads: number,
    nKv: number,
    headDim: number,
  ): Promise<Dispatch> {
    const params = this.#blockParams(N, L, nHeads, nKv, headDim, 0);
    return this.#dispatch(
      "awq_block",
      "attention_calib",
      [q, k, v, out, params],
      Math.ceil((N * nHeads) / WG),
    );
  }

  /** best[row, group] = the clip cap with the least output error on x [n, cols]. */
  clipSearch(
    w: GPUBuffer,
    x: GPUBuffer,
    best: GPUBuffer,
    rows: number,
    cols: number,
    n: number,
    q: QuantSettings,
    nShrink = 10,
  ): Promise<Dispatch> {
    const g = groupWidth(cols, q.groupSize);
    const params = this.#uniform([
      u32(rows),
      u32(cols),
      u32(g),
      u32(q.bits),
      u32(q.zeroPoint ? 1 : 0),
      u32(n),
      u32(nShrink),
      u32(0),
    ]);
    const groups = rows * Math.ceil(cols / g);
    return this.#dispatch("awq_clip", "clip_search", [w, x, best, params], Math.ceil(groups / WG));
  }

  /** Destroys the uniform buffers created so far. */
  release(): void {
    for (const b of this.#uniforms) b.destroy();
    this.#uniforms = [];
  }

  /** Releases everything. */
  destroy(): void {
    this.release();
    this.#empty.destroy();
  }
}

/** Width of a quantization group: `groupSize`, or the whole row for 0 (per-channel). */
export function groupWidth(cols: number, groupSize: number): number {
  return groupSize > 0 ? Math.min(groupSize, cols) : cols;
}
