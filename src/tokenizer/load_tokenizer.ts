/**
 * Finds and loads the tokenizer of a model: a Hugging Face model directory's
 * `tokenizer.json`, or the llama2.c tokenizer `.bin` beside a llama2.c
 * checkpoint, converted in memory.
 *
 * @example
 * ```ts ignore
 * import { loadTokenizer } from "./load_tokenizer.ts";
 * const tok = await loadTokenizer("models/stories260K/stories260K.bin");
 * console.log(tok.encode("Once upon a time")); // [1, 403, 407, 261, 378]
 * ```
 * @module
 */

import { FormatError } from "../errors.ts";
import { readLlama2cTokenizer } from "../formats/llama2c_tokenizer.ts";
import { HfTokenizer } from "./hf_tokenizer.ts";
import { llama2cTokenizerConfigJson, llama2cTokenizerToHfJson } from "./llama2c_to_hf.ts";

function dirname(path: string): string {
  const i = path.replace(/\/+$/, "").lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new FormatError(`${path}: cannot stat (${(e as Error).message})`, { cause: e });
  }
}

/** vocab_size and seq_len from a llama2.c checkpoint header, if it has one. */
async function llama2cHeader(path: string): Promise<{ vocabSize: number; seqLen: number } | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return null;
  }
  try {
    const header = new Uint8Array(28);
    let n = 0;
    while (n < 28) {
      const got = await file.read(header.subarray(n));
      if (got === null) return null;
      n += got;
    }
    const view = new DataView(header.buffer);
    const fields = Array.from({ length: 7 }, (_, i) => view.getInt32(i * 4, true));
    const vocabSize = Math.abs(fields[5]);
    const seqLen = fields[6];
    const plausible = fields.every((x, i) => i === 5 || (x > 0 && x < 1 << 24)) &&
      vocabSize > 0 && vocabSize < 1 << 24;
    return plausible ? { vocabSize, seqLen } : null;
  } finally {
    file.close();
  }
}

/**
 * Loads a llama2.c tokenizer `.bin` as an {@link HfTokenizer}.
 *
 * @param path The tokenizer file.
 * @param expectedVocabSize The checkpoint's vocab_size, checked when given.
 * @param modelMaxLength The checkpoint's context length, for tokenizer_config.
 *
 * @example
 * ```ts ignore
 * const tok = await loadLlama2cTokenizer("models/stories260K/tok512.bin", 512);
 * ```
 */
export async function loadLlama2cTokenizer(
  path: string,
  expectedVocabSize?: number,
  modelMaxLength = 2048,
): Promise<HfTokenizer> {
  const vocab = await readLlama2cTokenizer(path, { expectedVocabSize });
  return new HfTokenizer(
    llama2cTokenizerToHfJson(vocab),
    llama2cTokenizerConfigJson({ modelMaxLength }),
    { source: path },
  );
}

/** Loads an explicitly given tokenizer: a directory, a tokenizer.json, or a llama2.c .bin. */
async function loadGiven(
  path: string,
  header: { vocabSize: number; seqLen: number } | null,
): Promise<HfTokenizer> {
  const info = await statOrNull(path);
  if (info === null) throw new FormatError(`${path}: tokenizer not found`);
  if (info.isDirectory) return await HfTokenizer.fromDirectory(path);
  if (path.endsWith(".json")) {
    let json: unknown;
    try {
      json = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      throw new FormatError(`${path}: cannot read tokenizer JSON (${(e as Error).message})`, {
        cause: e,
      });
    }
    return new HfTokenizer(json as Record<string, unknown>, {}, { source: path });
  }
  return await loadLlama2cTokenizer(path, header?.vocabSize, header?.seqLen);
}

/**
 * Loads the tokenizer for a model.
 *
 * - `modelPath` a directory: its `tokenizer.json` (+ `tokenizer_config.json`).
 * - `modelPath` a llama2.c `.bin`: `tokenizerPath` if given, else
 *   `tokenizer.bin` beside it, else the only `tok*.bin` beside it; the
 *   vocabulary size is checked against the checkpoint header.
 * - any other file: the `tokenizer.json` of its directory.
 *
 * `tokenizerPath`, when given, may be a directory, a tokenizer.json or a
 * llama2.c tokenizer `.bin`.
 *
 * @throws {FormatError} naming where it looked when no tokenizer is found,
 * or naming the file that is invalid.
 *
 * @example
 * ```ts ignore
 * import { loadTokenizer } from "./load_tokenizer.ts";
 * const tok = await loadTokenizer("models/babyllama-tok105/model5000.bin");
 * console.log(tok.vocabSize); // 105
 * ```
 */
export async function loadTokenizer(
  modelPath: string,
  tokenizerPath?: string,
): Promise<HfTokenizer> {
  const info = await statOrNull(modelPath);
  if (info === null) throw new FormatError(`${modelPath}: model path not found`);
  const isBin = info.isFile && modelPath.endsWith(".bin");
  const header = isBin ? await llama2cHeader(modelPath) : null;
  if (tokenizerPath !== undefined) return await loadGiven(tokenizerPath, header);
  if (info.isDirectory) return await HfTokenizer.fromDirectory(modelPath);
  const dir = dirname(modelPath);
  if (!isBin) return await HfTokenizer.fromDirectory(dir);

  const standard = `${dir}/tokenizer.bin`;
  if ((await statOrNull(standard))?.isFile) {
    return await loadLlama2cTokenizer(standard, header?.vocabSize, header?.seqLen);
  }
  const candidates: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /^tok.*\.bin$/.test(entry.name) && `${dir}/${entry.name}` !== modelPath) {
      candidates.push(entry.name);
    }
  }
  candidates.sort();
  if (candidates.length === 1) {
    return await loadLlama2cTokenizer(`${dir}/${candidates[0]}`, header?.vocabSize, header?.seqLen);
  }
  if (candidates.length > 1) {
    throw new FormatError(
      `${modelPath}: several tokenizers beside the model in ${dir} (${candidates.join(", ")}); ` +
        `pass the tokenizer path`,
    );
  }
  throw new FormatError(
    `${modelPath}: no tokenizer found: looked for ${standard} and tok*.bin in ${dir}; ` +
      `pass the tokenizer path`,
  );
}
