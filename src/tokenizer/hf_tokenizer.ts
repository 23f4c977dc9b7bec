/**
 * {@link TextTokenizer} backed by a Hugging Face `tokenizer.json` through
 * `@huggingface/tokenizers`: real HF Llama-family tokenizers and the ones
 * converted from llama2.c files (see `llama2c_to_hf.ts`) alike.
 *
 * Encoding is the library's, with special tokens from the post-processor
 * turned off and BOS added here, so BOS appears exactly once whatever the
 * post-processor does. Decoding follows llama2.c: each token's bytes are
 * concatenated, `<0xNN>` tokens are bytes, and the dummy-prefix space is
 * dropped from the token right after BOS (for tokenizers that add one).
 *
 * @example
 * ```ts ignore
 * import { HfTokenizer } from "./hf_tokenizer.ts";
 * const tok = await HfTokenizer.fromDirectory("models/TinyLlama");
 * const ids = tok.encode("Once upon a time");
 * console.log(tok.decode(ids)); // "Once upon a time"
 * ```
 * @module
 */

import { Tokenizer } from "@huggingface/tokenizers";
import { FormatError } from "../errors.ts";
import type { TextTokenizer } from "./types.ts";
import type { TokenByteSource } from "./streaming_decoder.ts";

type Json = Record<string, unknown>;

/** Options for the {@link HfTokenizer} constructor. */
export interface HfTokenizerOptions {
  /** Name used in error messages (the tokenizer.json path). */
  readonly source?: string;
  /** More end-of-sequence ids (e.g. from generation_config.json). */
  readonly extraEosIds?: readonly number[];
}

/** Options for {@link HfTokenizer.decode}. */
export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, added special tokens). Default true. */
  readonly skipSpecialTokens?: boolean;
}

const EMPTY = new Uint8Array(0);
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

function isObject(x: unknown): x is Json {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Flattens a (possibly nested) `Sequence` component into its parts. */
function flatten(component: unknown, listKey: string): Json[] {
  if (!isObject(component)) return [];
  if (component.type === "Sequence" && Array.isArray(component[listKey])) {
    return (component[listKey] as unknown[]).flatMap((c) => flatten(c, listKey));
  }
  return [component];
}

/** A special-token field of tokenizer_config.json: a string or `{content}`. */
function tokenName(x: unknown): string | undefined {
  if (typeof x === "string") return x;
  if (isObject(x) && typeof x.content === "string") return x.content;
  return undefined;
}

/** GPT-2 byte-level alphabet: character -> byte. */
function byteLevelDecoder(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [String.fromCodePoint(cs[i]), b]));
}

/** How the tokenizer.json decoder turns a token string into bytes. */
interface DecoderPlan {
  byteLevel: Map<string, number> | null;
  byteFallback: boolean;
  replacements: [string, string][];
}

function planDecoder(decoder: unknown): DecoderPlan {
  const plan: DecoderPlan = { byteLevel: null, byteFallback: false, replacements: [] };
  for (const d of flatten(decoder, "decoders")) {
    if (d.type === "ByteLevel") plan.byteLevel = byteLevelDecoder();
    else if (d.type === "ByteFallback") plan.byteFallback = true;
    else if (d.type === "Metaspace") {
      plan.replacements.push([typeof d.replacement === "string" ? d.replacement : "\u2581", " "]);
    } else if (d.type === "Replace" && isObject(d.pattern)) {
      const from = d.pattern.String;
      if (typeof from === "string") {
        plan.replacements.push([from, typeof d.content === "string" ? d.content : ""]);
      }
    }
    // Fuse and Strip need nothing per token: the space after BOS is handled
    // in tokenBytes, llama2.c's way.
  }
  return plan;
}

/** Whether the tokenizer adds a dummy-prefix space (SentencePiece style). */
function addsDummyPrefix(json: Json): boolean {
  for (const n of flatten(json.normalizer, "normalizers")) {
    if (n.type === "Prepend" && (n.prepend === " " || n.prepend === "\u2581")) return true;
  }
  for (const p of flatten(json.pre_tokenizer, "pretokenizers")) {
    if (p.type === "Metaspace") {
      if (p.prepend_scheme === "always" || p.prepend_scheme === "first") return true;
      if (p.prepend_scheme === undefined && p.add_prefix_space !== false) return true;
    }
  }
  return false;
}

