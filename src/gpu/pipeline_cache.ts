/**
 * Compute pipelines, created once per (kernel, entry point, weight type,
 * override constants) and reused.
 *
 * @example
 * ```ts
 * import { acquireGpu } from "./device.ts";
 * import { PipelineCache } from "./pipeline_cache.ts";
 * const gpu = await acquireGpu();
 * const cache = new PipelineCache(gpu);
 * const p = await cache.get({ shader: "silu_mul", entry: "silu_mul", constants: { WG: 64 } });
 * ```
 * @module
 */

import { GpuError } from "../errors.ts";
import type { GpuContext } from "./device.ts";
import { type KvDType, loadShaderSource, type WeightPrelude } from "./shader_source.ts";

/** Which pipeline to build. */
export interface PipelineKey {
  /** Kernel family: the file `shaders/<shader>.wgsl`. */
  shader: string;
  /** Entry point in that file. */
  entry: string;
  /** Weight prelude to compose in front, for kernels reading weight matrices. */
  weights?: WeightPrelude;
  /** KV-cache element prelude, for the RoPE/KV-store and attention kernels. */
  kv?: KvDType;
  /** Values for the shader's `override` constants. */
  constants?: Record<string, number | boolean>;
}

/** Caches compute pipelines by {@link PipelineKey}. */
export class PipelineCache {
  #gpu: GpuContext;
  #pipelines = new Map<string, Promise<GPUComputePipeline>>();
  #modules = new Map<string, Promise<GPUShaderModule>>();

  /** Creates an empty cache for `gpu`'s device. */
  constructor(gpu: GpuContext) {
    this.#gpu = gpu;
  }

  /** Returns the pipeline for `key`, compiling it on first use. */
  get(key: PipelineKey): Promise<GPUComputePipeline> {
    const constants: Record<string, number> = {};
    for (const [k, v] of Object.entries(key.constants ?? {})) constants[k] = Number(v);
    const id = JSON.stringify([key.shader, key.entry, key.weights ?? "", key.kv ?? "", constants]);
    let p = this.#pipelines.get(id);
    if (!p) {
      p = this.#create(key, constants);
      this.#pipelines.set(id, p);
    }
    return p;
  }

  #module(shader: string, weights?: WeightPrelude, kv?: KvDType): Promise<GPUShaderModule> {
    const id = `${shader}/${weights ?? ""}/${kv ?? ""}`;
    let m = this.#modules.get(id);
    if (!m) {
      m = (async () => {
        const code = await loadShaderSource(shader, weights, kv);
        const module = this.#gpu.device.createShaderModule({ label: id, code });
        const info = await module.getCompilationInfo();
        const errors = info.messages.filter((msg) => msg.type === "error");
        if (errors.length) {
          const text = errors.map((e) => `${e.lineNum}:${e.linePos} ${e.message}`).join("; ");
          throw new GpuError(`WGSL compile error in shaders/${shader}.wgsl: ${text}`);
        }
        return module;
      })();
      this.#modules.set(id, m);
    }
    return m;
  }

  async #create(key: PipelineKey, constants: Record<string, number>): Promise<GPUComputePipeline> {
    const module = await this.#module(key.shader, key.weights, key.kv);
    try {
      return await this.#gpu.device.createComputePipelineAsync({
        label: `${key.shader}:${key.entry}`,
        layout: "auto",
        compute: { module, entryPoint: key.entry, constants },
      });
    } catch (e) {
      throw new GpuError(
        `Cannot create pipeline ${key.shader}:${key.entry}: ${(e as Error).message}`,
      );
    }
  }
}
