/**
 * Converts a llama2.c tokenizer vocabulary into a Hugging Face `tokenizer.json`
 * (and `tokenizer_config.json`) that reproduces llama2.c's `encode` exactly.
 *
 * The "native" form (see shared/docs/formats.md): real spaces in the vocabulary,
 * a `Prepend(" ")` normalizer for the dummy prefix, no pre-tokenizer (BPE runs
 * over the whole text, as run.c does), merges as `[a, b]` pairs ordered by the
 * merged token's score, `byte_fallback` when the vocabulary has `<0xNN>` tokens,
 * `fuse_unk: false` (each unknown character is one `<unk>`), no added tokens
 * (so literal `"<s>"` in text stays text), and BOS from the post-processor.
 *
 * @example
 * ```ts ignore
 * import { readLlama2cTokenizer } from "../formats/llama2c_tokenizer.ts";
 * import { llama2cTokenizerToHfJson } from "./llama2c_to_hf.ts";
 * const json = llama2cTokenizerToHfJson(await readLlama2cTokenizer("tok512.bin"));
 * await Deno.writeTextFile("tokenizer.json", JSON.stringify(json));
 * ```
 * @module
 */

import type { Llama2cVocab } from "../formats/llama2c_tokenizer.ts";

/** Id of `<unk>` in llama2.c vocabularies. */
export const LLAMA2C_UNK_ID = 0;
/** Id of BOS (`<s>`) in llama2.c vocabularies. */
export const LLAMA2C_BOS_ID = 1;
/** Id of EOS (`</s>`) in llama2.c vocabularies. */
export const LLAMA2C_EOS_ID = 2;

const SPECIAL_NAMES: readonly string[] = ["<unk>", "<s>", "</s>"];