/**
 * A tokenizer built from a `tokenizer.json` object (and optionally a
 * `tokenizer_config.json` object).
 *
 * @example
 * ```ts
 * import { HfTokenizer } from "./hf_tokenizer.ts";
 * import { llama2cTokenizerToHfJson } from "./llama2c_to_hf.ts";
 * const pieces = ["<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", " a", " ab"];
 * const scores = Float32Array.from([0, 0, 0, -1, -2, -3, -4, -5]);
 * const tok = new HfTokenizer(
 *   llama2cTokenizerToHfJson({ maxTokenLength: 3, pieces, rawPieces: [], scores }),
 * );
 * console.log(tok.encode("ab"), tok.decode(tok.encode("ab"))); // [1, 7] "ab"
 * ```
 */
export class HfTokenizer implements TextTokenizer, TokenByteSource {
  /** Number of ids (including added and special tokens). */
  readonly vocabSize: number;
  /** Beginning-of-sequence id, -1 when the tokenizer has none (e.g. Qwen2). */
  readonly bosId: number;
  /** End-of-sequence ids. */
  readonly eosIds: readonly number[];
  /** Whether encoding prepends a dummy-prefix space (llama2.c, SentencePiece Llama). */
  readonly dummyPrefix: boolean;
  /** The tokenizer.json object this was built from (to write it out again). */
  readonly tokenizerJson: Record<string, unknown>;
  /** The tokenizer_config.json object this was built from (`{}` when none). */
  readonly tokenizerConfig: Record<string, unknown>;

  readonly #tokenizer: Tokenizer;
  readonly #special = new Set<number>();
  readonly #plan: DecoderPlan;
  readonly #bytes: (Uint8Array | undefined)[] = [];
  readonly #encoder = new TextEncoder();

