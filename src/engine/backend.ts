/**
 * Backend selection: `--backend webgpu|wasm|auto`. Auto takes WebGPU on a
 * real GPU adapter and the WebAssembly CPU backend when there is no adapter
 * or only a software/fallback one (llvmpipe, lavapipe, SwiftShader, or
 * `isFallbackAdapter`), where a GPU API is the slow road. The decision
 * carries its reason, printed at start-up.
 *
 * @example
 * ```ts ignore
 * const d = await chooseBackend("auto");
 * console.error(`backend ${d.backend} (${d.reason})`);
 * // backend wasm (WebGPU adapter is llvmpipe (LLVM 15.0.7, 256 bits), a software rasterizer)
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import type { BackendName } from "./inference_model.ts";

/** What the user asks for. */
export type BackendChoice = BackendName | "auto";

/** The backend chosen and why. */
export interface BackendDecision {
  /** The backend that will run the model. */
  backend: BackendName;
  /** Why, in words (for the start-up line). */
  reason: string;
}

/** What an adapter request found. */
export interface AdapterProbe {
  /** "none" when the runtime has no WebGPU or no adapter was returned. */
  kind: "none" | "software" | "hardware";
  /** The adapter's description, or why there is none. */
  detail: string;
  /** The adapter said isFallbackAdapter. */
  fallback?: boolean;
}

/** Parses a --backend value (undefined: "auto"). */
export function parseBackend(v: unknown): BackendChoice {
  if (v === undefined) return "auto";
  if (v === "webgpu" || v === "wasm" || v === "auto") return v;
  throw new RequestError(`--backend must be webgpu, wasm or auto (got "${v}")`);
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software|\bcpu\b/i;

/**
 * Requests a WebGPU adapter (no device) and classifies it from its info:
 * `isFallbackAdapter`, a CPU device type, or a software rasterizer name.
 */
export async function probeAdapter(): Promise<AdapterProbe> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    return { kind: "none", detail: "WebGPU is not available in this runtime" };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    return { kind: "none", detail: `requesting a WebGPU adapter failed (${(e as Error).message})` };
  }
  if (!adapter) return { kind: "none", detail: "no WebGPU adapter was found" };
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean; type?: string };
  const fallback = Boolean(
    info.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  );
  const description = info.description || `${info.vendor} ${info.device}`.trim() || "unknown";
  const text = `${description} ${info.architecture} ${info.device} ${info.type ?? ""}`;
  return {
    kind: fallback || SOFTWARE.test(text) ? "software" : "hardware",
    detail: description,
    fallback,
  };
}

/** Decides the backend for `choice`; `probe` is replaceable for tests. */
export async function chooseBackend(
  choice: BackendChoice,
  probe: () => Promise<AdapterProbe> = probeAdapter,
): Promise<BackendDecision> {
  if (choice !== "auto") return { backend: choice, reason: `--backend ${choice}` };
  const p = await probe();
  if (p.kind === "hardware") {
    return { backend: "webgpu", reason: `WebGPU adapter ${p.detail} is a hardware GPU` };
  }
  if (p.kind === "software") {
    return {
      backend: "wasm",
      reason: p.fallback
        ? `WebGPU adapter ${p.detail} is a fallback adapter`
        : `WebGPU adapter is ${p.detail}, a software rasterizer`,
    };
  }
  return { backend: "wasm", reason: p.detail };
}
