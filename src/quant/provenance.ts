/**
 * Provenance of a quantized checkpoint: where it came from (sha256 of the
 * source checkpoint files and of the calibration file), with which tool
 * version and parameters, and when. It is a flat string record, so the same
 * object goes into the safetensors `__metadata__` and into quant_report.json.
 *
 * The date is the current time unless pinned (the `AWQ_EDGE_DATE` environment
 * variable or the `date` option), so two runs with the same inputs can write
 * byte-identical files.
 *
 * @example
 * ```ts ignore
 * import { buildProvenance, hashModelFiles } from "./provenance.ts";
 * const source = await hashModelFiles("../shared/models/stories260K/stories260K.bin");
 * const meta = buildProvenance({ source, parameters: { method: "rtn", bits: "4" } });
 * console.log(meta.source_sha256, meta.quantizer_version, meta.date);
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import denoJson from "../../deno.json" with { type: "json" };
import { FormatError, RequestError } from "../errors.ts";

/** The tool version, from deno.json. */
export const TOOL_VERSION: string = denoJson.version;

/**
 * sha256 of bytes, as lowercase hex.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./provenance.ts";
 * console.log(await sha256Hex(new TextEncoder().encode("abc")));
 * // ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
 * ```
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * sha256 of a file, read in chunks (large checkpoints are never held whole).
 *
 * @example
 * ```ts
 * import { sha256File } from "./provenance.ts";
 * const p = await Deno.makeTempFile();
 * await Deno.writeTextFile(p, "abc");
 * console.log((await sha256File(p)).slice(0, 8)); // ba7816bf
 * ```
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

/** The hashed files of a source checkpoint. */
export interface SourceHash {
  /** The path given. */
  path: string;
  /** File names hashed (relative to the directory, or the file's name). */
  files: string[];
  /**
   * sha256 of the file when there is one; else the sha256 of the
   * `sha256sum`-style listing ("<hex>  <name>\n" per file, sorted by name).
   */
  sha256: string;
}

/**
 * Hashes a source checkpoint: a llama2.c `.bin` (that file) or an HF
 * directory (config.json and every `*.safetensors` / `*.safetensors.index.json`).
 *
 * @throws {FormatError} when `path` does not exist.
 *
 * @example
 * ```ts ignore
 * import { hashModelFiles } from "./provenance.ts";
 * const h = await hashModelFiles("stories260K-hf");
 * console.log(h.files); // ["config.json", "model.safetensors"]
 * ```
 */
export async function hashModelFiles(path: string): Promise<SourceHash> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new FormatError(`${path}: model not found`);
  }
  if (!info.isDirectory) {
    return { path, files: [basename(path)], sha256: await sha256File(path) };
  }
  const files: string[] = [];
  for await (const e of Deno.readDir(path)) {
    if (
      e.isFile &&
      (e.name === "config.json" || e.name.endsWith(".safetensors") ||
        e.name.endsWith(".safetensors.index.json"))
    ) files.push(e.name);
  }
  files.sort();
  let listing = "";
  for (const f of files) listing += `${await sha256File(join(path, f))}  ${f}\n`;
  return { path, files, sha256: await sha256Hex(new TextEncoder().encode(listing)) };
}

/**
 * The date to record: `date` when given, else `AWQ_EDGE_DATE` from the
 * environment, else now; always ISO 8601.
 *
 * @throws {RequestError} when the pinned date does not parse.
 *
 * @example
 * ```ts
 * import { provenanceDate } from "./provenance.ts";
 * console.log(provenanceDate("2024-01-02")); // 2024-01-02T00:00:00.000Z
 * ```
 */
export function provenanceDate(date?: string): string {
  let pinned = date;
  if (pinned === undefined) {
    try {
      pinned = Deno.env.get("AWQ_EDGE_DATE");
    } catch {
      pinned = undefined; // no --allow-env: not pinned
    }
  }
  if (pinned === undefined || pinned === "") return new Date().toISOString();
  const d = new Date(pinned);
  if (Number.isNaN(d.getTime())) {
    throw new RequestError(`date "${pinned}" is not an ISO 8601 date`);
  }
  return d.toISOString();
}

/** Inputs of {@link buildProvenance}. */
export interface ProvenanceInput {
  /** The source checkpoint's hash. */
  source: SourceHash;
  /** Every quantization parameter, by name (values as strings). */
  parameters: Record<string, string>;
  /** Calibration file and its hash (absent for RTN). */
  calibration?: { path: string; sha256: string };
  /** Pinned date (see {@link provenanceDate}). */
  date?: string;
}

/**
 * The flat provenance record: `quantizer`, `quantizer_version`, `source_model`,
 * `source_files`, `source_sha256`, every parameter under its own name,
 * `calib_file` / `calib_sha256` when calibrated, and `date`.
 *
 * @example
 * ```ts
 * import { buildProvenance } from "./provenance.ts";
 * const m = buildProvenance({
 *   source: { path: "m.bin", files: ["m.bin"], sha256: "ab" },
 *   parameters: { method: "rtn", bits: "4", group_size: "32" },
 *   date: "2024-01-02",
 * });
 * console.log(m.method, m.source_sha256, m.date); // rtn ab 2024-01-02T00:00:00.000Z
 * ```
 */
export function buildProvenance(input: ProvenanceInput): Record<string, string> {
  const out: Record<string, string> = {
    quantizer: "awq-edge",
    quantizer_version: TOOL_VERSION,
    source_model: basename(input.source.path),
    source_files: input.source.files.join(","),
    source_sha256: input.source.sha256,
    ...input.parameters,
  };
  if (input.calibration) {
    out.calib_file = basename(input.calibration.path);
    out.calib_sha256 = input.calibration.sha256;
  }
  out.date = provenanceDate(input.date);
  return out;
}
