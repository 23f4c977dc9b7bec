/**
 * The backends the backend-dependent tests run on: both by default, or the
 * comma-separated list in AWQ_EDGE_TEST_BACKENDS (e.g. "wasm" on a host
 * without WebGPU).
 *
 * @example
 * ```ts
 * import { TEST_BACKENDS } from "./backends.ts";
 * for (const backend of TEST_BACKENDS) console.log(backend); // "webgpu", "wasm"
 * ```
 * @module
 */

import type { BackendName } from "../../src/engine/inference_model.ts";

/** Backends to test. */
export const TEST_BACKENDS: readonly BackendName[] = (() => {
  const env = Deno.env.get("AWQ_EDGE_TEST_BACKENDS");
  if (!env) return ["webgpu", "wasm"] as const;
  return env.split(",").map((s) => s.trim()).filter((s): s is BackendName =>
    s === "webgpu" || s === "wasm"
  );
})();
