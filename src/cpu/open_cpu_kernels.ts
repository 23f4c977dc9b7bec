/**
 * Creates the CPU backend's kernels: the WebAssembly SIMD kernels on
 * Workers (relaxed SIMD when the runtime has it, else plain SIMD; one
 * thread without SharedArrayBuffer), or the TypeScript reference kernels
 * when asked for (or when the runtime has no WebAssembly SIMD at all), and
 * says which fallbacks were taken in `notes`.
 *
 * @example
 * ```ts ignore
 * const { kernels, notes } = await openCpuKernels({ threads: 2, activations: "int8" });
 * console.error(kernels.description, notes.join("; "));
 * kernels.destroy();
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import type { ActivationMode, CpuKernels } from "./cpu_kernels.ts";
import { TsKernels } from "./ts_kernels.ts";
import { createWasmKernels } from "./wasm_kernels.ts";
import type { WasmFeatures } from "./wasm/kernels_module.ts";

/** Which kernels run the CPU backend. */
export type CpuKernelKind = "wasm" | "typescript";

/** Options of {@link openCpuKernels}. */
export interface CpuKernelOptions {
  /** Worker threads (default navigator.hardwareConcurrency). */
  threads?: number;
  /** Activations of int4 matmuls (default "int8"). */
  activations?: ActivationMode;
  /** Which kernels (default "wasm", falling back to "typescript" when unavailable). */
  kind?: CpuKernelKind;
  /**
   * What the runtime supports, instead of detecting it: tests use this to
   * take the fallbacks of a host without SharedArrayBuffer or SIMD.
   */
  features?: WasmFeatures;
}

/** The kernels and what was decided on the way. */
export interface OpenedCpuKernels {
  /** Ready kernels. */
  kernels: CpuKernels;
  /** Fallbacks taken, one short sentence each (empty when none). */
  notes: string[];
}

/** Default thread count: the host's logical CPUs. */
export function defaultThreads(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/** Checks a thread count option. */
export function checkThreads(threads: number): number {
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new RequestError(`--threads must be an integer in 1..256 (got ${threads})`);
  }
  return threads;
}

/** Checks an activations option ("int8" or "f32"). */
export function parseActivations(v: unknown): ActivationMode | undefined {
  if (v === undefined) return undefined;
  if (v === "int8" || v === "f32") return v;
  throw new RequestError(`--activations must be int8 or f32 (got "${v}")`);
}

/** Creates the kernels (see the module doc). */
export async function openCpuKernels(options: CpuKernelOptions = {}): Promise<OpenedCpuKernels> {
  const threads = checkThreads(options.threads ?? defaultThreads());
  const activations = options.activations ?? "int8";
  const notes: string[] = [];
  if ((options.kind ?? "wasm") === "wasm") {
    const wasm = await loadWasmKernels(threads, activations, notes, options.features);
    if (wasm) return { kernels: wasm, notes };
  }
  return { kernels: new TsKernels({ activations }), notes };
}

/** The WebAssembly kernels, or undefined (with a note) when the runtime cannot run them. */
async function loadWasmKernels(
  threads: number,
  activations: ActivationMode,
  notes: string[],
  features?: WasmFeatures,
): Promise<CpuKernels | undefined> {
  try {
    const k = await createWasmKernels({ threads, activations, features });
    notes.push(...k.notes);
    return k;
  } catch (e) {
    if (typeof WebAssembly === "object" && /SIMD/i.test((e as Error).message)) {
      notes.push(`${(e as Error).message}: using the TypeScript kernels (slow)`);
      return undefined;
    }
    throw e;
  }
}
