/**
 * Request validation: turns a parsed JSON body into checked values or throws
 * {@link ApiError} (an HTTP status plus an OpenAI-style error body naming the
 * parameter).
 *
 * @example
 * ```ts
 * import { parseCompletionRequest } from "./validation.ts";
 * const r = parseCompletionRequest({ model: "m", prompt: "Hi", max_tokens: 5 });
 * console.log(r.maxTokens); // 5
 * ```
 * @module
 */

import type { ChatMessage, ErrorBody } from "./openai_types.ts";

/** An error the API answers with `status` and an OpenAI-style body. */
export class ApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** OpenAI error type. */
  readonly type: string;
  /** The offending parameter. */
  readonly param: string | null;
  /** Machine-readable code. */
  readonly code: string | null;
  /** Extra response headers (Retry-After, WWW-Authenticate). */
  readonly headers: Record<string, string>;

  /** Creates the error. */
  constructor(
    status: number,
    message: string,
    opts: { type?: string; param?: string; code?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = status;
    this.type = opts.type ?? "invalid_request_error";
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.headers = opts.headers ?? {};
  }

  /** The JSON body. */
  get body(): ErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }
}

/** A 400 naming `param`. */
export function badParam(param: string, message: string, code = "invalid_value"): ApiError {
  return new ApiError(400, message, { param, code });
}

/** Checked sampling fields common to both routes. */
export interface CheckedParams {
  /** Requested model id. */
  model: string;
  /** Requested max tokens (undefined: route default). */
  maxTokens?: number;
  /** 0..2. */
  temperature: number;
  /** (0, 1]. */
  topP: number;
  /** [-2, 2]: subtracted once from the logit of each token already in the context. */
  presencePenalty: number;
  /** [-2, 2]: subtracted from a token's logit per occurrence in the context. */
  frequencyPenalty: number;
  /** Seed, when given. */
  seed?: number;
  /** Stop strings. */
  stop: string[];
  /** SSE. */
  stream: boolean;
  /** Add a usage chunk at the end of a stream. */
  includeUsage: boolean;
}

/** A checked completion request. */
export interface CheckedCompletion extends CheckedParams {
  /** The prompt. */
  prompt: string;
}

/** A checked chat request. */
export interface CheckedChat extends CheckedParams {
  /** Messages with text content. */
  messages: { role: string; content: string }[];
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function optNumber(
  body: Record<string, unknown>,
  name: string,
  ok: (n: number) => boolean,
  rule: string,
): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
    throw badParam(name, `${name} must be ${rule} (got ${JSON.stringify(v)})`);
  }
  return v;
}

function checkCommon(body: unknown, maxTokensNames: string[]): CheckedParams {
  if (!isObject(body)) throw new ApiError(400, "the request body must be a JSON object");
  if (typeof body.model !== "string" || body.model === "") {
    throw badParam("model", "model is required (a model id from GET /v1/models)", "missing");
  }
  const n = optNumber(body, "n", Number.isInteger, "an integer");
  if (n !== undefined && n !== 1) {
    throw badParam("n", `n must be 1: this server returns one choice per request (got ${n})`);
  }
  let maxTokens: number | undefined;
  for (const name of maxTokensNames) {
    const v = optNumber(body, name, (x) => Number.isInteger(x) && x >= 1, "an integer >= 1");
    if (v !== undefined) maxTokens = v;
  }
  const temperature = optNumber(body, "temperature", (x) => x >= 0 && x <= 2, "in [0, 2]") ?? 1;
  const topP = optNumber(body, "top_p", (x) => x > 0 && x <= 1, "in (0, 1]") ?? 1;
  const seed = optNumber(
    body,
    "seed",
    (x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff,
    "an integer in [0, 2^32)",
  );
  const penalty = (name: string) =>
    optNumber(body, name, (x) => x >= -2 && x <= 2, "in [-2, 2]") ?? 0;
  const presencePenalty = penalty("presence_penalty");
  const frequencyPenalty = penalty("frequency_penalty");
  for (const name of ["logprobs", "top_logprobs", "tools", "functions", "logit_bias"]) {
    const v = body[name];
    if (v !== undefined && v !== null && v !== false) {
      throw badParam(name, `${name} is not supported by this server`, "unsupported_parameter");
    }
  }
  if (body.echo === true) throw badParam("echo", "echo is not supported", "unsupported_parameter");
  let stop: string[] = [];
  const s = body.stop;
  if (typeof s === "string") stop = [s];
  else if (Array.isArray(s)) {
    if (s.length > 4 || !s.every((x) => typeof x === "string")) {
      throw badParam("stop", "stop must be a string or an array of at most 4 strings");
    }
    stop = s as string[];
  } else if (s !== undefined && s !== null) {
    throw badParam("stop", "stop must be a string or an array of at most 4 strings");
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean") {
    throw badParam("stream", "stream must be a boolean");
  }
  const so = body.stream_options;
  if (so !== undefined && so !== null && !isObject(so)) {
    throw badParam("stream_options", "stream_options must be an object");
  }
  return {
    model: body.model,
    maxTokens,
    temperature,
    topP,
    presencePenalty,
    frequencyPenalty,
    seed,
    stop: stop.filter((x) => x.length > 0),
    stream: body.stream === true,
    includeUsage: isObject(so) && so.include_usage === true,
  };
}

/** Checks a POST /v1/completions body. */
export function parseCompletionRequest(body: unknown): CheckedCompletion {
  const common = checkCommon(body, ["max_tokens"]);
  let prompt = (body as Record<string, unknown>).prompt;
  if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
  if (typeof prompt !== "string") {
    throw badParam(
      "prompt",
      "prompt must be a string (token arrays and batches of prompts are not supported)",
    );
  }
  return { ...common, prompt };
}

/** Checks a POST /v1/chat/completions body. */
export function parseChatRequest(body: unknown): CheckedChat {
  const common = checkCommon(body, ["max_tokens", "max_completion_tokens"]);
  const raw = (body as Record<string, unknown>).messages;
  if (!Array.isArray(raw) || raw.length === 0) {
    throw badParam("messages", "messages must be a non-empty array", "missing");
  }
  const messages = raw.map((m: unknown, i) => {
    const where = `messages[${i}]`;
    if (!isObject(m) || typeof m.role !== "string") {
      throw badParam(where, `${where} must be an object with a string role`);
    }
    const c = (m as unknown as ChatMessage).content;
    let content: string;
    if (typeof c === "string") content = c;
    else if (c === null || c === undefined) content = "";
    else if (Array.isArray(c)) {
      content = c.map((p, j) => {
        if (!isObject(p) || p.type !== "text" || typeof p.text !== "string") {
          throw badParam(
            `${where}.content[${j}]`,
            `${where}.content[${j}]: only text parts are supported`,
          );
        }
        return p.text;
      }).join("");
    } else throw badParam(`${where}.content`, `${where}.content must be a string or text parts`);
    return { role: m.role, content };
  });
  return { ...common, messages };
}
