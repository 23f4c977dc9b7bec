/**
 * A TypeScript port of llama2.c run.c's `encode` (and `decode`), for tests
 * only: the independent reference the Hugging Face-backed tokenizer must match.
 *
 * One deliberate extension, as shared/docs/formats.md specifies: when the
 * vocabulary has no `<0xNN>` byte tokens (tok105), an unknown character becomes
 * one `<unk>` (id 0) instead of run.c's out-of-range `byte + 3` ids.
 *
 * @example
 * ```ts ignore
 * import { readLlama2cTokenizer } from "../../src/formats/llama2c_tokenizer.ts";
 * import { Llama2cEncoder } from "./llama2c_encode.ts";
 * const enc = new Llama2cEncoder(await readLlama2cTokenizer("tok512.bin"));
 * console.log(enc.encode("Once upon a time")); // [1, 403, 407, 261, 378]
 * ```
 * @module
 */

import type { Llama2cVocab } from "../../src/formats/llama2c_tokenizer.ts";

/**
 * llama2.c's encoder and decoder over one vocabulary.
 *
 * @example
 * ```ts ignore
 * const enc = new Llama2cEncoder(vocab);
 * enc.decode(enc.encode("Hi")); // "Hi"
 * ```
 */
export class Llama2cEncoder {
  readonly #vocab: Llama2cVocab;
  readonly #lookup = new Map<string, number>();
  readonly #byteTokens: boolean;
  /** Cache of pair (a, b) -> merged id, -1 when none, -2 not computed. */
  readonly #pairs: Int32Array;
  readonly #n: number;

  /** Builds the sorted-vocab lookup of run.c (a map here). */
  constructor(vocab: Llama2cVocab) {
    this.#vocab = vocab;
    this.#n = vocab.pieces.length;
    vocab.pieces.forEach((p, id) => {
      if (!this.#lookup.has(p)) this.#lookup.set(p, id);
    });
    let bytes = true;
    for (let b = 0; b < 256; b++) {
      const piece = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      if (this.#lookup.get(piece) !== b + 3) bytes = false;
    }
    this.#byteTokens = bytes;
    this.#pairs = new Int32Array(this.#n * this.#n).fill(-2);
  }

  #merge(a: number, b: number): number {
    const key = a * this.#n + b;
    let id = this.#pairs[key];
    if (id === -2) {
      id = this.#lookup.get(this.#vocab.pieces[a] + this.#vocab.pieces[b]) ?? -1;
      this.#pairs[key] = id;
    }
    return id;
  }

  /** run.c `encode(t, text, bos, eos=0, ...)`. */
  encode(text: string, bos = true): number[] {
    const tokens: number[] = [];
    if (bos) tokens.push(1);
    if (text.length > 0) {
      const prefix = this.#lookup.get(" ");
      tokens.push(prefix ?? -1);
    }
    // Group the UTF-8 bytes per code point exactly as run.c does.
    const bytes = new TextEncoder().encode(text);
    const decoder = new TextDecoder();
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i] & 0xc0) !== 0x80) start = i;
      const len = i - start + 1;
      if (i + 1 < bytes.length && (bytes[i + 1] & 0xc0) === 0x80 && len < 4) continue;
      const group = bytes.subarray(start, i + 1);
      const id = this.#lookup.get(decoder.decode(group));
      if (id !== undefined) {
        tokens.push(id);
      } else if (this.#byteTokens) {
        for (const b of group) tokens.push(b + 3);
      } else {
        tokens.push(0);
      }
      start = i + 1;
    }
    // Merge the best-scoring adjacent pair (leftmost on ties) until none merges.
    const scores = this.#vocab.scores;
    while (true) {
      let bestScore = -1e10;
      let bestId = -1;
      let bestIdx = -1;
      for (let i = 0; i < tokens.length - 1; i++) {
        const id = this.#merge(tokens[i], tokens[i + 1]);
        if (id !== -1 && scores[id] > bestScore) {
          bestScore = scores[id];
          bestId = id;
          bestIdx = i;
        }
      }
      if (bestIdx === -1) break;
      tokens.splice(bestIdx, 2, bestId);
    }
    return tokens;
  }

  /** run.c `decode(t, prev_token, token)` as bytes. */
  decodePiece(prev: number, token: number): Uint8Array {
    let piece = this.#vocab.rawPieces[token];
    if (prev === 1 && piece[0] === 0x20) piece = piece.subarray(1);
    const m = /^<0x([0-9A-F]{2})>$/.exec(this.#vocab.pieces[token]);
    if (m) return Uint8Array.of(parseInt(m[1], 16));
    return piece;
  }

  /** Decodes ids as run.c prints them, BOS and EOS skipped. */
  decode(ids: readonly number[]): string {
    const out: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === 1 || ids[i] === 2) continue;
      out.push(...this.decodePiece(i > 0 ? ids[i - 1] : -1, ids[i]));
    }
    return new TextDecoder().decode(Uint8Array.from(out));
  }
}
