/**
 * Batched decoding over one upload of the weights: S KV slots laid out as
 * one cache per layer [S, maxSeq, kvDim], with per-slot context, decode
 * state and sampler settings in storage buffers. A decode step is ONE
 * forward pass over B rows (one per active slot, each at its own position)
 * followed by one sampler dispatch of B workgroups, so the weights are read
 * once per step for all active sequences. Prompts are prefilled into their
 * slot's region with the same row-based pass (T rows of one slot).
 *
 * @example
 * ```ts ignore
 * const batch = await DecodeBatch.create(model, 8);
 * batch.setSampling(0, resolveSampling(), tokenizer.eosIds);
 * await batch.prefill(0, promptIds);              // samples the first id
 * const first = (await batch.readOut())[0];
 * await batch.decode([{ slot: 0, lastId: first, pos: promptIds.length }], 8);
 * const next = (await batch.readOut()).subarray(0, 8);
 * ```
 * @module
 */

import { GpuError, RequestError } from "../errors.ts";
import { BufferPool } from "../gpu/buffer_pool.ts";
import { CommandBatch, type Dispatch } from "../gpu/command_batch.ts";
import { readBuffer } from "../gpu/readback.ts";
import { packUniform } from "../gpu/uniforms.ts";
import { type ResolvedSampling, samplerUniform } from "../engine/sampling_options.ts";
import type { BatchIO, GpuLlama, LogitRows } from "./gpu_llama.ts";
import { checkPrefillRange } from "../engine/inference_model.ts";

/** Bytes of one slot's sampler settings (shaders/sample.wgsl `Params`). */
const PARAMS_BYTES = 64;
/** Bytes of one slot's decode state {pos, nTok, step, done}. */
const STATE_BYTES = 16;

/** One row of a decode step: a slot, its last id and that id's position. */
export interface DecodeRow {
  /** KV slot. */
  slot: number;
  /** The input token of the first step (the last id sampled for the slot). */
  lastId: number;
  /** Its position (the slot's context length - 1). */
  pos: number;
}

/** S KV slots decoding together on one model. */
export class DecodeBatch {
  /** The model whose weights and activation scratch the batch uses. */
  readonly model: GpuLlama;
  /** Number of KV slots. */
  readonly slots: number;
  /** Most decode steps per submit (ids per slot per readback). */
  readonly maxSteps: number;
  readonly #pool: BufferPool;
  readonly #ctx: GPUBuffer;
  readonly #states: GPUBuffer;
  readonly #params: GPUBuffer;
  readonly #out: GPUBuffer;
  readonly #work: GPUBuffer;
  readonly #decode: BatchIO;
  readonly #prefill: BatchIO;
  readonly #decodePlans = new Map<number, Promise<Dispatch[]>>();
  readonly #prefillPlans = new Map<string, Promise<Dispatch[]>>();

