/**
 * Reader for llama2.c tokenizer files (`tokenizer.bin`, `tok512.bin`, ...).
 *
 * Layout (little-endian): int32 `max_token_length`, then for each id a
 * float32 score, an int32 byte length and that many bytes of the piece.
 * Ids 0, 1, 2 are `<unk>`, BOS and EOS; the exporter writes BOS and EOS as
 * `"\n<s>\n"` and `"\n</s>\n"` and SentencePiece's "▁" as a real space.
 *
 * @example
 * ```ts
 * import { parseLlama2cTokenizer } from "./llama2c_tokenizer.ts";
 * const bytes = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 97]);
 * const vocab = parseLlama2cTokenizer(bytes, "tiny.bin");
 * console.log(vocab.pieces); // ["a"]
 * ```
 * @module
 */

import { FormatError } from "../errors.ts";

/** A parsed llama2.c tokenizer vocabulary. */
export interface Llama2cVocab {
  /** The `max_token_length` header field (longest piece in bytes, as written). */
  readonly maxTokenLength: number;
  /** Each id's piece, decoded as UTF-8 (a real space where SentencePiece has "▁"). */
  readonly pieces: readonly string[];
  /** Each id's piece as the raw bytes in the file. */
  readonly rawPieces: readonly Uint8Array[];
  /** Each id's merge score (higher merges first). */
  readonly scores: Float32Array;
}

/** Options for {@link parseLlama2cTokenizer}. */
export interface ParseLlama2cTokenizerOptions {
  /** When given, the number of entries must equal this (the checkpoint's vocab_size). */
  readonly expectedVocabSize?: number;
}

/** Largest piece length in bytes accepted; real vocabularies stay far below. */
const MAX_PIECE_BYTES = 1 << 16;

/**
 * Parses the bytes of a llama2.c tokenizer file. The vocabulary size is not
 * stored in the file: entries are read until the end, so a truncated entry or
 * trailing bytes are errors.
 *
 * @param bytes The whole file.
 * @param file The file name, used in error messages.
 * @param options `expectedVocabSize` to check the entry count.
 * @throws {FormatError} naming `file` when the file is too short, a length is
 * negative or absurd, an entry is truncated, bytes trail the last entry, or the
 * entry count disagrees with `expectedVocabSize`.
 *
 * @example
 * ```ts
 * import { parseLlama2cTokenizer } from "./llama2c_tokenizer.ts";
 * const bytes = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 97]);
 * const vocab = parseLlama2cTokenizer(bytes, "tiny.bin", { expectedVocabSize: 1 });
 * console.log(vocab.scores[0]); // 0
 * ```
 */
export function parseLlama2cTokenizer(
  bytes: Uint8Array,
  file: string,
  options: ParseLlama2cTokenizerOptions = {},
): Llama2cVocab {
  if (bytes.byteLength < 4) {
    throw new FormatError(
      `${file}: too short for a llama2.c tokenizer (${bytes.byteLength} bytes, need at least 4)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength < 0 || maxTokenLength > MAX_PIECE_BYTES) {
    throw new FormatError(
      `${file}: max_token_length ${maxTokenLength} is out of range (0..${MAX_PIECE_BYTES})`,
    );
  }
  const decoder = new TextDecoder("utf-8", { fatal: false });
  const pieces: string[] = [];
  const rawPieces: Uint8Array[] = [];
  const scoreList: number[] = [];
  let offset = 4;
  while (offset < bytes.byteLength) {
    const id = pieces.length;
    if (offset + 8 > bytes.byteLength) {
      throw new FormatError(
        `${file}: entry ${id} is truncated at byte ${offset} (needs 8 header bytes, ` +
          `${bytes.byteLength - offset} left); trailing garbage or a cut file`,
      );
    }
    const score = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    if (length < 0 || length > MAX_PIECE_BYTES) {
      throw new FormatError(
        `${file}: entry ${id} has an invalid piece length ${length} at byte ${offset + 4}`,
      );
    }
    const start = offset + 8;
    if (start + length > bytes.byteLength) {
      throw new FormatError(
        `${file}: entry ${id} is truncated (piece of ${length} bytes at byte ${start}, ` +
          `file has ${bytes.byteLength} bytes)`,
      );
    }
    const raw = bytes.slice(start, start + length);
    rawPieces.push(raw);
    pieces.push(decoder.decode(raw));
    scoreList.push(score);
    offset = start + length;
  }
  if (pieces.length === 0) {
    throw new FormatError(`${file}: no vocabulary entries after the header`);
  }
  const expected = options.expectedVocabSize;
  if (expected !== undefined && expected !== pieces.length) {
    throw new FormatError(
      `${file}: has ${pieces.length} tokens but the model expects vocab_size ${expected}`,
    );
  }
  return { maxTokenLength, pieces, rawPieces, scores: Float32Array.from(scoreList) };
}

/**
 * Reads and parses a llama2.c tokenizer file.
 *
 * @param path Path of the `.bin` tokenizer file.
 * @param options `expectedVocabSize` to check the entry count.
 * @throws {FormatError} naming the file when it cannot be read or is corrupt.
 *
 * @example
 * ```ts ignore
 * import { readLlama2cTokenizer } from "./llama2c_tokenizer.ts";
 * const vocab = await readLlama2cTokenizer("models/stories260K/tok512.bin");
 * console.log(vocab.pieces.length); // 512
 * ```
 */
export async function readLlama2cTokenizer(
  path: string,
  options: ParseLlama2cTokenizerOptions = {},
): Promise<Llama2cVocab> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new FormatError(`${path}: cannot read tokenizer file (${(e as Error).message})`, {
      cause: e,
    });
  }
  return parseLlama2cTokenizer(bytes, path, options);
}
