/**
 * The backend options every model-running command takes (`eval`,
 * `generate`, `demo`, `serve`): `--backend`, `--threads`, `--activations`,
 * `--kernels`, parsed and checked before any model is loaded.
 *
 * @example
 * ```ts
 * import { BACKEND_OPTIONS, parseBackendOptions } from "./backend_options.ts";
 * import { parseCommandArgs } from "./args.ts";
 * const { values } = parseCommandArgs(["--backend", "wasm", "--threads", "2"], BACKEND_OPTIONS);
 * parseBackendOptions(values); // { backend: "wasm", threads: 2, activations: undefined, kernels: undefined }
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import type { ActivationMode } from "../cpu/cpu_kernels.ts";
import { checkThreads, type CpuKernelKind, parseActivations } from "../cpu/open_cpu_kernels.ts";
import { type BackendChoice, parseBackend } from "../engine/backend.ts";
import { numberOption, type OptionTable, type OptionValues } from "./args.ts";

/** The options in parseArgs form. */
export const BACKEND_OPTIONS: OptionTable = {
  backend: { type: "string" },
  threads: { type: "string" },
  activations: { type: "string" },
  kernels: { type: "string" },
};

/** Usage lines of the options. */
export const BACKEND_USAGE =
  `  --backend B        webgpu, wasm or auto (default: webgpu on a hardware GPU,
                     wasm without an adapter or on a software one such as llvmpipe)
  --threads N        wasm: worker threads (default: the number of CPUs)
  --activations A    wasm: int4 matmul inputs int8 (default, faster) or f32 (exact)
  --kernels K        wasm: wasm (default) or typescript (the slow reference kernels)`;

/** The parsed options. */
export interface BackendOptions {
  /** Which backend. */
  backend: BackendChoice;
  /** CPU threads. */
  threads?: number;
  /** CPU activations. */
  activations?: ActivationMode;
  /** CPU kernels. */
  kernels?: CpuKernelKind;
}

/** Parses and checks the backend options in `values`. */
export function parseBackendOptions(values: OptionValues): BackendOptions {
  const threads = numberOption(values, "threads");
  const k = values.kernels;
  if (k !== undefined && k !== "wasm" && k !== "typescript") {
    throw new RequestError(`--kernels must be wasm or typescript (got "${k}")`);
  }
  return {
    backend: parseBackend(values.backend),
    threads: threads === undefined ? undefined : checkThreads(threads),
    activations: parseActivations(values.activations),
    kernels: k as CpuKernelKind | undefined,
  };
}

/** The same options as command-line arguments (for commands that call others). */
export function backendArgs(o: BackendOptions): string[] {
  return [
    ...["--backend", o.backend],
    ...(o.threads !== undefined ? ["--threads", String(o.threads)] : []),
    ...(o.activations !== undefined ? ["--activations", o.activations] : []),
    ...(o.kernels !== undefined ? ["--kernels", o.kernels] : []),
  ];
}
