/**
 * Opens loaded weights on a backend: chooses it (`auto`, `webgpu`, `wasm`;
 * see backend.ts), then uploads to WebGPU (`GpuLlama`) or places the weights
 * in the CPU kernels' memory (`CpuLlama`). Returns the model as an
 * {@link InferenceModel} with the decision and its reason.
 *
 * @example
 * ```ts ignore
 * const { model, decision } = await openInferenceModel(weights, { backend: "auto" });
 * console.error(`backend ${decision.backend} (${decision.reason}) on ${model.description}`);
 * model.destroy();
 * ```
 * @module
 */

import { CpuInferenceModel } from "../cpu/cpu_inference_model.ts";
import type { ActivationMode } from "../cpu/cpu_kernels.ts";
import type { CpuKernelKind } from "../cpu/open_cpu_kernels.ts";
import { GpuError, RequestError } from "../errors.ts";
import { acquireGpu, type GpuContext } from "../gpu/device.ts";
import type { WeightDType } from "../gpu/shader_source.ts";
import { GpuLlama } from "../model/gpu_llama.ts";
import { type HostTensor, LAYER_LINEARS, type LlamaWeights } from "../model/weights.ts";
import { type BackendChoice, type BackendDecision, chooseBackend } from "./backend.ts";
import { GpuInferenceModel } from "./gpu_inference_model.ts";
import type { InferenceModel } from "./inference_model.ts";

/**
 * How linears are stored: "auto" keeps what the checkpoint holds (AWQ
 * linears stay int4), "f32"/"f16" dequantize them, "int4" keeps them int4
 * and refuses a model with a linear that cannot be (naming it).
 */
export type ModelDType = WeightDType | "int4" | "auto";

/** How to place a model. */
export interface OpenInferenceOptions {
  /** Which backend (default "auto"). */
  backend?: BackendChoice;
  /** KV cache length (default: the model's context, at most 2048). */
  context?: number;
  /** Weight storage (default "auto": as the checkpoint holds it; AWQ linears stay int4). */
  dtype?: ModelDType;
  /** CPU threads (default navigator.hardwareConcurrency). */
  threads?: number;
  /** CPU: activations of int4 matmuls (default "int8"; "f32" is exact). */
  activations?: ActivationMode;
  /** CPU: which kernels (default "wasm"). */
  kernels?: CpuKernelKind;
  /** CPU: sequences (KV caches) to budget and preallocate, e.g. the server's slots (default 1). */
  sequences?: number;
  /** WebGPU: use this device (not destroyed with the model); implies webgpu under auto. */
  gpu?: GpuContext;
}

/** An opened model and how its backend was chosen. */
export interface OpenedInferenceModel {
  /** The model. */
  model: InferenceModel;
  /** The backend and why. */
  decision: BackendDecision;
  /** Fallbacks taken on the way (e.g. no SIMD, single thread). */
  notes: string[];
}

/**
 * `weights` with every linear stored as `dtype` ("f16"/"f32", quantized
 * linears dequantized); unchanged for "auto".
 */
export function withWeightDType(weights: LlamaWeights, dtype: ModelDType): LlamaWeights {
  if (dtype === "int4") requireInt4(weights);
  if (dtype === "auto" || dtype === "int4") return weights;
  const d = dtype === "f16" ? "F16" as const : "F32" as const;
  const as = (t: HostTensor): HostTensor => ({ data: t.data, shape: t.shape, dtype: d });
  const embed = as(weights.embed);
  return {
    config: weights.config,
    embed,
    norm: weights.norm,
    lmHead: weights.lmHead === weights.embed ? embed : as(weights.lmHead),
    layers: weights.layers.map((l) => ({
      ...l,
      wq: as(l.wq),
      wk: as(l.wk),
      wv: as(l.wv),
      wo: as(l.wo),
      wGate: as(l.wGate),
      wUp: as(l.wUp),
      wDown: as(l.wDown),
    })),
  };
}

/**
 * Checks that every linear of `weights` is a 4-bit quantized tensor whose
 * groups the int4 kernels of both backends take (per channel, or a multiple
 * of 32 wide); throws a RequestError naming the first that is not.
 *
 * @example
 * ```ts ignore
 * requireInt4(await readLlama2c("stories260K.bin"));
 * // RequestError: --dtype int4: model.layers.0.self_attn.q_proj.weight is F32, not a 4-bit AWQ tensor ...
 * ```
 */
export function requireInt4(weights: LlamaWeights): void {
  for (const [i, layer] of weights.layers.entries()) {
    for (const [module, field] of LAYER_LINEARS) {
      const t = layer[field];
      const q = t.quantized;
      const name = `model.layers.${i}.${module}.weight`;
      const what = !q
        ? `${t.dtype}, not a 4-bit AWQ tensor`
        : q.settings.bits !== 4
        ? `${q.settings.bits}-bit`
        : q.settings.groupSize % 32 !== 0
        ? `quantized in groups of ${q.settings.groupSize} (int4 kernels take multiples of 32)`
        : undefined;
      if (what) {
        throw new RequestError(
          `--dtype int4: ${name} is ${what}; use an AWQ 4-bit checkpoint, or --dtype auto`,
        );
      }
    }
  }
}

/** Chooses the backend and opens `weights` on it. */
export async function openInferenceModel(
  weights: LlamaWeights,
  options: OpenInferenceOptions = {},
): Promise<OpenedInferenceModel> {
  if (options.dtype === "int4") requireInt4(weights); // before any device or memory is taken
  const choice = options.backend ?? "auto";
  let decision: BackendDecision = options.gpu && choice === "auto"
    ? { backend: "webgpu" as const, reason: "a WebGPU device was given" }
    : await chooseBackend(choice);
  let gpu = options.gpu;
  if (decision.backend === "webgpu" && !gpu) {
    try {
      gpu = await acquireGpu();
    } catch (e) {
      // auto found a hardware adapter, but no usable device: the CPU backend still runs.
      if (choice !== "auto" || !(e instanceof GpuError)) throw e;
      decision = { backend: "wasm", reason: `${decision.reason}, but ${e.message}` };
    }
  }
  if (decision.backend === "wasm") {
    const model = await CpuInferenceModel.load(withWeightDType(weights, options.dtype ?? "auto"), {
      maxSeq: options.context,
      threads: options.threads,
      activations: options.activations,
      kind: options.kernels,
      sequences: options.sequences,
    });
    return { model, decision, notes: model.notes };
  }
  if (!gpu) throw new GpuError("no WebGPU device");
  try {
    const llama = await GpuLlama.load(gpu, weights, {
      maxSeq: options.context,
      weightDType: options.dtype ?? "auto",
    });
    const model = new GpuInferenceModel(llama, {
      owns: true,
      onDestroy: options.gpu ? undefined : () => gpu.destroy(),
    });
    return { model, decision, notes: [] };
  } catch (e) {
    if (!options.gpu) gpu.destroy();
    throw e;
  }
}
