/**
 * The tokenizer interface the engine uses, whatever backs it.
 *
 * @module
 */

/** Encodes text to token ids and back. */
export interface TextTokenizer {
  /** Number of ids (including special tokens). */
  readonly vocabSize: number;
  /** Beginning-of-sequence id. */
  readonly bosId: number;
  /** End-of-sequence ids. */
  readonly eosIds: readonly number[];
  /**
   * Encodes one piece of text. With `bos` (the default) the result starts with
   * the BOS id, exactly as llama2.c / SentencePiece Llama tokenizers do
   * (BOS, dummy-prefix space, BPE).
   */
  encode(text: string, options?: { bos?: boolean }): number[];
  /** Decodes ids to text (special tokens skipped, leading dummy space removed). */
  decode(ids: readonly number[]): string;
}
