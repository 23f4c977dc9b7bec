/**
 * Incremental decoding for streaming generation: feed token ids one at a
 * time, get back only the new text, with incomplete UTF-8 sequences (a
 * character split across byte-fallback tokens) held back until complete.
 *
 * @example
 * ```ts
 * import { StreamingDecoder } from "./streaming_decoder.ts";
 * const bytes = [[0xe2], [0x82], [0xac], [0x21]]; // "€" in three tokens, then "!"
 * const source = { tokenBytes: (_prev: number, id: number) => Uint8Array.from(bytes[id]) };
 * const stream = new StreamingDecoder(source);
 * console.log([0, 1, 2, 3].map((id) => stream.push(id))); // ["", "", "€", "!"]
 * ```
 * @module
 */

/** What a {@link StreamingDecoder} needs from a tokenizer. */
export interface TokenByteSource {
  /**
   * The bytes token `id` adds to the text when it follows `prevId` (-1 for
   * none): empty for special tokens, and without the dummy-prefix space when
   * `prevId` is BOS.
   */
  tokenBytes(prevId: number, id: number): Uint8Array;
}

/**
 * Turns a stream of token ids into a stream of text pieces whose
 * concatenation equals decoding all the ids at once.
 *
 * @example
 * ```ts
 * import { StreamingDecoder } from "./streaming_decoder.ts";
 * const pieces = ["<s>", " Hi", " there"];
 * const source = {
 *   tokenBytes: (prev: number, id: number) =>
 *     new TextEncoder().encode(id === 0 ? "" : prev === 0 ? pieces[id].trimStart() : pieces[id]),
 * };
 * const stream = new StreamingDecoder(source);
 * console.log(stream.push(0) + stream.push(1) + stream.push(2) + stream.flush()); // "Hi there"
 * ```
 */
export class StreamingDecoder {
  readonly #source: TokenByteSource;
  #decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  #prevId: number;

  /**
   * Starts an empty stream.
   *
   * @param source The tokenizer (an {@link HfTokenizer} works).
   * @param prevId The id before the first pushed one, e.g. the prompt's last
   * id, so the dummy-prefix space after a lone BOS is dropped as llama2.c does.
   */
  constructor(source: TokenByteSource, prevId = -1) {
    this.#source = source;
    this.#prevId = prevId;
  }

  /**
   * Adds one id and returns the text that became complete ("" while a
   * multi-byte character is still incomplete).
   */
  push(id: number): string {
    const bytes = this.#source.tokenBytes(this.#prevId, id);
    this.#prevId = id;
    return this.#decoder.decode(bytes, { stream: true });
  }

  /** Ends the stream: held-back incomplete bytes come out as U+FFFD. */
  flush(): string {
    const rest = this.#decoder.decode();
    this.#decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    return rest;
  }
}
