/**
 * The one way to copy GPU data back to the host. Each call costs one queue
 * round trip (about 10 ms in Deno), so callers batch work and read many
 * results at once.
 *
 * @example
 * ```ts
 * import { acquireGpu } from "./device.ts";
 * import { readBuffer } from "./readback.ts";
 * const gpu = await acquireGpu();
 * const buf = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
 * gpu.device.queue.writeBuffer(buf, 0, new Float32Array([1, 2, 3, 4]));
 * console.log(new Float32Array(await readBuffer(gpu, buf)));
 * ```
 * @module
 */

import type { GpuContext } from "./device.ts";

/**
 * Copies `size` bytes of `buffer` from `offset` to the host. Work submitted
 * before the call is complete when it resolves. Rejects with a GpuError when
 * the device is lost or reported an error instead of hanging.
 */
export async function readBuffer(
  gpu: GpuContext,
  buffer: GPUBuffer,
  offset = 0,
  size = buffer.size - offset,
): Promise<ArrayBuffer> {
  const { device } = gpu;
  const staging = device.createBuffer({
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, offset, staging, 0, size);
    device.queue.submit([enc.finish()]);
    const mapped = staging.mapAsync(GPUMapMode.READ).then(() => undefined);
    const lost = gpu.lost.then((e) => e);
    const result = await Promise.race([mapped, lost]);
    if (result) throw result;
    gpu.check();
    return staging.getMappedRange().slice(0);
  } finally {
    staging.destroy();
  }
}