/** The `<0xNN>` piece of byte `b`, as SentencePiece writes it. */
function bytePiece(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/**
 * True when the vocabulary has all 256 byte-fallback tokens `<0x00>`..`<0xFF>`.
 *
 * @example
 * ```ts
 * import { hasByteTokens } from "./llama2c_to_hf.ts";
 * const pieces = ["<unk>", "\n<s>\n", "\n</s>\n", " ", "a"];
 * console.log(hasByteTokens({ maxTokenLength: 1, pieces, rawPieces: [], scores: new Float32Array(5) })); // false
 * ```
 */
export function hasByteTokens(vocab: Llama2cVocab): boolean {
  const set = new Set(vocab.pieces);
  for (let b = 0; b < 256; b++) if (!set.has(bytePiece(b))) return false;
  return true;
}

/**
 * The key each id gets in the Hugging Face vocabulary: the llama2.c piece,
 * except ids 0, 1, 2, which become `<unk>`, `<s>`, `</s>` (llama2.c writes BOS
 * and EOS as `"\n<s>\n"` and `"\n</s>\n"`).
 *
 * @example
 * ```ts
 * import { hfVocabKeys } from "./llama2c_to_hf.ts";
 * const pieces = ["<unk>", "\n<s>\n", "\n</s>\n", " ", "a"];
 * console.log(hfVocabKeys({ maxTokenLength: 1, pieces, rawPieces: [], scores: new Float32Array(5) })[1]); // "<s>"
 * ```
 */
export function hfVocabKeys(vocab: Llama2cVocab): string[] {
  return vocab.pieces.map((p, id) => id < SPECIAL_NAMES.length ? SPECIAL_NAMES[id] : p);
}

/**
 * Builds the BPE merge list: every split `[a, b]` of a non-special token whose
 * halves are both non-special tokens, ordered by the merged token's score
 * (highest first; equal scores by id, then by split position). run.c merges
 * exactly the adjacent pairs whose concatenation is in the vocabulary, so
 * listing every such split reproduces it.
 */
function buildMerges(keys: readonly string[], scores: Float32Array): [string, string][] {
  const idOf = new Map<string, number>();
  keys.forEach((k, id) => {
    if (id >= SPECIAL_NAMES.length && !idOf.has(k)) idOf.set(k, id);
  });
  const found: { score: number; id: number; pos: number; pair: [string, string] }[] = [];
  for (let id = SPECIAL_NAMES.length; id < keys.length; id++) {
    const chars = Array.from(keys[id]);
    for (let pos = 1; pos < chars.length; pos++) {
      const a = chars.slice(0, pos).join("");
      const b = chars.slice(pos).join("");
      if (idOf.has(a) && idOf.has(b)) {
        found.push({ score: scores[id], id, pos, pair: [a, b] });
      }
    }
  }
  found.sort((x, y) => y.score - x.score || x.id - y.id || x.pos - y.pos);
  return found.map((m) => m.pair);
}

/**
 * Converts a llama2.c vocabulary into a `tokenizer.json` object in the
 * "native" form that `@huggingface/tokenizers` loads and that encodes exactly as
 * llama2.c's run.c (BOS, dummy-prefix space, BPE by score, byte fallback or one
 * `<unk>` per unknown character). Decode with {@link HfTokenizer} for
 * llama2.c's decoding (space after BOS dropped, `<0xNN>` to bytes).
 *
 * @param vocab A parsed llama2.c vocabulary (ids 0, 1, 2 = unk, BOS, EOS).
 * @returns A plain object; `JSON.stringify` it to write a tokenizer.json.
 *
 * @example
 * ```ts
 * import { Tokenizer } from "@huggingface/tokenizers";
 * import { llama2cTokenizerToHfJson } from "./llama2c_to_hf.ts";
 * const pieces = ["<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", " a", " ab"];
 * const scores = Float32Array.from([0, 0, 0, -1, -2, -3, -4, -5]);
 * const json = llama2cTokenizerToHfJson({ maxTokenLength: 3, pieces, rawPieces: [], scores });
 * const tok = new Tokenizer(json, {});
 * console.log(tok.encode("ab").ids); // [1, 7]
 * ```
 */
export function llama2cTokenizerToHfJson(vocab: Llama2cVocab): Record<string, unknown> {
  const keys = hfVocabKeys(vocab);
  const byteFallback = hasByteTokens(vocab);
  const vocabObject = Object.fromEntries(keys.map((k, id) => [k, id]));
  const bos = SPECIAL_NAMES[LLAMA2C_BOS_ID];
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: { type: "Prepend", prepend: " " },
    pre_tokenizer: null,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: SPECIAL_NAMES[LLAMA2C_UNK_ID],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: byteFallback,
      ignore_merges: false,
      vocab: vocabObject,
      merges: buildMerges(keys, vocab.scores),
    },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: {
        [bos]: { id: bos, ids: [LLAMA2C_BOS_ID], tokens: [bos] },
      },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        ...(byteFallback ? [{ type: "ByteFallback" }] : []),
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
  };
}

/** Options for {@link llama2cTokenizerConfigJson}. */
export interface TokenizerConfigOptions {
  /** The model's context length (llama2.c `seq_len`). */
  readonly modelMaxLength: number;
}

/**
 * The `tokenizer_config.json` object that goes with
 * {@link llama2cTokenizerToHfJson}: Llama special tokens, BOS added, EOS not.
 *
 * @example
 * ```ts
 * import { llama2cTokenizerConfigJson } from "./llama2c_to_hf.ts";
 * const config = llama2cTokenizerConfigJson({ modelMaxLength: 512 });
 * console.log(config.bos_token); // "<s>"
 * ```
 */
export function llama2cTokenizerConfigJson(
  options: TokenizerConfigOptions,
): Record<string, unknown> {
  return {
    tokenizer_class: "LlamaTokenizerFast",
    bos_token: SPECIAL_NAMES[LLAMA2C_BOS_ID],
    eos_token: SPECIAL_NAMES[LLAMA2C_EOS_ID],
    unk_token: SPECIAL_NAMES[LLAMA2C_UNK_ID],
    pad_token: null,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    legacy: false,
    model_max_length: options.modelMaxLength,
  };
}
