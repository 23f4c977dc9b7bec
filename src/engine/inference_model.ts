/**
 * What the engine needs from a model, whatever runs it: {@link InferenceModel}
 * is implemented by the WebGPU backend (`GpuInferenceModel` over `GpuLlama`,
 * src/engine/gpu_inference_model.ts) and by the CPU backend
 * (`CpuInferenceModel` over `CpuLlama`, src/cpu/cpu_inference_model.ts).
 * The Generator, perplexity, TextModel, the CLI and the server's
 * BatchRunner are written against it only.
 *
 * @example
 * ```ts ignore
 * const seq = model.openSequence();
 * const first = await seq.prefill(promptIds, resolveSampling(), [2]);
 * const next = await seq.decode(8); // 8 ids (0xffffffff after EOS)
 * seq.destroy();
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import type { LlamaConfig } from "../model/config.ts";
import type { ResolvedSampling } from "./sampling_options.ts";

/** The two backends. */
export type BackendName = "webgpu" | "wasm";

/** The id a decode step reports once its sequence has finished (EOS or a full context). */
export const NO_TOKEN = 0xffffffff;

/**
 * One sequence being generated: prefill, then decode steps, each a forward
 * pass and a sample (with the sampler of shaders/sample.wgsl).
 */
export interface SequenceDecoder {
  /**
   * Runs the prompt (positions 0..) and samples the first new id with
   * `sampling`; an id in `eosIds` or a full context finishes the sequence.
   */
  prefill(
    promptIds: readonly number[],
    sampling: ResolvedSampling,
    eosIds: readonly number[],
  ): Promise<number>;
  /**
   * `steps` more decode steps from the last sampled id; returns their ids,
   * {@link NO_TOKEN} for steps after the sequence finished.
   */
  decode(steps: number): Promise<Uint32Array>;
  /** Seconds the host spent waiting for results (readbacks), since creation. */
  readonly waitSeconds: number;
  /** Releases the sequence (its cache goes back to the model). */
  destroy(): void;
}

/** One row of a batched decode step: a slot, its last id and that id's position. */
export interface SlotRow {
  /** KV slot. */
  slot: number;
  /** The input token of the first step (the last id sampled for the slot). */
  lastId: number;
  /** Its position (the slot's context length - 1). */
  pos: number;
}

/**
 * S KV slots decoding together, one forward pass per step over all active
 * slots (the shape of src/model/decode_batch.ts's DecodeBatch).
 */
export interface DecodeSlots {
  /** The model (for its context length). */
  readonly model: { readonly maxSeq: number };
  /** Number of slots. */
  readonly slots: number;
  /** Most decode steps per {@link decode} (ids per slot per {@link readOut}). */
  readonly maxSteps: number;
  /** Sets `slot`'s sampler settings and EOS ids. */
  setSampling(slot: number, sampling: ResolvedSampling, eosIds: readonly number[]): void;
  /**
   * Prefills prompt rows `ids[start, end)` (default: all of them) into
   * `slot` at positions start..end-1, the slot's cache holding ids[0, start)
   * from earlier calls (start is 0 or where the previous call ended); when
   * `end` reaches the prompt's end, samples the first id into out[slot, 0].
   */
  prefill(slot: number, ids: readonly number[], start?: number, end?: number): Promise<void>;
  /** `steps` decode steps over `rows`; slot s writes out[s, 0..steps). */
  decode(rows: readonly SlotRow[], steps: number): Promise<void>;
  /** The ids of the work so far: out [slots, maxSteps]. */
  readOut(): Promise<Uint32Array>;
  /** Releases the slots (not the model). */
  destroy(): void;
}

/** A loaded model on one backend. */
export interface InferenceModel {
  /** Which backend runs it. */
  readonly backend: BackendName;
  /** What runs it, e.g. "llvmpipe (LLVM 15.0.7, 256 bits)" or "wasm simd128, 2 threads". */
  readonly description: string;
  /** Model hyper-parameters. */
  readonly config: LlamaConfig;
  /** Context length (KV cache positions per sequence). */
  readonly maxSeq: number;
  /** Most tokens per forward pass (perplexity windows must fit). */
  readonly maxBatch: number;
  /** Bytes of weights resident. */
  readonly weightBytes: number;
  /** A new sequence for generation. */
  openSequence(): SequenceDecoder;
  /**
   * For each window (positions 0..n-1, at most maxBatch tokens), the sum
   * of the NLLs (nats) of tokens 1..n-1 given their prefix in the window.
   */
  windowNllSums(windows: readonly ArrayLike<number>[]): Promise<number[]>;
  /** `slots` KV slots for batched decoding, at most `maxSteps` steps per submit. */
  createDecodeSlots(slots: number, maxSteps: number): Promise<DecodeSlots>;
  /** Releases the model. */
  destroy(): void;
}

/**
 * Checks that a prompt of `ids` is not empty and leaves room for one new
 * token in a context of `maxSeq`; throws a RequestError with the numbers
 * otherwise.
 *
 * @example
 * ```ts
 * import { checkPromptFits } from "./inference_model.ts";
 * checkPromptFits([1, 2, 3], 4); // fine
 * // checkPromptFits([1, 2, 3], 3) throws: no room for a new token
 * ```
 */
export function checkPromptFits(ids: readonly number[], maxSeq: number): void {
  if (ids.length === 0) throw new RequestError("the prompt is empty");
  if (ids.length >= maxSeq) {
    throw new RequestError(
      `the prompt has ${ids.length} tokens; the context holds ${maxSeq} ` +
        `(at most ${maxSeq - 1} prompt tokens leave room for one new token)`,
    );
  }
}

/**
 * Checks a {@link DecodeSlots.prefill} call: the prompt fits a context of
 * `maxSeq` ({@link checkPromptFits}) and `0 <= start < end <= ids.length`
 * (integers); throws a RequestError naming what is wrong.
 *
 * @example
 * ```ts
 * import { checkPrefillRange } from "./inference_model.ts";
 * checkPrefillRange([1, 2, 3], 64, 0, 2); // fine
 * // checkPrefillRange([1, 2, 3], 64, 2, 2) throws: an empty range
 * ```
 */
export function checkPrefillRange(
  ids: readonly number[],
  maxSeq: number,
  start: number,
  end: number,
): void {
  checkPromptFits(ids, maxSeq);
  if (
    !Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start >= end ||
    end > ids.length
  ) {
    throw new RequestError(`prefill: rows [${start}, ${end}) of a ${ids.length}-token prompt`);
  }
}
