/**
 * The CPU backend behind {@link InferenceModel}: a {@link CpuLlama} whose
 * sequences sample with its kernels (`CpuKernels.sample`: the GPU sampler's
 * semantics, src/engine/host_sampler.ts being the reference), whose
 * perplexity sums NLLs of each window's logits in f64, and whose decode slots
 * run one forward pass per step over every active slot (weights read once per
 * step for all of them).
 *
 * @example
 * ```ts ignore
 * const model = await CpuInferenceModel.load(weights, { maxSeq: 256, threads: 2 });
 * const seq = model.openSequence();
 * console.log(await seq.prefill([1, 403, 407], resolveSampling(), [2]));
 * model.destroy();
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import {
  checkPrefillRange,
  type DecodeSlots,
  type InferenceModel,
  NO_TOKEN,
  type SequenceDecoder,
  type SlotRow,
} from "../engine/inference_model.ts";
import { type ResolvedSampling, resolveSampling } from "../engine/sampling_options.ts";
import type { LlamaWeights } from "../model/weights.ts";
import type { CpuKernels } from "./cpu_kernels.ts";
import { CpuLlama, type CpuLlamaOptions, type KvCache } from "./cpu_llama.ts";
import { type CpuKernelOptions, openCpuKernels } from "./open_cpu_kernels.ts";

/** Options of {@link CpuInferenceModel.load}. */
export interface CpuInferenceModelOptions extends CpuKernelOptions, CpuLlamaOptions {}

/** A CpuLlama as an {@link InferenceModel}. */
export class CpuInferenceModel implements InferenceModel {
  /** Always "wasm". */
  readonly backend = "wasm" as const;
  /** The model. */
  readonly cpuModel: CpuLlama;
  /** Fallbacks taken while creating the kernels. */
  readonly notes: string[];
  #evalCache?: KvCache;

  /** Wraps `model` (destroy() destroys it). */
  constructor(model: CpuLlama, notes: string[] = []) {
    this.cpuModel = model;
    this.notes = notes;
  }

  /** Creates the kernels and places `weights` in their memory. */
  static async load(
    weights: LlamaWeights,
    options: CpuInferenceModelOptions = {},
  ): Promise<CpuInferenceModel> {
    CpuLlama.plan(weights, options); // a context that does not fit fails before the kernels start
    const { kernels, notes } = await openCpuKernels(options);
    try {
      return new CpuInferenceModel(CpuLlama.create(kernels, weights, options), notes);
    } catch (e) {
      kernels.destroy();
      throw e;
    }
  }

  /** The kernels, e.g. "wasm simd128, 2 threads, int8 activations". */
  get description(): string {
    const k: CpuKernels = this.cpuModel.kernels;
    const acts = k.description.includes(k.activations) ? "" : `, ${k.activations} activations`;
    return `${k.description}${acts}`;
  }

  /** Model hyper-parameters. */
  get config(): CpuLlama["config"] {
    return this.cpuModel.config;
  }

  /** KV cache length per sequence. */
  get maxSeq(): number {
    return this.cpuModel.maxSeq;
  }

  /** Most tokens per pass. */
  get maxBatch(): number {
    return this.cpuModel.maxBatch;
  }

  /** Bytes of weights in memory. */
  get weightBytes(): number {
    return this.cpuModel.weightBytes;
  }

  /** A sequence with its own KV cache from the model's pool. */
  openSequence(): SequenceDecoder {
    return new CpuSequence(this.cpuModel);
  }

  /** One pass per window from position 0; NLLs from its logits, in f64. */
  windowNllSums(windows: readonly ArrayLike<number>[]): Promise<number[]> {
    const m = this.cpuModel;
    const cache = this.#evalCache ??= m.acquireCache();
    const V = m.config.vocabSize;
    return Promise.resolve(windows.map((w) => {
      const ids = Array.from(w);
      if (ids.length > m.maxBatch) {
        throw new RequestError(`perplexity window of ${ids.length} tokens exceeds ${m.maxBatch}`);
      }
      const logits = m.forward(ids, 0, cache, "all");
      let sum = 0;
      for (let t = 0; t + 1 < ids.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        let mx = -Infinity;
        for (let i = 0; i < V; i++) if (row[i] > mx) mx = row[i];
        let s = 0;
        for (let i = 0; i < V; i++) s += Math.exp(row[i] - mx);
        sum += Math.log(s) + mx - row[ids[t + 1]];
      }
      return sum;
    }));
  }

  /** `slots` KV slots on the model's weights. */
  createDecodeSlots(slots: number, maxSteps: number): Promise<DecodeSlots> {
    return Promise.resolve(new CpuDecodeSlots(this.cpuModel, slots, maxSteps));
  }

  /** Stops the kernels and releases the memory. */
  destroy(): void {
    this.cpuModel.destroy();
  }
}

/** A sequence's decode state: its tokens so far, sampler settings and whether it ended. */
class SequenceState {
  readonly cache: KvCache;
  ctx: number[] = [];
  sampling: ResolvedSampling = resolveSampling();
  eos = new Set<number>();
  done = false;

  constructor(cache: KvCache) {
    this.cache = cache;
  }

  /**
   * Takes the sampled `id` like shaders/sample.wgsl: appended (the next
   * input) while the context has room; EOS or a full context ends the sequence.
   */
  accept(id: number, maxSeq: number): void {
    const end = this.ctx.length;
    if (end < maxSeq) this.ctx.push(id);
    if (this.eos.has(id) || end + 1 > maxSeq) this.done = true;
  }
}

