/**
 * The token stream of the perplexity protocol (shared/docs/formats.md), so
 * numbers compare across tools: split the text into paragraphs on "\n\n",
 * strip each, drop empty ones, encode each (BOS + dummy prefix + BPE),
 * concatenate, and cut into windows of `min(context, 256)` tokens.
 *
 * @example
 * ```ts
 * import { buildTokenStream, windows } from "./perplexity_stream.ts";
 * const tokenizer = { encode: (t: string) => [1, ...Array.from(t, (c) => c.charCodeAt(0))] };
 * const stream = buildTokenStream("ab\n\ncd", tokenizer);
 * console.log(Array.from(stream), windows(stream, 4).length); // [1, 97, 98, 1, 99, 100] 2
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import type { TextTokenizer } from "../tokenizer/types.ts";

/** The largest window of the protocol, whatever the model's context. */
export const MAX_PERPLEXITY_WINDOW = 256;

/** Python's `str.strip()` whitespace, which the reference implementation uses. */
const PY_WS = "[\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029" +
  "\\u202f\\u205f\\u3000]";
const STRIP = new RegExp(`^${PY_WS}+|${PY_WS}+$`, "g");

/**
 * Splits text into paragraphs: on "\n\n", each piece stripped of leading and
 * trailing whitespace, empty pieces dropped (a single inner "\n" stays).
 *
 * @example
 * ```ts
 * import { splitParagraphs } from "./perplexity_stream.ts";
 * console.log(splitParagraphs("  One\ntwo \n\n\n\nThree\n")); // ["One\ntwo", "Three"]
 * ```
 */
export function splitParagraphs(text: string): string[] {
  return text.split("\n\n").map((p) => p.replace(STRIP, "")).filter((p) => p.length > 0);
}

/**
 * Encodes every paragraph with BOS (the tokenizer's default encoding) and
 * concatenates the ids into one stream.
 *
 * @throws {RequestError} when the text has no non-empty paragraph.
 *
 * @example
 * ```ts
 * import { buildTokenStream } from "./perplexity_stream.ts";
 * const tokenizer = { encode: (t: string) => [1, t.length] };
 * console.log(Array.from(buildTokenStream("a\n\nbcd", tokenizer))); // [1, 1, 1, 3]
 * ```
 */
export function buildTokenStream(
  text: string,
  tokenizer: Pick<TextTokenizer, "encode">,
): Int32Array {
  const paragraphs = splitParagraphs(text);
  if (paragraphs.length === 0) {
    throw new RequestError("perplexity text has no paragraphs (it is empty or only whitespace)");
  }
  const parts = paragraphs.map((p) => tokenizer.encode(p, { bos: true }));
  const stream = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    stream.set(p, offset);
    offset += p.length;
  }
  return stream;
}

/**
 * Cuts the stream into consecutive, non-overlapping windows of
 * `W = min(contextLength, 256)` tokens (views, not copies); a last partial
 * window is kept only if it has at least 2 tokens.
 *
 * @throws {RequestError} when `contextLength` is not an integer of at least 2.
 *
 * @example
 * ```ts
 * import { windows } from "./perplexity_stream.ts";
 * const w = windows(new Int32Array(7), 3);
 * console.log(w.map((x) => x.length)); // [3, 3] (the last single token is dropped)
 * ```
 */
export function windows(stream: Int32Array, contextLength: number): Int32Array[] {
  if (!Number.isInteger(contextLength) || contextLength < 2) {
    throw new RequestError(`perplexity needs a context length of at least 2, got ${contextLength}`);
  }
  const w = Math.min(contextLength, MAX_PERPLEXITY_WINDOW);
  const out: Int32Array[] = [];
  for (let start = 0; start < stream.length; start += w) {
    const window = stream.subarray(start, Math.min(start + w, stream.length));
    if (window.length >= 2) out.push(window);
  }
  return out;
}
