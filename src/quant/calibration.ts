/**
 * Calibration data for AWQ: a text file tokenized with the model's own
 * tokenizer, cut into fixed-length token windows chosen deterministically
 * from a seed.
 *
 * The recipe follows AutoAWQ: every document is encoded on its own (with BOS,
 * exactly like the perplexity protocol encodes a paragraph), the ids are
 * concatenated into one stream, the stream is cut into consecutive blocks of
 * `seqlen` tokens, and `samples` of those blocks are picked with a seeded
 * shuffle. A window therefore starts wherever its block starts (often inside a
 * document, not on BOS), which is also how the evaluation windows look.
 *
 * Documents are the paragraphs of a plain-text file (split on blank lines, as
 * in `splitParagraphs`) or, for `.jsonl` / `.ndjson` files, the `"text"` field
 * of each line.
 *
 * @example
 * ```ts ignore
 * import { loadCalibration } from "./calibration.ts";
 * const c = await loadCalibration("../shared/data/tinystories-calib.txt", tokenizer, {
 *   samples: 16, seqlen: 128, seed: 0,
 * });
 * console.log(c.samples.length, c.samples[0].length, c.fileSha256, c.description);
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { splitParagraphs } from "../engine/perplexity_stream.ts";
import type { TextTokenizer } from "../tokenizer/types.ts";
import { sha256Hex } from "./provenance.ts";

/** The calibration file used for the bundled models when none is given. */
export const DEFAULT_CALIBRATION_FILE: string =
  new URL("../../../shared/data/tinystories-calib.txt", import.meta.url).pathname;

/** The paper's calibration size: 128 samples of 512 tokens. */
export const DEFAULT_CALIBRATION = { samples: 128, seqlen: 512, seed: 0 } as const;

/** How many calibration windows to draw, how long, and from which seed. */
export interface CalibrationOptions {
  /** Number of windows. */
  samples: number;
  /** Tokens per window. */
  seqlen: number;
  /** Seed of the window choice (same seed, same windows). */
  seed: number;
}

/** Calibration windows and what they came from. */
export interface Calibration {
  /** `samples` windows of `seqlen` token ids each. */
  samples: Int32Array[];
  /** sha256 (hex) of the calibration file's bytes. */
  fileSha256: string;
  /** One line for the report, e.g. "128 x 512 tokens from calib.txt (seed 0; ...)". */
  description: string;
  /** Tokens in the concatenated stream. */
  streamTokens: number;
  /** Documents (paragraphs or JSONL records) in the file. */
  documents: number;
}

/**
 * A small seeded PRNG (mulberry32): the same seed gives the same sequence on
 * every platform.
 *
 * @example
 * ```ts
 * import { seededRandom } from "./calibration.ts";
 * const r = seededRandom(42);
 * const x = r();
 * console.log(x >= 0 && x < 1); // true
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Splits a calibration file's text into documents: the `"text"` field of each
 * non-empty line when `jsonl`, else the paragraphs of the text.
 *
 * @throws {RequestError} naming `path` and the line for a JSONL line that is
 * not an object with a string `"text"`.
 *
 * @example
 * ```ts
 * import { calibrationDocuments } from "./calibration.ts";
 * console.log(calibrationDocuments('{"text":"a"}\n{"text":"b c"}\n', "c.jsonl", true)); // ["a", "b c"]
 * console.log(calibrationDocuments("One.\n\nTwo.\n", "c.txt", false)); // ["One.", "Two."]
 * ```
 */
export function calibrationDocuments(text: string, path: string, jsonl: boolean): string[] {
  if (!jsonl) return splitParagraphs(text);
  const docs: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new RequestError(`${path}:${i + 1}: calibration line is not JSON`);
    }
    const t = (v as { text?: unknown } | null)?.text;
    if (typeof v !== "object" || v === null || Array.isArray(v) || typeof t !== "string") {
      throw new RequestError(`${path}:${i + 1}: calibration line has no string "text" field`);
    }
    if (t.trim() !== "") docs.push(t.trim());
  }
  return docs;
}

