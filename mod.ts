/**
 * awq-edge: run and AWQ-quantize Llama-family language models from Deno on
 * machines without CUDA: on WebGPU, or on the WebAssembly CPU backend where
 * there is no GPU adapter or only a software one (`backend: "auto"`).
 *
 * @example
 * ```ts ignore
 * import { TextModel } from "./mod.ts";
 * const m = await TextModel.open("../shared/models/stories260K/stories260K.bin", {
 *   backend: "auto", // or "webgpu" / "wasm"; threads, activations: "int8" | "f32"
 *   log: console.error, // "backend wasm (WebGPU adapter is llvmpipe ..., a software rasterizer)"
 * });
 * console.log((await m.complete("Once upon a time", { maxTokens: 40 })).text);
 * console.log((await m.perplexity(await Deno.readTextFile("eval.txt"))).ppl);
 * m.close();
 *
 * import { quantize } from "./mod.ts";
 * const report = await quantize("stories260K.bin", "stories260K-awq", { groupSize: 32 });
 * console.log(report.layers.length);
 * ```
 * @module
 */

export { AwqEdgeError, ConfigError, FormatError, GpuError, RequestError } from "./src/errors.ts";

export type { LlamaConfig, ModelType } from "./src/model/config.ts";
export type { HostTensor, LayerWeights, LlamaWeights } from "./src/model/weights.ts";
export { type LoadedModel, loadModel } from "./src/model/load_model.ts";
export { GpuLlama, type GpuLlamaOptions, type LogitRows } from "./src/model/gpu_llama.ts";
export { ReferenceLlama } from "./src/model/reference_llama.ts";

export { TextModel, type TextModelOptions } from "./src/engine/text_model.ts";
export {
  type BackendName,
  type DecodeSlots,
  type InferenceModel,
  NO_TOKEN,
  type SequenceDecoder,
  type SlotRow,
} from "./src/engine/inference_model.ts";
export {
  type AdapterProbe,
  type BackendChoice,
  type BackendDecision,
  chooseBackend,
  parseBackend,
  probeAdapter,
} from "./src/engine/backend.ts";
export {
  type ModelDType,
  type OpenedInferenceModel,
  openInferenceModel,
  type OpenInferenceOptions,
  requireInt4,
  withWeightDType,
} from "./src/engine/open_inference_model.ts";
export {
  asInferenceModel,
  GpuInferenceModel,
  type GpuInferenceModelOptions,
} from "./src/engine/gpu_inference_model.ts";
export { sampleLogits, samplerDraw } from "./src/engine/host_sampler.ts";
export {
  CpuLlama,
  type CpuLlamaOptions,
  type CpuLogitRows,
  type CpuRow,
  type KvCache,
  placedBytes,
  WASM32_MAX_BYTES,
} from "./src/cpu/cpu_llama.ts";
export { CpuInferenceModel, type CpuInferenceModelOptions } from "./src/cpu/cpu_inference_model.ts";
export {
  checkThreads,
  type CpuKernelKind,
  type CpuKernelOptions,
  defaultThreads,
  openCpuKernels,
  type OpenedCpuKernels,
  parseActivations,
} from "./src/cpu/open_cpu_kernels.ts";
export type {
  ActivationMode,
  CpuAttentionShape,
  CpuKernels,
  CpuLinear,
  Ptr,
} from "./src/cpu/cpu_kernels.ts";
export {
  type FinishReason,
  type GenerateChunk,
  type GenerateOptions,
  type GenerateResult,
  Generator,
} from "./src/engine/generator.ts";
export {
  type ResolvedSampling,
  resolveSampling,
  type SamplingOptions,
} from "./src/engine/sampling_options.ts";
export type { WeightDType } from "./src/gpu/shader_source.ts";
export {
  evaluatePerplexity,
  type PerplexityOptions,
  type PerplexityProgress,
  type PerplexityResult,
} from "./src/engine/perplexity.ts";
export { buildTokenStream, splitParagraphs, windows } from "./src/engine/perplexity_stream.ts";

export { acquireGpu, type AcquireGpuOptions, type GpuContext } from "./src/gpu/device.ts";

export type { TextTokenizer } from "./src/tokenizer/types.ts";
export { HfTokenizer } from "./src/tokenizer/hf_tokenizer.ts";
export { StreamingDecoder } from "./src/tokenizer/streaming_decoder.ts";
export { loadTokenizer } from "./src/tokenizer/load_tokenizer.ts";
export { llama2cTokenizerToHfJson } from "./src/tokenizer/llama2c_to_hf.ts";

export { openSafetensors, type SafetensorsFile } from "./src/formats/safetensors_read.ts";
export { openSafetensorsModel } from "./src/formats/safetensors_model.ts";
export { writeSafetensors, writeSafetensorsSharded } from "./src/formats/safetensors_write.ts";
export { parseHfConfig, toHfConfigJson } from "./src/formats/hf_config.ts";
export { loadHfModel } from "./src/formats/hf_model.ts";
export { readLlama2c } from "./src/formats/llama2c.ts";
export { exportHfDirectory } from "./src/formats/hf_export.ts";

export {
  checkModelFits,
  partialDir,
  quantize,
  type QuantizeApiOptions,
  type ResolvedQuantizeOptions,
  resolveQuantizeOptions,
} from "./src/quant/quantize_api.ts";
export {
  type QuantizeOptions,
  type QuantizeProgress,
  type QuantizeResult,
} from "./src/quant/quantize_model.ts";
export type { LayerReport, QuantizedLinear, QuantSettings } from "./src/quant/types.ts";
export {
  buildReport,
  type CalibrationReportJson,
  formatReportTable,
  type LayerReportJson,
  layerReportJson,
  type LinearReportJson,
  type QuantReport,
  type ReportInput,
  reportSummary,
  type ScalingReportJson,
  type ValidationReportJson,
} from "./src/quant/report.ts";
export {
  type Calibration,
  calibrationDocuments,
  type CalibrationOptions,
  DEFAULT_CALIBRATION,
  DEFAULT_CALIBRATION_FILE,
  drawWindows,
  loadCalibration,
  seededRandom,
} from "./src/quant/calibration.ts";
export {
  buildProvenance,
  hashModelFiles,
  provenanceDate,
  type ProvenanceInput,
  sha256File,
  sha256Hex,
  type SourceHash,
  TOOL_VERSION,
} from "./src/quant/provenance.ts";