  private constructor(model: GpuLlama, slots: number, maxSteps: number) {
    const c = model.config;
    const kvDim = c.numKvHeads * c.headDim;
    const limit = model.gpu.limits.maxStorageBufferBindingSize;
    const slotBytes = model.maxSeq * kvDim * (model.kvDType === "f16" ? 2 : 4);
    if (slots * slotBytes > limit) {
      throw new GpuError(
        `${slots} KV slots of ${model.maxSeq} tokens do not fit one storage binding ` +
          `(${limit} bytes); at most ${Math.floor(limit / slotBytes)} fit`,
      );
    }
    if (slots > model.maxBatch) {
      throw new GpuError(`${slots} slots exceed the model's ${model.maxBatch} rows per pass`);
    }
    this.model = model;
    this.slots = slots;
    this.maxSteps = maxSteps;
    const pool = this.#pool = new BufferPool(model.gpu);
    const V = c.vocabSize;
    const cache = Array.from({ length: c.numLayers }, (_, i) => ({
      kCache: pool.acquire(slots * slotBytes, `batch.layers.${i}.k_cache`),
      vCache: pool.acquire(slots * slotBytes, `batch.layers.${i}.v_cache`),
    }));
    this.#ctx = pool.acquire(slots * model.maxSeq * 4, "batch.context");
    this.#states = pool.acquire(slots * STATE_BYTES, "batch.states");
    this.#params = pool.acquire(slots * PARAMS_BYTES, "batch.sampler_params");
    this.#out = pool.acquire(slots * maxSteps * 4, "batch.out");
    this.#work = pool.acquire(slots * V * 4, "batch.sampler_work");
    const logits = pool.acquire(slots * V * 4, "batch.logits");
    this.#decode = {
      tokens: pool.acquire(slots * 4, "batch.decode_tokens"),
      rows: pool.acquire(slots * 8, "batch.decode_rows"),
      states: this.#states,
      cache,
      logits,
    };
    this.#prefill = {
      tokens: pool.acquire(model.maxBatch * 4, "batch.prefill_tokens"),
      rows: pool.acquire(model.maxBatch * 8, "batch.prefill_rows"),
      states: this.#states,
      cache,
      logits,
    };
  }

  /** Allocates `slots` KV slots on `model`'s weights; `maxSteps` bounds steps per submit. */
  static async create(model: GpuLlama, slots: number, maxSteps = 64): Promise<DecodeBatch> {
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RequestError(`slots must be a positive integer (got ${slots})`);
    }
    const batch = new DecodeBatch(model, slots, maxSteps);
    await batch.#decodePlan(1); // compile the batched pipelines up front
    return batch;
  }

  /** Sets `slot`'s sampler settings and EOS ids (for its next prefill and decode steps). */
  setSampling(slot: number, sampling: ResolvedSampling, eosIds: readonly number[]): void {
    const m = this.model;
    const bytes = packUniform(samplerUniform(sampling, m.config.vocabSize, m.maxSeq, eosIds));
    m.gpu.device.queue.writeBuffer(this.#params, slot * PARAMS_BYTES, bytes);
  }

  #decodePlan(B: number): Promise<Dispatch[]> {
    let plan = this.#decodePlans.get(B);
    if (!plan) {
      const io = this.#decode;
      plan = (async () => [
        ...await this.model.forwardRows(B, "all", io),
        await this.model.kernels.sampleBatched(
          io.logits,
          this.#work,
          this.#ctx,
          io.tokens,
          this.#states,
          this.#out,
          this.#params,
          io.rows,
          B,
          this.maxSteps,
        ),
      ])();
      this.#decodePlans.set(B, plan);
    }
    return plan;
  }

  #prefillPlan(T: number, rows: LogitRows): Promise<Dispatch[]> {
    const key = `${T}/${rows}`;
    let plan = this.#prefillPlans.get(key);
    if (!plan) {
      const io = this.#prefill;
      plan = (async () => {
        const pass = await this.model.forwardRows(T, rows, io);
        if (rows === "none") return pass;
        const sample = await this.model.kernels.sampleBatched(
          io.logits,
          this.#work,
          this.#ctx,
          io.tokens,
          this.#states,
          this.#out,
          this.#params,
          io.rows,
          1,
          this.maxSteps,
        );
        return [...pass, sample];
      })();
      this.#prefillPlans.set(key, plan);
    }
    return plan;
  }

  /**
   * Submits the prefill of `ids` into `slot` (positions 0..) in chunks of the
   * model's maxBatch; the last chunk samples the first new id into
   * out[slot, 0] (read it with {@link readOut}).
   */
  async prefill(slot: number, ids: readonly number[], start = 0, end = ids.length): Promise<void> {
    const m = this.model;
    checkPrefillRange(ids, m.maxSeq, start, end);
    const q = m.gpu.device.queue;
    if (start === 0) q.writeBuffer(this.#ctx, slot * m.maxSeq * 4, Uint32Array.from(ids));
    for (let at = start; at < end; at += m.maxBatch) {
      const chunk = ids.slice(at, Math.min(end, at + m.maxBatch));
      const last = at + chunk.length === ids.length;
      const plan = await this.#prefillPlan(chunk.length, last ? "last" : "none");
      const rows = new Uint32Array(chunk.length * 2);
      for (let t = 0; t < chunk.length; t++) rows.set([slot, t], t * 2);
      q.writeBuffer(this.#prefill.tokens, 0, Uint32Array.from(chunk));
      q.writeBuffer(this.#prefill.rows, 0, rows);
      q.writeBuffer(this.#states, slot * STATE_BYTES, new Uint32Array([at, chunk.length, 0, 0]));
      new CommandBatch(m.gpu).runAll(plan).submit();
    }
  }

  /**
   * Submits `steps` batched decode steps over `rows` (one per slot): each
   * step is one forward pass over all rows and one sampler dispatch; slot s
   * writes its ids to out[s, 0..steps).
   */
  async decode(rows: readonly DecodeRow[], steps: number): Promise<void> {
    const B = rows.length;
    if (B < 1 || B > this.slots) throw new RequestError(`decode: ${B} rows (1..${this.slots})`);
    if (steps < 1 || steps > this.maxSteps) {
      throw new RequestError(`decode: ${steps} steps (1..${this.maxSteps})`);
    }
    const m = this.model;
    const q = m.gpu.device.queue;
    const plan = await this.#decodePlan(B);
    q.writeBuffer(this.#decode.tokens, 0, Uint32Array.from(rows.map((r) => r.lastId)));
    q.writeBuffer(this.#decode.rows, 0, Uint32Array.from(rows.flatMap((r) => [r.slot, 0])));
    for (const r of rows) {
      q.writeBuffer(this.#states, r.slot * STATE_BYTES, new Uint32Array([r.pos, 1, 0, 0]));
    }
    const batch = new CommandBatch(m.gpu);
    for (let i = 0; i < steps; i++) batch.runAll(plan);
    batch.submit();
  }

  /** Waits for the submitted work and returns out [slots, maxSteps] (u32 ids). */
  async readOut(): Promise<Uint32Array> {
    const bytes = this.slots * this.maxSteps * 4;
    return new Uint32Array(await readBuffer(this.model.gpu, this.#out, 0, bytes));
  }

  /** Releases the batch's buffers (not the model). */
  destroy(): void {
    this.#pool.destroy();
  }
}
