/**
 * A fast, deterministic {@link InferenceEngine} for route tests: one token
 * per character (plus BOS = 1), and it generates "w0 w1 w2 ..." one token per
 * chunk.
 *
 * @module
 */

import {
  type EngineChunk,
  type EngineInfo,
  type EngineRequest,
  type EngineResult,
  type InferenceEngine,
  QueueFullError,
} from "../../src/server/engine.ts";

/** Options of the fake. */
export interface FakeEngineOptions {
  /** Context length (default 64). */
  contextLength?: number;
  /** Loaded from the start (default true). */
  loaded?: boolean;
  /** Throw QueueFullError on generate. */
  full?: boolean;
  /** Milliseconds between chunks (default 0). */
  delayMs?: number;
  /** chat_template. */
  chatTemplate?: string;
}

/** The fake engine. */
export class FakeEngine implements InferenceEngine {
  /** Requests seen by generate(). */
  requests: EngineRequest[] = [];
  /** Results returned (including cancelled ones). */
  results: EngineResult[] = [];
  /** Prompts seen by encode(). */
  encoded: string[] = [];
  #info: EngineInfo;
  loaded: boolean;
  full: boolean;
  #delay: number;

  /** Creates the fake. */
  constructor(o: FakeEngineOptions = {}) {
    this.#info = {
      modelId: "fake-model",
      contextLength: o.contextLength ?? 64,
      slots: 1,
      chatTemplate: o.chatTemplate,
      bosToken: "<s>",
      eosToken: "</s>",
    };
    this.loaded = o.loaded ?? true;
    this.full = o.full ?? false;
    this.#delay = o.delayMs ?? 0;
  }

  get info(): EngineInfo | undefined {
    return this.loaded ? this.#info : undefined;
  }
  get queueDepth(): number {
    return 0;
  }
  get active(): number {
    return 0;
  }

  encode(text: string, bos: boolean): number[] {
    this.encoded.push(text);
    const ids = [...text].map((ch) => ch.codePointAt(0)! + 3);
    return bos ? [1, ...ids] : ids;
  }

  generate(
    request: EngineRequest,
    signal?: AbortSignal,
  ): AsyncGenerator<EngineChunk, EngineResult> {
    if (this.full) throw new QueueFullError("the server is busy", 7);
    this.requests.push(request);
    return this.#run(request, signal);
  }

  async *#run(r: EngineRequest, signal?: AbortSignal): AsyncGenerator<EngineChunk, EngineResult> {
    let text = "";
    let n = 0;
    let finish: EngineResult["finishReason"] = "length";
    let finished = false;
    try {
      for (let i = 0; i < r.maxTokens; i++) {
        if (this.#delay) await new Promise((res) => setTimeout(res, this.#delay));
        if (signal?.aborted) {
          finish = signal.reason instanceof DOMException && signal.reason.name === "TimeoutError"
            ? "timeout"
            : "cancelled";
          finished = true;
          break;
        }
        let piece = `w${i} `;
        n++;
        const stop = r.stop?.find((s) => (text + piece).includes(s));
        if (stop) {
          piece = (text + piece).slice(text.length, (text + piece).indexOf(stop));
          text += piece;
          if (piece) yield { text: piece, tokenIds: [100 + i] };
          finish = "stop";
          finished = true;
          break;
        }
        text += piece;
        yield { text: piece, tokenIds: [100 + i] };
      }
      finished = true;
    } finally {
      // Returned early by the consumer (a cancelled stream): record it as cancelled.
      if (!finished && finish === "length") {
        this.results.push({
          promptTokens: r.promptIds.length,
          completionTokens: n,
          finishReason: "cancelled",
          queueSeconds: 0,
        });
      }
    }
    const result = {
      promptTokens: r.promptIds.length,
      completionTokens: n,
      finishReason: finish,
      queueSeconds: 0,
    };
    this.results.push(result);
    return result;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
