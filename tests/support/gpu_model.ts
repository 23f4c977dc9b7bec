/**
 * Runs a test body on a GpuLlama loaded on its own device, releasing both.
 *
 * @example
 * ```ts ignore
 * const logits = await withGpuModel(weights, { weightDType: "int4" }, (m) => m.logits([1], 0));
 * ```
 * @module
 */

import { acquireGpu } from "../../src/gpu/device.ts";
import { GpuLlama, type GpuLlamaOptions } from "../../src/model/gpu_llama.ts";
import type { LlamaWeights } from "../../src/model/weights.ts";

/** Loads `w` (maxSeq 64 unless `options` says otherwise), runs `fn`, then destroys model and device. */
export async function withGpuModel<T>(
  w: LlamaWeights,
  options: GpuLlamaOptions,
  fn: (m: GpuLlama) => Promise<T>,
): Promise<T> {
  const gpu = await acquireGpu();
  try {
    const m = await GpuLlama.load(gpu, w, { maxSeq: 64, ...options });
    try {
      return await fn(m);
    } finally {
      m.destroy();
    }
  } finally {
    gpu.destroy();
  }
}