/**
 * Cuts `stream` into consecutive blocks of `seqlen` tokens and picks
 * `samples` of them with a seeded Fisher-Yates shuffle (returned in stream
 * order, as copies).
 *
 * @throws {RequestError} when the stream holds fewer than `samples` blocks.
 *
 * @example
 * ```ts
 * import { drawWindows } from "./calibration.ts";
 * const w = drawWindows(Int32Array.from({ length: 10 }, (_, i) => i), 2, 3, 7);
 * console.log(w.length, w[0].length); // 2 3
 * ```
 */
export function drawWindows(
  stream: Int32Array,
  samples: number,
  seqlen: number,
  seed: number,
): Int32Array[] {
  const blocks = Math.floor(stream.length / seqlen);
  if (blocks < samples) {
    throw new RequestError(
      `calibration stream has ${stream.length} tokens, ${blocks} windows of ${seqlen}; ` +
        `${samples} x ${seqlen} = ${samples * seqlen} needed`,
    );
  }
  const order = Array.from({ length: blocks }, (_, i) => i);
  const rand = seededRandom(seed);
  for (let i = blocks - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order.slice(0, samples).sort((a, b) => a - b)
    .map((b) => stream.slice(b * seqlen, (b + 1) * seqlen));
}

/** Checks the numeric options; RequestError naming the bad one. */
function checkOptions(o: CalibrationOptions): void {
  if (!Number.isInteger(o.samples) || o.samples < 1) {
    throw new RequestError(`--samples must be a positive integer (got ${o.samples})`);
  }
  if (!Number.isInteger(o.seqlen) || o.seqlen < 2) {
    throw new RequestError(`--seqlen must be an integer >= 2 (got ${o.seqlen})`);
  }
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) {
    throw new RequestError(`--seed must be an integer in 0..4294967295 (got ${o.seed})`);
  }
}

/**
 * Reads `path`, tokenizes every document with BOS, concatenates the ids and
 * draws `samples` windows of `seqlen` tokens chosen by `seed`.
 *
 * @throws {RequestError} naming `path` when the file is missing or unreadable,
 * empty, malformed JSONL, or too short (with its token count and the count
 * needed).
 *
 * @example
 * ```ts ignore
 * import { loadCalibration } from "./calibration.ts";
 * const a = await loadCalibration("calib.txt", tokenizer, { samples: 8, seqlen: 64, seed: 1 });
 * const b = await loadCalibration("calib.txt", tokenizer, { samples: 8, seqlen: 64, seed: 1 });
 * // a.samples and b.samples are equal element by element
 * ```
 */
export async function loadCalibration(
  path: string,
  tokenizer: Pick<TextTokenizer, "encode">,
  options: CalibrationOptions,
): Promise<Calibration> {
  checkOptions(options);
  const { samples, seqlen, seed } = options;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new RequestError(`${path}: calibration file not found`);
    }
    throw new RequestError(`${path}: cannot read calibration file (${(e as Error).message})`);
  }
  const text = new TextDecoder().decode(bytes);
  const jsonl = /\.(jsonl|ndjson)$/i.test(path);
  const docs = calibrationDocuments(text, path, jsonl);
  if (docs.length === 0) {
    throw new RequestError(
      `${path}: calibration file is empty (no ${jsonl ? '"text" records' : "paragraphs"})`,
    );
  }
  const parts = docs.map((d) => tokenizer.encode(d, { bos: true }));
  const stream = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    stream.set(p, offset);
    offset += p.length;
  }
  const need = samples * seqlen;
  if (stream.length < need) {
    throw new RequestError(
      `${path}: calibration text too short: ${stream.length} tokens, ` +
        `${samples} samples x ${seqlen} tokens = ${need} needed (lower --samples or --seqlen)`,
    );
  }
  const windows = drawWindows(stream, samples, seqlen, seed);
  const name = path.split("/").pop() ?? path;
  const paper = DEFAULT_CALIBRATION;
  const fewer = samples * seqlen < paper.samples * paper.seqlen
    ? `; fewer than the paper's ${paper.samples} x ${paper.seqlen} (smaller model context or CPU)`
    : "";
  return {
    samples: windows,
    fileSha256: await sha256Hex(bytes),
    description: `${samples} x ${seqlen} tokens from ${name} (seed ${seed}, ` +
      `${docs.length} ${jsonl ? "records" : "paragraphs"}, ${stream.length} tokens${fewer})`,
    streamTokens: stream.length,
    documents: docs.length,
  };
}
