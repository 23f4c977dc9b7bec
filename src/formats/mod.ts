/**
 * Checkpoint formats: safetensors (read, write, sharded), Hugging Face
 * config.json and model directories, llama2.c checkpoints, f16/bf16
 * conversion and atomic file writes.
 *
 * @example
 * ```ts ignore
 * import { exportHfDirectory, loadHfModel, readLlama2c } from "./mod.ts";
 * const w = await readLlama2c("stories260K.bin");
 * await exportHfDirectory(w, "stories260K-hf", { tokenizerJson });
 * const back = await loadHfModel("stories260K-hf");
 * ```
 * @module
 */

export * from "./atomic.ts";
export * from "./dtype.ts";
export * from "./half.ts";
export * from "./hf_config.ts";
export * from "./hf_export.ts";
export * from "./hf_layout.ts";
export * from "./hf_model.ts";
export * from "./llama2c.ts";
export * from "./safetensors_model.ts";
export * from "./safetensors_read.ts";
export * from "./safetensors_write.ts";
