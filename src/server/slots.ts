/**
 * Several sequences on one model, decoding concurrently: {@link SlotRunner}
 * owns N KV slots (GpuLlama sequences sharing one upload of the weights, each
 * with its own Generator). Each running request loops "submit N decode steps,
 * await their readback, hand the text on"; while one slot waits on its
 * readback the others submit, and the device queue runs submits in order, so
 * active slots take turns of `tokensPerTurn` tokens round-robin and none
 * starves. Each step is still a one-token pass per sequence; the server's
 * engine Worker uses the batched `BatchRunner` (batch_runner.ts)
 * instead, which decodes all slots with one forward pass per step.
 *
 * @example
 * ```ts ignore
 * const runner = await SlotRunner.create(model, tokenizer, 4);
 * const r = await runner.run(1, ids, { maxTokens: 20 }, (c) => console.log(c.text));
 * ```
 * @module
 */

import { type GenerateOptions, Generator } from "../engine/generator.ts";
import type { GpuLlama } from "../model/gpu_llama.ts";
import type { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import type { EngineChunk, EngineFinishReason } from "./engine.ts";

/** One slot: a sequence and its generator. */
interface Slot {
  seq: GpuLlama;
  generator: Generator;
  busy: boolean;
}

/** The totals of a slot's generation. */
export interface SlotResult {
  /** Prompt tokens. */
  promptTokens: number;
  /** Generated tokens. */
  completionTokens: number;
  /** Why it ended. */
  finishReason: EngineFinishReason;
}

/** N KV slots over one model. */
export class SlotRunner {
  readonly #slots: Slot[];
  readonly #model: GpuLlama;
  readonly #running = new Map<number, AbortController>();
  /** Decode steps per submit / readback of one slot. */
  tokensPerTurn: number;

  private constructor(model: GpuLlama, slots: Slot[], tokensPerTurn: number) {
    this.#model = model;
    this.#slots = slots;
    this.tokensPerTurn = tokensPerTurn;
  }

  /** Creates `n` slots: `model` itself and n - 1 sequences sharing its weights. */
  static async create(
    model: GpuLlama,
    tokenizer: HfTokenizer,
    n: number,
    tokensPerTurn = 8,
  ): Promise<SlotRunner> {
    const seqs = [model];
    for (let i = 1; i < n; i++) seqs.push(await model.createSequence());
    const slots = seqs.map((seq) => ({
      seq,
      generator: new Generator(seq, tokenizer),
      busy: false,
    }));
    return new SlotRunner(model, slots, tokensPerTurn);
  }

  /** How many slots there are. */
  get size(): number {
    return this.#slots.length;
  }

  /** How many slots are generating. */
  get busy(): number {
    return this.#slots.filter((s) => s.busy).length;
  }

  /**
   * Generates in a free slot (the caller keeps at most `size` running),
   * calling `onChunk` per readback. Ends early when cancelled via {@link cancel}.
   */
  async run(
    id: number,
    promptIds: number[],
    options: GenerateOptions,
    onChunk: (chunk: EngineChunk) => void,
  ): Promise<SlotResult> {
    const slot = this.#slots.find((s) => !s.busy);
    if (!slot) throw new Error("no free slot");
    slot.busy = true;
    const ac = new AbortController();
    this.#running.set(id, ac);
    try {
      const it = slot.generator.generateFromIds(promptIds, {
        ...options,
        tokensPerReadback: this.tokensPerTurn,
        signal: ac.signal,
      });
      let r = await it.next();
      while (!r.done) {
        if (!ac.signal.aborted) onChunk(r.value);
        r = await it.next();
      }
      const cancelled = ac.signal.aborted;
      return {
        promptTokens: r.value.promptTokens,
        completionTokens: r.value.tokenIds.length,
        finishReason: cancelled
          ? (ac.signal.reason === "timeout" ? "timeout" : "cancelled")
          : r.value.finishReason,
      };
    } finally {
      this.#running.delete(id);
      slot.busy = false;
    }
  }

  /** Stops request `id` at its next readback. */
  cancel(id: number, reason: "cancelled" | "timeout" = "cancelled"): void {
    this.#running.get(id)?.abort(reason);
  }

  /** Stops every running request. */
  cancelAll(): void {
    for (const ac of this.#running.values()) ac.abort("cancelled");
  }

  /** Releases the slots' generators and sequences (not the owning model). */
  destroy(): void {
    for (const s of this.#slots) {
      s.generator.destroy();
      if (s.seq !== this.#model) s.seq.destroy();
    }
  }
}
