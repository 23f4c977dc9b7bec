/**
 * Messages between {@link WorkerEngine} (main thread) and engine_worker.ts.
 *
 * @module
 */

import type { EngineRequest } from "./engine.ts";
import type { SlotResult } from "./slots.ts";

/** How the worker loads the model. */
export interface WorkerLoadOptions {
  /** HF directory or llama2.c .bin. */
  model: string;
  /** Tokenizer override. */
  tokenizer?: string;
  /** KV cache length per slot. */
  context?: number;
  /** Weight storage. */
  dtype?: "f32" | "f16" | "int4" | "auto";
  /** KV slots. */
  slots: number;
  /** Decode steps per slot turn. */
  tokensPerTurn: number;
  /** Backend: webgpu, wasm or auto. */
  backend?: "webgpu" | "wasm" | "auto";
  /** wasm: threads. */
  threads?: number;
  /** wasm: int4 matmul activations. */
  activations?: "int8" | "f32";
  /** wasm: which kernels. */
  kernels?: "wasm" | "typescript";
}

/** Main thread → worker. */
export type ToWorker =
  | { type: "load"; options: WorkerLoadOptions }
  | {
    type: "generate";
    id: number;
    request: Omit<EngineRequest, "promptIds">;
    promptIds: number[];
  }
  | { type: "cancel"; id: number; reason: "cancelled" | "timeout" }
  | { type: "close" };

/** Worker → main thread. */
export type FromWorker =
  | {
    type: "ready";
    contextLength: number;
    slots: number;
    adapter: string;
    backend: "webgpu" | "wasm";
    reason: string;
    notes: string[];
  }
  | { type: "chunk"; id: number; text: string; tokenIds: number[] }
  | { type: "done"; id: number; result: SlotResult }
  | { type: "error"; id: number; message: string; requestError: boolean }
  | { type: "fatal"; message: string }
  | { type: "closed" };