  /**
   * Builds the tokenizer from parsed JSON objects.
   *
   * @param tokenizerJson The parsed tokenizer.json.
   * @param tokenizerConfig The parsed tokenizer_config.json, if any.
   * @param options Source name for errors, extra EOS ids.
   * @throws {FormatError} naming the source when the library rejects the object.
   */
  constructor(
    tokenizerJson: Record<string, unknown>,
    tokenizerConfig: Record<string, unknown> = {},
    options: HfTokenizerOptions = {},
  ) {
    const source = options.source ?? "tokenizer.json";
    this.tokenizerJson = tokenizerJson;
    this.tokenizerConfig = tokenizerConfig;
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
      throw new FormatError(`${source}: not a tokenizer.json (no "model" object)`);
    }
    const json: Json = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      added_tokens: [],
      ...tokenizerJson,
    };
    try {
      this.#tokenizer = new Tokenizer(json, tokenizerConfig);
    } catch (e) {
      throw new FormatError(
        `${source}: unsupported or invalid tokenizer (${(e as Error).message})`,
        {
          cause: e,
        },
      );
    }
    const vocab = this.#tokenizer.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    if (this.vocabSize === 0) throw new FormatError(`${source}: the vocabulary is empty`);

    this.bosId = this.#findBos(json, tokenizerConfig);
    const eos = new Set<number>();
    const eosName = tokenName(tokenizerConfig.eos_token);
    const eosId = eosName === undefined ? undefined : this.#tokenizer.token_to_id(eosName);
    if (eosId !== undefined) eos.add(eosId);
    else if (eosName === undefined) {
      const fallback = this.#tokenizer.token_to_id("</s>");
      if (fallback !== undefined) eos.add(fallback);
    }
    for (const id of options.extraEosIds ?? []) eos.add(id);
    this.eosIds = [...eos];

    for (const t of json.added_tokens as unknown[]) {
      if (isObject(t) && t.special === true && typeof t.id === "number") this.#special.add(t.id);
    }
    if (this.bosId >= 0) this.#special.add(this.bosId);
    for (const id of this.eosIds) this.#special.add(id);

    this.dummyPrefix = addsDummyPrefix(json);
    this.#plan = planDecoder(json.decoder);
  }

  #findBos(json: Json, config: Json): number {
    const name = tokenName(config.bos_token);
    if (name !== undefined) return this.#tokenizer.token_to_id(name) ?? -1;
    if ("bos_token" in config) return -1; // explicitly null: no BOS
    for (const p of flatten(json.post_processor, "processors")) {
      if (p.type !== "TemplateProcessing" || !Array.isArray(p.single)) continue;
      const first = p.single[0];
      if (isObject(first) && isObject(first.SpecialToken)) {
        const id = this.#tokenizer.token_to_id(String(first.SpecialToken.id));
        if (id !== undefined) return id;
      }
    }
    return this.#tokenizer.token_to_id("<s>") ?? -1;
  }

  /**
   * Reads `tokenizer.json` (required), `tokenizer_config.json` and
   * `generation_config.json` (optional, for extra EOS ids) from a directory.
   *
   * @throws {FormatError} naming the file that is missing or invalid.
   *
   * @example
   * ```ts ignore
   * const tok = await HfTokenizer.fromDirectory("models/TinyLlama");
   * ```
   */
  static async fromDirectory(dir: string): Promise<HfTokenizer> {
    const base = dir.replace(/\/+$/, "");
    const path = `${base}/tokenizer.json`;
    const json = await readJson(path, true);
    const config = await readJson(`${base}/tokenizer_config.json`, false) ?? {};
    const generation = await readJson(`${base}/generation_config.json`, false);
    const extra = generation?.eos_token_id;
    const ids = Array.isArray(extra) ? extra : [extra];
    const extraEosIds = ids.filter((x): x is number => typeof x === "number");
    return new HfTokenizer(json, config, { source: path, extraEosIds });
  }

  /**
   * Encodes text: BOS (when `bos`, the default, and the tokenizer has one),
   * then the library's encoding without post-processor special tokens.
   *
   * @example
   * ```ts ignore
   * tok.encode("Once upon a time"); // [1, 403, 407, 261, 378] with tok512
   * ```
   */
  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const ids = this.#tokenizer.encode(text, { add_special_tokens: false }).ids;
    return (options.bos ?? true) && this.bosId >= 0 ? [this.bosId, ...ids] : ids;
  }

  /**
   * Decodes ids as llama2.c does: special tokens skipped (by default), the
   * dummy-prefix space dropped after BOS, `<0xNN>` tokens as bytes.
   *
   * @example
   * ```ts ignore
   * tok.decode(tok.encode("Hello")); // "Hello"
   * ```
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    const parts: Uint8Array[] = [];
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      const prev = i > 0 ? ids[i - 1] : -1;
      const bytes = !skip && this.#special.has(ids[i])
        ? this.#encoder.encode(this.#tokenizer.id_to_token(ids[i]) ?? "")
        : this.tokenBytes(prev, ids[i]);
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let offset = 0;
    for (const p of parts) {
      all.set(p, offset);
      offset += p.length;
    }
    return new TextDecoder().decode(all);
  }

  /**
   * The bytes token `id` adds to decoded text after `prevId` (-1 for none):
   * empty for special and unknown ids, one byte for `<0xNN>`, the dummy-prefix
   * space dropped when `prevId` is BOS.
   *
   * @example
   * ```ts ignore
   * tok.tokenBytes(-1, 403); // bytes of " Once"
   * tok.tokenBytes(1, 403); // bytes of "Once"
   * ```
   */
  tokenBytes(prevId: number, id: number): Uint8Array {
    let bytes = this.#bytesOf(id);
    if (this.dummyPrefix && prevId === this.bosId && bytes[0] === 0x20) bytes = bytes.subarray(1);
    return bytes;
  }

  /**
   * One token's text after `prevId` (lossy when the token is part of a
   * multi-byte character: use {@link StreamingDecoder} for streams).
   *
   * @example
   * ```ts ignore
   * tok.decodeToken(1, 403); // "Once"
   * ```
   */
  decodeToken(prevId: number, id: number): string {
    return new TextDecoder().decode(this.tokenBytes(prevId, id));
  }

  /** Whether `id` is a special token (skipped when decoding). */
  isSpecial(id: number): boolean {
    return this.#special.has(id);
  }

  /** The token string of `id` in the vocabulary, if any. */
  idToToken(id: number): string | undefined {
    return this.#tokenizer.id_to_token(id);
  }

  #bytesOf(id: number): Uint8Array {
    const cached = this.#bytes[id];
    if (cached !== undefined) return cached;
    const token = Number.isInteger(id) && id >= 0 ? this.#tokenizer.id_to_token(id) : undefined;
    let bytes = EMPTY;
    if (token !== undefined && !this.#special.has(id)) {
      const plan = this.#plan;
      const byte = plan.byteFallback ? BYTE_TOKEN.exec(token) : null;
      if (byte) {
        bytes = Uint8Array.of(parseInt(byte[1], 16));
      } else if (plan.byteLevel) {
        const map = plan.byteLevel;
        bytes = Uint8Array.from(Array.from(token, (c) => map.get(c) ?? 0x3f));
      } else {
        let text = token;
        for (const [from, to] of plan.replacements) text = text.replaceAll(from, to);
        bytes = this.#encoder.encode(text);
      }
    }
    if (Number.isInteger(id) && id >= 0 && id < this.vocabSize) this.#bytes[id] = bytes;
    return bytes;
  }
}

async function readJson(path: string, required: true): Promise<Json>;
async function readJson(path: string, required: false): Promise<Json | undefined>;
async function readJson(path: string, required: boolean): Promise<Json | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!required && e instanceof Deno.errors.NotFound) return undefined;
    throw new FormatError(`${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (!isObject(value)) throw new FormatError(`${path}: expected a JSON object`);
  return value;
}
