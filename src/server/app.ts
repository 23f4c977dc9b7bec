/**
 * The OpenAI-compatible HTTP API as a Hono app: GET /v1/models,
 * POST /v1/completions, POST /v1/chat/completions (JSON or SSE), GET /health,
 * GET /metrics and the chat page at /. Middleware: metrics, optional CORS,
 * bearer API key (constant-time compare), body size limit. Routes parse,
 * call the {@link InferenceEngine} and shape the reply.
 *
 * @example
 * ```ts ignore
 * const app = createApp(engine, { apiKey: Deno.env.get("AWQ_EDGE_API_KEY") });
 * Deno.serve({ hostname: "127.0.0.1", port: 8080 }, app.fetch);
 * ```
 * @module
 */

import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { RequestError } from "../errors.ts";
import { renderChat } from "./chat_template.ts";
import {
  type EngineFinishReason,
  type EngineInfo,
  EngineUnavailableError,
  type InferenceEngine,
  QueueFullError,
} from "./engine.ts";
import { ServerMetrics } from "./metrics.ts";
import type {
  ChatCompletionChunk,
  ChatCompletionResponse,
  CompletionResponse,
  FinishReason,
  ModelList,
  Usage,
} from "./openai_types.ts";
import { CHAT_PAGE } from "./page.ts";
import {
  ApiError,
  badParam,
  type CheckedParams,
  parseChatRequest,
  parseCompletionRequest,
} from "./validation.ts";

/** Options of {@link createApp}. */
export interface AppOptions {
  /** Required bearer token for /v1/* and /metrics (none: no auth). */
  apiKey?: string;
  /** Allow cross-origin requests: true for any origin, or a list of origins (default off). */
  cors?: boolean | string[];
  /** Largest request body in bytes (default 1 MiB); larger is 413. */
  maxBodyBytes?: number;
  /** Per-request time limit in ms (default 300000). */
  requestTimeoutMs?: number;
  /** Metrics sink (default: a new one). */
  metrics?: ServerMetrics;
}

type Env = { Variables: { start: number; signal: AbortSignal } };

const ROUTES = new Set([
  "/",
  "/health",
  "/metrics",
  "/v1/models",
  "/v1/completions",
  "/v1/chat/completions",
]);

function errorResponse(c: Context, e: ApiError): Response {
  return c.json(e.body, e.status as 400, e.headers);
}

/** Compares two strings in time that depends only on their hashes' length. */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(a)),
    crypto.subtle.digest("SHA-256", enc.encode(b)),
  ]);
  const x = new Uint8Array(ha);
  const y = new Uint8Array(hb);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function mapFinish(r: EngineFinishReason): FinishReason {
  return r === "stop" ? "stop" : "length";
}

