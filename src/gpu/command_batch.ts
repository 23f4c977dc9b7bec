/**
 * The one way to run GPU work: record many dispatches (and copies) and submit
 * them together. Dispatches run in order, each seeing the previous one's
 * writes.
 *
 * @example
 * ```ts ignore
 * const batch = new CommandBatch(gpu);
 * batch.dispatch(pipeline, [bufA, bufB, params], [64]);
 * batch.copy(bufB, 0, results, 0, 256);
 * batch.submit();
 * ```
 * @module
 */

import type { GpuContext } from "./device.ts";

/** A recorded dispatch that can be encoded again and again (bind group made once). */
export interface Dispatch {
  /** The pipeline to run. */
  readonly pipeline: GPUComputePipeline;
  /** Its bind group 0. */
  readonly bindGroup: GPUBindGroup;
  /** Workgroup counts (x, y, z). */
  readonly workgroups: readonly [number, number, number];
}

/**
 * Builds a reusable {@link Dispatch}: `buffers[i]` is bound at binding `i`
 * (skip a binding with `null`; a `GPUBufferBinding` binds a range, e.g. the
 * first 64 KiB of a buffer as a uniform). Large 1-D workgroup counts are folded into
 * two dimensions; kernels rebuild the flat index from `num_workgroups`.
 */
export function makeDispatch(
  gpu: GpuContext,
  pipeline: GPUComputePipeline,
  buffers: ReadonlyArray<GPUBuffer | GPUBufferBinding | null>,
  workgroups: number | readonly [number, number],
): Dispatch {
  const entries: GPUBindGroupEntry[] = [];
  buffers.forEach((buffer, binding) => {
    if (!buffer) return;
    entries.push({ binding, resource: "buffer" in buffer ? buffer : { buffer } });
  });
  const bindGroup = gpu.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  let wg: [number, number, number];
  if (typeof workgroups === "number") {
    const max = gpu.limits.maxComputeWorkgroupsPerDimension;
    wg = workgroups <= max ? [workgroups, 1, 1] : [max, Math.ceil(workgroups / max), 1];
  } else {
    wg = [workgroups[0], workgroups[1], 1];
  }
  return { pipeline, bindGroup, workgroups: wg };
}

/** Records dispatches and copies into one command buffer and submits it. */
export class CommandBatch {
  #gpu: GpuContext;
  #encoder: GPUCommandEncoder;
  #pass: GPUComputePassEncoder | null = null;
  /** Number of dispatches recorded so far. */
  dispatchCount = 0;

  /** Starts an empty batch. */
  constructor(gpu: GpuContext) {
    this.#gpu = gpu;
    this.#encoder = gpu.device.createCommandEncoder();
  }

  /** Records one dispatch. */
  run(d: Dispatch): this {
    this.#pass ??= this.#encoder.beginComputePass();
    this.#pass.setPipeline(d.pipeline);
    this.#pass.setBindGroup(0, d.bindGroup);
    this.#pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
    this.dispatchCount++;
    return this;
  }

  /** Records several dispatches in order. */
  runAll(ds: Iterable<Dispatch>): this {
    for (const d of ds) this.run(d);
    return this;
  }

  /** Records a buffer-to-buffer copy (ordered after the dispatches before it). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): this {
    this.#endPass();
    this.#encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    return this;
  }

  /** Submits everything recorded. The batch cannot be used afterwards. */
  submit(): void {
    this.#endPass();
    this.#gpu.device.queue.submit([this.#encoder.finish()]);
  }

  #endPass() {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }
}
