/**
 * WebGPU adapter and device acquisition.
 *
 * @example
 * ```ts
 * import { acquireGpu } from "./device.ts";
 * const gpu = await acquireGpu();
 * console.log(gpu.adapterDescription, gpu.hasF16);
 * gpu.destroy();
 * ```
 * @module
 */

import { GpuError } from "../errors.ts";

/** What to ask for when acquiring a device. */
export interface AcquireGpuOptions {
  /** Ask for shader-f16 when the adapter has it (default true). */
  f16?: boolean;
  /** Ask for subgroups when the adapter has it (default true). */
  subgroups?: boolean;
}

/** A WebGPU device with the facts the kernels need, and error tracking. */
export interface GpuContext {
  /** The device. */
  readonly device: GPUDevice;
  /** Human-readable adapter name (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"). */
  readonly adapterDescription: string;
  /** The adapter is a software/fallback one (lavapipe, SwiftShader). */
  readonly isSoftware: boolean;
  /** shader-f16 was enabled on the device. */
  readonly hasF16: boolean;
  /** subgroups was enabled on the device. */
  readonly hasSubgroups: boolean;
  /** The device's limits. */
  readonly limits: GPUSupportedLimits;
  /** Throws a {@link GpuError} if the device was lost or reported an error. */
  check(): void;
  /** Resolves with a GpuError when the device is lost (never rejects). */
  readonly lost: Promise<GpuError>;
  /** Releases the device. */
  destroy(): void;
}

const INSTALL_HINT = "On Debian/Ubuntu without a GPU install Mesa's software Vulkan driver: " +
  "apt-get install -y mesa-vulkan-drivers libvulkan1";

/**
 * Acquires a WebGPU device with the adapter's full buffer limits and the
 * optional features the kernels use. Throws {@link GpuError} with an install
 * hint when there is no adapter.
 */
export async function acquireGpu(options: AcquireGpuOptions = {}): Promise<GpuContext> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    throw new GpuError(`WebGPU is not available in this runtime. ${INSTALL_HINT}`);
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new GpuError(`No WebGPU adapter found. ${INSTALL_HINT}`);
  const wanted: GPUFeatureName[] = [];
  if (options.f16 !== false && adapter.features.has("shader-f16")) wanted.push("shader-f16");
  if (options.subgroups !== false && adapter.features.has("subgroups" as GPUFeatureName)) {
    wanted.push("subgroups" as GPUFeatureName);
  }
  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxBufferSize: a.maxBufferSize,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: wanted, requiredLimits });
  } catch (e) {
    throw new GpuError(`Could not create a WebGPU device: ${(e as Error).message}`);
  }
  const info = adapter.info;
  const description = info.description || `${info.vendor} ${info.device}`.trim() || "unknown";
  const isSoftware = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) ||
    /llvmpipe|lavapipe|swiftshader|software/i.test(`${description} ${info.architecture}`);
  let failure: GpuError | undefined;
  device.addEventListener("uncapturederror", (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    failure ??= new GpuError(`WebGPU error: ${err.message}`);
  });
  let destroyed = false;
  const lost = device.lost.then((l) => {
    const e = new GpuError(
      destroyed ? "WebGPU device was released" : `WebGPU device lost (${l.reason}): ${l.message}`,
    );
    failure ??= e;
    return e;
  });
  return {
    device,
    adapterDescription: description,
    isSoftware,
    hasF16: device.features.has("shader-f16"),
    hasSubgroups: device.features.has("subgroups" as GPUFeatureName),
    limits: device.limits,
    lost,
    check() {
      if (failure) throw failure;
    },
    destroy() {
      destroyed = true;
      device.destroy();
    },
  };
}
