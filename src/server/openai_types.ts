/**
 * The subset of the OpenAI API this server speaks: request bodies, responses,
 * stream chunks and error bodies (field names as in the OpenAI reference).
 *
 * @module
 */

/** A stop parameter: one string or up to 4. */
export type Stop = string | string[] | null;

/** Fields shared by both generation routes. */
export interface SamplingParams {
  /** Model id (from GET /v1/models). */
  model: string;
  /** Most new tokens. */
  max_tokens?: number | null;
  /** 0..2; 0 is greedy (default 1). */
  temperature?: number | null;
  /** (0, 1] (default 1). */
  top_p?: number | null;
  /** Non-negative integer: same seed, same text. */
  seed?: number | null;
  /** Stop sequences (not included in the output). */
  stop?: Stop;
  /** Only 1 is supported. */
  n?: number | null;
  /** Server-sent events. */
  stream?: boolean | null;
  /** `include_usage` adds a final chunk with usage. */
  stream_options?: { include_usage?: boolean } | null;
  /** Ignored. */
  user?: string;
}

/** POST /v1/completions body. */
export interface CompletionRequest extends SamplingParams {
  /** A string (or an array holding one string). */
  prompt: string | string[];
}

/** One chat message (text content only). */
export interface ChatMessage {
  /** "system", "user", "assistant" (others are passed to the template as is). */
  role: string;
  /** Text, or text parts. */
  content: string | { type: "text"; text: string }[] | null;
}

/** POST /v1/chat/completions body. */
export interface ChatCompletionRequest extends SamplingParams {
  /** The conversation. */
  messages: ChatMessage[];
  /** Newer name of max_tokens. */
  max_completion_tokens?: number | null;
}

/** Token counts. */
export interface Usage {
  /** Prompt tokens. */
  prompt_tokens: number;
  /** Generated tokens. */
  completion_tokens: number;
  /** Their sum. */
  total_tokens: number;
}

/** Why a choice ended. */
export type FinishReason = "stop" | "length";

/** POST /v1/completions response (and, with object "text_completion", its stream chunks). */
export interface CompletionResponse {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: { index: number; text: string; logprobs: null; finish_reason: FinishReason | null }[];
  usage?: Usage | null;
}

/** POST /v1/chat/completions response. */
export interface ChatCompletionResponse {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: "assistant"; content: string };
    logprobs: null;
    finish_reason: FinishReason;
  }[];
  usage: Usage;
}

/** One chat stream chunk. */
export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: "assistant"; content?: string };
    logprobs: null;
    finish_reason: FinishReason | null;
  }[];
  usage?: Usage | null;
}

/** GET /v1/models response. */
export interface ModelList {
  object: "list";
  data: { id: string; object: "model"; created: number; owned_by: string }[];
}

/** Error body: `{"error": {...}}`. */
export interface ErrorBody {
  error: {
    /** Human-readable, names the parameter and the numbers. */
    message: string;
    /** "invalid_request_error", "authentication_error", "rate_limit_error", "server_error", ... */
    type: string;
    /** The offending parameter, if any. */
    param: string | null;
    /** Machine-readable code, if any. */
    code: string | null;
  };
}