/** Builds the app over `engine`. */
export function createApp(engine: InferenceEngine, options: AppOptions = {}): Hono<Env> {
  const app = new Hono<Env>();
  const metrics = options.metrics ?? new ServerMetrics();
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  const timeoutMs = options.requestTimeoutMs ?? 300_000;

  app.use("*", async (c, next) => {
    c.set("start", performance.now());
    c.set("signal", c.req.raw.signal);
    await next();
    const route = ROUTES.has(c.req.path) ? c.req.path : "other";
    metrics.request(route, c.res.status);
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err);
    console.error("server error:", err);
    return errorResponse(c, new ApiError(500, "internal server error", { type: "server_error" }));
  });
  app.notFound((c) =>
    errorResponse(
      c,
      new ApiError(404, `no route ${c.req.method} ${c.req.path}`, { code: "not_found" }),
    )
  );

  if (options.cors) {
    app.use("*", cors({ origin: options.cors === true ? "*" : options.cors }));
  }

  if (options.apiKey) {
    const key = options.apiKey;
    const guard = async (c: Context, next: () => Promise<void>) => {
      const header = c.req.header("authorization") ?? "";
      const m = /^Bearer\s+(.+)$/i.exec(header);
      if (!m || !(await constantTimeEqual(m[1].trim(), key))) {
        throw new ApiError(401, "invalid or missing API key (Authorization: Bearer ...)", {
          type: "authentication_error",
          code: "invalid_api_key",
          headers: { "WWW-Authenticate": "Bearer" },
        });
      }
      await next();
    };
    app.use("/v1/*", guard);
    app.use("/metrics", guard);
  }

  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: maxBody,
      onError: (c) =>
        errorResponse(
          c,
          new ApiError(413, `the request body exceeds ${maxBody} bytes`, {
            code: "request_too_large",
          }),
        ),
    }),
  );

  app.get("/", (c) => c.html(CHAT_PAGE));

  app.get(
    "/health",
    (c) =>
      engine.info
        ? c.json({
          status: "ok",
          model: engine.info.modelId,
          ...(engine.info.backend ? { backend: engine.info.backend } : {}),
        })
        : c.json({ status: "loading" }, 503),
  );

  app.get("/metrics", (c) =>
    c.text(metrics.render(engine), 200, {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
    }));

  app.get("/v1/models", (c) => {
    const info = requireInfo();
    const list: ModelList = {
      object: "list",
      data: [{ id: info.modelId, object: "model", created: 0, owned_by: "awq-edge" }],
    };
    return c.json(list);
  });

  function requireInfo(): EngineInfo {
    const info = engine.info;
    if (!info) {
      throw new ApiError(503, "the model is not loaded yet", {
        type: "server_error",
        code: "model_loading",
        headers: { "Retry-After": "5" },
      });
    }
    return info;
  }

  async function readJson(c: Context): Promise<unknown> {
    const text = await c.req.text();
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, {
        code: "invalid_json",
      });
    }
  }

  function checkModel(info: EngineInfo, model: string): void {
    if (model !== info.modelId) {
      throw new ApiError(
        404,
        `the model "${model}" does not exist; this server has "${info.modelId}"`,
        {
          param: "model",
          code: "model_not_found",
        },
      );
    }
  }

  /** Tokenizes, checks the context budget, runs the generation, shapes the reply. */
  function serve(
    c: Context<Env>,
    info: EngineInfo,
    req: CheckedParams,
    text: string,
    addBos: boolean,
    kind: "chat" | "completion",
  ): Response | Promise<Response> {
    const promptParam = kind === "chat" ? "messages" : "prompt";
    const ids = engine.encode(text, addBos);
    const ctx = info.contextLength;
    if (ids.length >= ctx) {
      throw badParam(
        promptParam,
        `the prompt has ${ids.length} tokens but the context holds ${ctx} tokens ` +
          `(at most ${ctx - 1} prompt tokens leave room for one new token)`,
        "context_length_exceeded",
      );
    }
    const room = ctx - ids.length;
    const maxTokens = req.maxTokens ?? (kind === "chat" ? room : Math.min(16, room));
    if (ids.length + maxTokens > ctx) {
      throw badParam(
        "max_tokens",
        `the prompt (${ids.length} tokens) plus max_tokens (${maxTokens}) is ` +
          `${ids.length + maxTokens} tokens, over the context of ${ctx} tokens`,
        "context_length_exceeded",
      );
    }
    const streamAbort = new AbortController();
    const signal = AbortSignal.any([
      c.get("signal"),
      streamAbort.signal,
      AbortSignal.timeout(timeoutMs),
    ]);
    const seed = req.seed ?? (req.temperature > 0 ? Math.floor(Math.random() * 0xffffffff) : 0);
    let it: ReturnType<InferenceEngine["generate"]>;
    try {
      it = engine.generate(
        {
          promptIds: ids,
          maxTokens,
          stop: req.stop,
          temperature: req.temperature,
          topP: req.topP,
          presencePenalty: req.presencePenalty,
          frequencyPenalty: req.frequencyPenalty,
          seed,
        },
        signal,
      );
    } catch (e) {
      throw toApiError(e);
    }
    const start = c.get("start");
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const model = info.modelId;
    let firstAt = 0;
    const noteChunk = () => {
      if (firstAt) return;
      firstAt = performance.now();
      metrics.firstToken((firstAt - start) / 1000);
    };
    const usageOf = (p: number, n: number): Usage => ({
      prompt_tokens: p,
      completion_tokens: n,
      total_tokens: p + n,
    });
    const noteDone = (p: number, n: number) =>
      metrics.generation(p, n, firstAt ? (performance.now() - firstAt) / 1000 : 0);

    if (!req.stream) {
      return (async () => {
        let out = "";
        let r;
        try {
          r = await it.next();
          while (!r.done) {
            if (r.value.tokenIds.length) noteChunk();
            out += r.value.text;
            r = await it.next();
          }
        } catch (e) {
          throw toApiError(e);
        }
        const res = r.value;
        noteDone(res.promptTokens, res.completionTokens);
        if (res.finishReason === "timeout") {
          throw new ApiError(504, `the request took longer than ${timeoutMs} ms`, {
            type: "server_error",
            code: "timeout",
          });
        }
        const usage = usageOf(res.promptTokens, res.completionTokens);
        const finish = mapFinish(res.finishReason);
        if (kind === "chat") {
          const body: ChatCompletionResponse = {
            id,
            object: "chat.completion",
            created,
            model,
            choices: [{
              index: 0,
              message: { role: "assistant", content: out },
              logprobs: null,
              finish_reason: finish,
            }],
            usage,
          };
          return c.json(body);
        }
        const body: CompletionResponse = {
          id,
          object: "text_completion",
          created,
          model,
          choices: [{ index: 0, text: out, logprobs: null, finish_reason: finish }],
          usage,
        };
        return c.json(body);
      })();
    }

    const enc = new TextEncoder();
    const sse = (x: unknown) => enc.encode(`data: ${JSON.stringify(x)}\n\n`);
    const chatChunk = (
      delta: ChatCompletionChunk["choices"][0]["delta"],
      finish: FinishReason | null,
    ): ChatCompletionChunk => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    const textChunk = (text: string, finish: FinishReason | null): CompletionResponse => ({
      id,
      object: "text_completion",
      created,
      model,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
    });
    let started = false;
    let gone = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (gone) return;
        try {
          if (!started && kind === "chat") {
            started = true;
            controller.enqueue(sse(chatChunk({ role: "assistant", content: "" }, null)));
            return;
          }
          started = true;
          const r = await it.next();
          if (gone) {
            if (r.done) noteDone(r.value.promptTokens, r.value.completionTokens);
            return;
          }
          if (!r.done) {
            if (r.value.tokenIds.length) noteChunk();
            if (r.value.text) {
              controller.enqueue(
                sse(
                  kind === "chat"
                    ? chatChunk({ content: r.value.text }, null)
                    : textChunk(r.value.text, null),
                ),
              );
            }
            return;
          }
          const res = r.value;
          noteDone(res.promptTokens, res.completionTokens);
          if (res.finishReason === "cancelled") {
            controller.close();
            return;
          }
          if (res.finishReason === "timeout") {
            controller.enqueue(
              sse(
                new ApiError(504, `the request took longer than ${timeoutMs} ms`, {
                  type: "server_error",
                  code: "timeout",
                }).body,
              ),
            );
          } else {
            const finish = mapFinish(res.finishReason);
            controller.enqueue(
              sse(kind === "chat" ? chatChunk({}, finish) : textChunk("", finish)),
            );
            if (req.includeUsage) {
              const usage = usageOf(res.promptTokens, res.completionTokens);
              const base = kind === "chat" ? chatChunk({}, null) : textChunk("", null);
              controller.enqueue(sse({ ...base, choices: [], usage }));
            }
          }
          controller.enqueue(enc.encode("data: [DONE]\n\n"));
          controller.close();
        } catch (e) {
          if (gone) return;
          const err = toApiError(e);
          try {
            controller.enqueue(sse(err.body));
            controller.enqueue(enc.encode("data: [DONE]\n\n"));
            controller.close();
          } catch {
            // the client is gone
          }
        }
      },
      cancel() {
        gone = true;
        streamAbort.abort();
        void it.return?.(undefined as never);
      },
    });
    return new Response(body, {
      headers: {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
      },
    });
  }

  app.post("/v1/completions", async (c) => {
    const info = requireInfo();
    const req = parseCompletionRequest(await readJson(c));
    checkModel(info, req.model);
    return await serve(c, info, req, req.prompt, true, "completion");
  });

  app.post("/v1/chat/completions", async (c) => {
    const info = requireInfo();
    const req = parseChatRequest(await readJson(c));
    checkModel(info, req.model);
    const prompt = renderChat(req.messages, info, info.chatTemplate);
    return await serve(c, info, req, prompt.text, prompt.addBos, "chat");
  });

  return app;
}

function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QueueFullError) {
    return new ApiError(429, e.message, {
      type: "rate_limit_error",
      code: "queue_full",
      headers: { "Retry-After": String(e.retryAfterSeconds) },
    });
  }
  if (e instanceof EngineUnavailableError) {
    return new ApiError(503, e.message, { type: "server_error", code: "unavailable" });
  }
  if (e instanceof RequestError) return new ApiError(400, e.message);
  console.error("server error:", e);
  return new ApiError(500, "internal server error", { type: "server_error" });
}