/**
 * Prefills prompt rows `ids[start, end)` into `s` in chunks of maxBatch
 * (`s` holding ids[0, start) already); returns the last row's logits when
 * `end` is the prompt's end, else an empty array.
 */
function prefillInto(
  m: CpuLlama,
  s: SequenceState,
  ids: readonly number[],
  start = 0,
  end = ids.length,
): Float32Array {
  checkPrefillRange(ids, m.maxSeq, start, end);
  if (start === 0) {
    s.ctx = [...ids];
    s.done = false;
  }
  let logits = new Float32Array(0);
  for (let at = start; at < end; at += m.maxBatch) {
    const chunk = ids.slice(at, Math.min(end, at + m.maxBatch));
    const last = at + chunk.length === ids.length;
    logits = m.forward(chunk, at, s.cache, last ? "last" : "none");
  }
  return logits;
}

class CpuSequence implements SequenceDecoder {
  readonly waitSeconds = 0;
  readonly #model: CpuLlama;
  readonly #state: SequenceState;

  constructor(model: CpuLlama) {
    this.#model = model;
    this.#state = new SequenceState(model.acquireCache());
  }

  prefill(
    promptIds: readonly number[],
    sampling: ResolvedSampling,
    eosIds: readonly number[],
  ): Promise<number> {
    const s = this.#state;
    s.sampling = sampling;
    s.eos = new Set(eosIds);
    const logits = prefillInto(this.#model, s, promptIds);
    const id = this.#model.kernels.sample(logits, s.ctx, sampling);
    s.accept(id, this.#model.maxSeq);
    return Promise.resolve(id);
  }

  decode(steps: number): Promise<Uint32Array> {
    const m = this.#model;
    const s = this.#state;
    const out = new Uint32Array(Math.max(1, steps)).fill(NO_TOKEN);
    for (let i = 0; i < out.length && !s.done; i++) {
      const pos = s.ctx.length - 1;
      const logits = m.forward([s.ctx[pos]], pos, s.cache, "last");
      out[i] = m.kernels.sample(logits, s.ctx, s.sampling);
      s.accept(out[i], m.maxSeq);
    }
    return Promise.resolve(out);
  }

  destroy(): void {
    this.#model.releaseCache(this.#state.cache);
  }
}

/** S sequences decoded together: one forwardRows pass per step over the unfinished ones. */
class CpuDecodeSlots implements DecodeSlots {
  readonly model: CpuLlama;
  readonly slots: number;
  readonly maxSteps: number;
  readonly #states: SequenceState[];
  readonly #out: Uint32Array;

  constructor(model: CpuLlama, slots: number, maxSteps: number) {
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RequestError(`slots must be a positive integer (got ${slots})`);
    }
    if (slots > model.maxBatch) {
      throw new RequestError(`${slots} slots exceed the model's ${model.maxBatch} rows per pass`);
    }
    this.model = model;
    this.slots = slots;
    this.maxSteps = maxSteps;
    const caches: KvCache[] = [];
    try {
      for (let i = 0; i < slots; i++) caches.push(model.acquireCache());
    } catch (e) {
      for (const c of caches) model.releaseCache(c);
      throw e;
    }
    this.#states = caches.map((c) => new SequenceState(c));
    this.#out = new Uint32Array(slots * maxSteps).fill(NO_TOKEN);
  }

  setSampling(slot: number, sampling: ResolvedSampling, eosIds: readonly number[]): void {
    this.#states[slot].sampling = sampling;
    this.#states[slot].eos = new Set(eosIds);
  }

  prefill(slot: number, ids: readonly number[], start = 0, end = ids.length): Promise<void> {
    const s = this.#states[slot];
    const logits = prefillInto(this.model, s, ids, start, end);
    if (end < ids.length) return Promise.resolve();
    const id = this.model.kernels.sample(logits, s.ctx, s.sampling);
    this.#out[slot * this.maxSteps] = id;
    s.accept(id, this.model.maxSeq);
    return Promise.resolve();
  }

  decode(rows: readonly SlotRow[], steps: number): Promise<void> {
    const B = rows.length;
    if (B < 1 || B > this.slots) throw new RequestError(`decode: ${B} rows (1..${this.slots})`);
    if (steps < 1 || steps > this.maxSteps) {
      throw new RequestError(`decode: ${steps} steps (1..${this.maxSteps})`);
    }
    const m = this.model;
    for (const r of rows) {
      const s = this.#states[r.slot];
      s.ctx.length = r.pos + 1;
      s.ctx[r.pos] = r.lastId;
      s.done = false;
    }
    for (let i = 0; i < steps; i++) {
      const live = rows.filter((r) => !this.#states[r.slot].done);
      for (const r of rows) {
        if (this.#states[r.slot].done) this.#out[r.slot * this.maxSteps + i] = NO_TOKEN;
      }
      if (!live.length) continue;
      const V = m.config.vocabSize;
      const logits = m.forwardRows(live.map((r) => {
        const s = this.#states[r.slot];
        return { token: s.ctx[s.ctx.length - 1], pos: s.ctx.length - 1, cache: s.cache };
      }));
      live.forEach((r, b) => {
        const s = this.#states[r.slot];
        const id = m.kernels.sample(logits.subarray(b * V, (b + 1) * V), s.ctx, s.sampling);
        this.#out[r.slot * this.maxSteps + i] = id;
        s.accept(id, m.maxSeq);
      });
    }
    return Promise.resolve();
  }

  readOut(): Promise<Uint32Array> {
    return Promise.resolve(this.#out.slice());
  }

  destroy(): void {
    for (const s of this.#states) this.model.releaseCache(s.cache);
  }
}
