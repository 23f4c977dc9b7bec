/**
 * The real {@link InferenceEngine}: the model runs in a Worker
 * (engine_worker.ts); this main-thread proxy tokenizes, keeps the bounded
 * queue, hands requests to free KV slots, forwards cancellation (client gone,
 * timeout) and streams the worker's chunks back.
 *
 * @example
 * ```ts ignore
 * const engine = WorkerEngine.start({ model: "stories260K.bin", slots: 4 });
 * await engine.ready;
 * ```
 * @module
 */

import { basename } from "node:path";
import { RequestError } from "../errors.ts";
import { loadTokenizer } from "../tokenizer/load_tokenizer.ts";
import type { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import {
  type EngineChunk,
  type EngineInfo,
  type EngineRequest,
  type EngineResult,
  EngineUnavailableError,
  type InferenceEngine,
  QueueFullError,
} from "./engine.ts";
import type { SlotResult } from "./slots.ts";
import type { FromWorker, ToWorker } from "./worker_protocol.ts";

/** Options of {@link WorkerEngine.start}. */
export interface WorkerEngineOptions {
  /** HF directory or llama2.c .bin. */
  model: string;
  /** Tokenizer override. */
  tokenizer?: string;
  /** Model id in the API (default: the file or directory name). */
  modelId?: string;
  /** KV cache length per slot (default: the model's, at most 2048). */
  context?: number;
  /** Weight storage. */
  dtype?: "f32" | "f16" | "int4" | "auto";
  /** Sequences decoding at once (default 4). */
  slots?: number;
  /** Requests allowed to wait for a slot (default 64); more are refused with 429. */
  maxQueue?: number;
  /** Decode steps per slot turn (default 8). */
  tokensPerTurn?: number;
  /** Backend: "webgpu", "wasm" or "auto" (default). */
  backend?: "webgpu" | "wasm" | "auto";
  /** wasm: worker threads (default: the number of CPUs). */
  threads?: number;
  /** wasm: int4 matmul activations, "int8" (default) or "f32" (exact). */
  activations?: "int8" | "f32";
  /** wasm: "wasm" kernels (default) or "typescript". */
  kernels?: "wasm" | "typescript";
}

interface Job {
  id: number;
  request: EngineRequest;
  chunks: EngineChunk[];
  wake?: () => void;
  result?: SlotResult;
  error?: Error;
  queuedAt: number;
  startedAt?: number;
  running: boolean;
  finished: boolean;
}

function tokenText(x: unknown): string {
  if (typeof x === "string") return x;
  if (x && typeof x === "object" && typeof (x as { content?: unknown }).content === "string") {
    return (x as { content: string }).content;
  }
  return "";
}

/** The model in a Worker, behind a bounded queue. */
export class WorkerEngine implements InferenceEngine {
  /** Resolves when the model is loaded; rejects when loading fails. */
  readonly ready: Promise<void>;
  #info?: EngineInfo;
  #tokenizer?: HfTokenizer;
  #worker: Worker;
  #jobs = new Map<number, Job>();
  #queue: Job[] = [];
  #active = 0;
  #nextId = 1;
  #slots = 0;
  #maxQueue: number;
  #avgSeconds = 1;
  #failure?: string;
  #closed?: () => void;

  private constructor(options: WorkerEngineOptions) {
    this.#maxQueue = options.maxQueue ?? 64;
    const slots = options.slots ?? 4;
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RequestError(`--slots must be an integer >= 1 (got ${slots})`);
    }
    if (!Number.isInteger(this.#maxQueue) || this.#maxQueue < 0) {
      throw new RequestError(`--max-queue must be an integer >= 0 (got ${this.#maxQueue})`);
    }
    this.#worker = new Worker(new URL("./engine_worker.ts", import.meta.url).href, {
      type: "module",
    });
    let loaded!: (m: Extract<FromWorker, { type: "ready" }>) => void;
    let failed!: (e: Error) => void;
    const workerReady = new Promise<Extract<FromWorker, { type: "ready" }>>((res, rej) => {
      loaded = res;
      failed = rej;
    });
    this.#worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.type === "ready") loaded(m);
      else if (m.type === "fatal") {
        this.#fail(m.message);
        failed(new EngineUnavailableError(m.message));
      } else if (m.type === "closed") this.#closed?.();
      else this.#onJobMessage(m);
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#fail(e.message);
      failed(new EngineUnavailableError(e.message));
    };
    this.#post({
      type: "load",
      options: {
        model: options.model,
        tokenizer: options.tokenizer,
        context: options.context,
        dtype: options.dtype,
        slots,
        tokensPerTurn: options.tokensPerTurn ?? 8,
        backend: options.backend,
        threads: options.threads,
        activations: options.activations,
        kernels: options.kernels,
      },
    });
    const modelId = options.modelId ?? basename(options.model.replace(/\/+$/, ""));
    this.ready = (async () => {
      const [tokenizer, r] = await Promise.all([
        loadTokenizer(options.model, options.tokenizer),
        workerReady,
      ]);
      const cfg = tokenizer.tokenizerConfig;
      this.#tokenizer = tokenizer;
      this.#slots = r.slots;
      this.#info = {
        modelId,
        contextLength: r.contextLength,
        slots: r.slots,
        backend: r.backend,
        backendReason: r.reason,
        device: r.adapter + r.notes.map((n) => `; ${n}`).join(""),
        chatTemplate: typeof cfg.chat_template === "string" ? cfg.chat_template : undefined,
        bosToken: tokenText(cfg.bos_token) ||
          (tokenizer.bosId >= 0 ? tokenizer.idToToken(tokenizer.bosId) ?? "" : ""),
        eosToken: tokenText(cfg.eos_token) ||
          (tokenizer.eosIds.length ? tokenizer.idToToken(tokenizer.eosIds[0]) ?? "" : ""),
      };
    })();
    this.ready.catch(() => {}); // observed by whoever awaits it; do not crash the process
  }

  /** Spawns the worker and starts loading; await {@link ready}. */
  static start(options: WorkerEngineOptions): WorkerEngine {
    return new WorkerEngine(options);
  }

  /** Model facts, once loaded. */
  get info(): EngineInfo | undefined {
    return this.#failure ? undefined : this.#info;
  }

  /** Requests waiting for a slot. */
  get queueDepth(): number {
    return this.#queue.length;
  }

  /** Requests generating. */
  get active(): number {
    return this.#active;
  }

  /** Encodes with the model's tokenizer. */
  encode(text: string, bos: boolean): number[] {
    if (!this.#tokenizer) throw new EngineUnavailableError("the model is still loading");
    return this.#tokenizer.encode(text, { bos });
  }

  /** Queues a generation (throws QueueFullError / EngineUnavailableError at once). */
  generate(
    request: EngineRequest,
    signal?: AbortSignal,
  ): AsyncGenerator<EngineChunk, EngineResult> {
    if (!this.info) {
      throw new EngineUnavailableError(this.#failure ?? "the model is still loading");
    }
    if (this.#active >= this.#slots && this.#queue.length >= this.#maxQueue) {
      const wait = Math.max(
        1,
        Math.ceil(this.#avgSeconds * (this.#queue.length + 1) / this.#slots),
      );
      throw new QueueFullError(
        `the server is busy: ${this.#queue.length} requests are queued (limit ${this.#maxQueue})`,
        wait,
      );
    }
    const job: Job = {
      id: this.#nextId++,
      request,
      chunks: [],
      queuedAt: performance.now(),
      running: false,
      finished: false,
    };
    this.#jobs.set(job.id, job);
    this.#queue.push(job);
    this.#pump();
    return this.#stream(job, signal);
  }

  async *#stream(job: Job, signal?: AbortSignal): AsyncGenerator<EngineChunk, EngineResult> {
    const onAbort = () => this.#cancel(job, signal?.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      while (true) {
        if (job.chunks.length) {
          const text = job.chunks.map((c) => c.text).join("");
          const tokenIds = job.chunks.flatMap((c) => c.tokenIds);
          job.chunks = [];
          yield { text, tokenIds };
          continue;
        }
        if (job.finished) break;
        await new Promise<void>((res) => job.wake = res);
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      // The consumer stopped early (returned / threw): cancel the generation.
      if (!job.finished) this.#cancel(job, undefined);
    }
    if (job.error) throw job.error;
    const r = job.result!;
    return {
      promptTokens: r.promptTokens,
      completionTokens: r.completionTokens,
      finishReason: r.finishReason,
      queueSeconds: ((job.startedAt ?? performance.now()) - job.queuedAt) / 1000,
    };
  }

  #cancel(job: Job, reason: unknown): void {
    if (job.finished) return;
    const why = reason instanceof DOMException && reason.name === "TimeoutError"
      ? "timeout"
      : "cancelled";
    if (!job.running) {
      this.#queue = this.#queue.filter((j) => j !== job);
      this.#finish(job, {
        promptTokens: job.request.promptIds.length,
        completionTokens: 0,
        finishReason: why,
      });
    } else this.#post({ type: "cancel", id: job.id, reason: why });
  }

  #pump(): void {
    while (this.#active < this.#slots && this.#queue.length) {
      const job = this.#queue.shift()!;
      job.running = true;
      job.startedAt = performance.now();
      this.#active++;
      const { promptIds, ...request } = job.request;
      this.#post({ type: "generate", id: job.id, request, promptIds });
    }
  }

  #onJobMessage(m: Extract<FromWorker, { id: number }>): void {
    const job = this.#jobs.get(m.id);
    if (!job) return;
    if (m.type === "chunk") {
      job.chunks.push({ text: m.text, tokenIds: m.tokenIds });
      job.wake?.();
      return;
    }
    this.#active--;
    const seconds = (performance.now() - (job.startedAt ?? job.queuedAt)) / 1000;
    this.#avgSeconds = 0.8 * this.#avgSeconds + 0.2 * seconds;
    if (m.type === "done") this.#finish(job, m.result);
    else {
      this.#finish(
        job,
        undefined,
        m.requestError ? new RequestError(m.message) : new Error(m.message),
      );
    }
    this.#pump();
  }

  #finish(job: Job, result?: SlotResult, error?: Error): void {
    job.finished = true;
    job.result = result;
    job.error = error;
    this.#jobs.delete(job.id);
    job.wake?.();
  }

  #fail(message: string): void {
    this.#failure = message;
    for (const job of this.#jobs.values()) {
      this.#finish(job, undefined, new EngineUnavailableError(message));
    }
    this.#queue = [];
    this.#active = 0;
  }

  #post(m: ToWorker): void {
    this.#worker.postMessage(m);
  }

  /** Cancels everything, releases the GPU in the worker and stops it. */
  async close(): Promise<void> {
    for (const job of [...this.#jobs.values()]) this.#cancel(job, undefined);
    const closed = new Promise<void>((res) => this.#closed = res);
    this.#post({ type: "close" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([closed, new Promise((res) => timer = setTimeout(res, 2000))]);
    clearTimeout(timer);
    this.#fail("the server is shutting down");
    this.#worker.terminate();
    // terminate() returns before the Worker's thread has torn down its GPU
    // device; a process that exits in that window can crash in the driver's
    // teardown (seen with Mesa's lavapipe: SIGSEGV after a clean shutdown).
    await new Promise((res) => setTimeout(res, 250));
  }
}
