/**
 * What the HTTP routes call: an {@link InferenceEngine} that encodes text,
 * queues requests and streams generated text. The routes know nothing about
 * GPUs or workers; the real engine is {@link WorkerEngine} (the model in a
 * Worker), and tests use a fake.
 *
 * @example
 * ```ts ignore
 * for await (const chunk of engine.generate({ promptIds, maxTokens: 20 }, signal)) {
 *   console.log(chunk.text);
 * }
 * ```
 * @module
 */

import { AwqEdgeError } from "../errors.ts";

/** One generation request, already tokenized and validated. */
export interface EngineRequest {
  /** Prompt token ids (BOS included when the model wants one). */
  promptIds: number[];
  /** Most new tokens. */
  maxTokens: number;
  /** Stop strings (removed from the output). */
  stop?: string[];
  /** 0 is greedy. */
  temperature?: number;
  /** Nucleus sampling threshold in (0, 1]. */
  topP?: number;
  /** OpenAI's presence penalty in [-2, 2] (0 = off). */
  presencePenalty?: number;
  /** OpenAI's frequency penalty in [-2, 2] (0 = off). */
  frequencyPenalty?: number;
  /** Random seed. */
  seed?: number;
}

/** A piece of generated output. */
export interface EngineChunk {
  /** New text. */
  text: string;
  /** New token ids. */
  tokenIds: number[];
}

/** Why a generation ended: the OpenAI reasons plus "cancelled" (client gone) and "timeout". */
export type EngineFinishReason = "stop" | "length" | "cancelled" | "timeout";

/** Totals of one generation. */
export interface EngineResult {
  /** Prompt tokens. */
  promptTokens: number;
  /** Generated tokens (EOS excluded). */
  completionTokens: number;
  /** Why it ended. */
  finishReason: EngineFinishReason;
  /** Seconds waiting in the queue. */
  queueSeconds: number;
}

/** Static facts about the loaded model. */
export interface EngineInfo {
  /** The model id clients name in requests. */
  modelId: string;
  /** Context length in tokens (prompt + completion). */
  contextLength: number;
  /** How many sequences decode at once. */
  slots: number;
  /** The backend running the model ("webgpu" or "wasm"), when known. */
  backend?: string;
  /** Why that backend was chosen. */
  backendReason?: string;
  /** What runs it (adapter or CPU kernels). */
  device?: string;
  /** tokenizer_config.json's chat_template, when the model has one. */
  chatTemplate?: string;
  /** BOS token text ("" when none). */
  bosToken: string;
  /** EOS token text ("" when none). */
  eosToken: string;
}

/** The engine interface the server uses. */
export interface InferenceEngine {
  /** Facts about the model; undefined until loaded. */
  readonly info: EngineInfo | undefined;
  /** Requests waiting for a slot. */
  readonly queueDepth: number;
  /** Requests being generated. */
  readonly active: number;
  /** Encodes text; `bos` prepends the BOS id when the tokenizer has one. */
  encode(text: string, bos: boolean): number[];
  /**
   * Queues a generation and streams its text; returns the totals. Aborting
   * `signal` cancels it (queued or running) and frees its slot. Throws
   * {@link QueueFullError} at once when the queue is full.
   */
  generate(request: EngineRequest, signal?: AbortSignal): AsyncGenerator<EngineChunk, EngineResult>;
  /** Stops the engine (running generations end as cancelled). */
  close(): Promise<void>;
}

/** The queue is full: answer 429 with Retry-After. */
export class QueueFullError extends AwqEdgeError {
  /** Seconds after which a retry is likely to be queued. */
  readonly retryAfterSeconds: number;
  /** Creates the error. */
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The model is not loaded (yet, or any more): answer 503. */
export class EngineUnavailableError extends AwqEdgeError {}
