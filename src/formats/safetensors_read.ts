/**
 * Safetensors reader. Opening a file reads and validates only the header;
 * each tensor's bytes are read on demand with a seek and one read, so a large
 * checkpoint is never copied whole into memory.
 *
 * @example
 * ```ts ignore
 * import { openSafetensors } from "./safetensors_read.ts";
 * const st = await openSafetensors("model.safetensors");
 * try {
 *   const w = await st.readF32("model.norm.weight");
 *   console.log(w.shape, w.dtype);
 * } finally {
 *   st.close();
 * }
 * ```
 * @module
 */

import { FormatError } from "../errors.ts";
import type { HostTensor } from "../model/weights.ts";
import { DTYPE_SIZES, isSafetensorsDtype, numElements, type SafetensorsDtype } from "./dtype.ts";
import { bf16ToF32, f16ToF32 } from "./half.ts";

/** Where one tensor lives in a safetensors file (offsets relative to the data section). */
export interface SafetensorsEntry {
  /** Element type. */
  dtype: SafetensorsDtype;
  /** Shape (`[]` for a scalar). */
  shape: number[];
  /** First byte, relative to the end of the header. */
  begin: number;
  /** One past the last byte, relative to the end of the header. */
  end: number;
}

/** A tensor's raw little-endian bytes with its dtype and shape. */
export interface RawTensor {
  /** Element type. */
  dtype: SafetensorsDtype;
  /** Shape. */
  shape: number[];
  /** The tensor's bytes (a fresh, 8-byte-aligned buffer). */
  bytes: Uint8Array;
}

/** An open safetensors file whose header has been validated. */
export interface SafetensorsFile {
  /** The path it was opened from. */
  readonly path: string;
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: Record<string, string>;
  /** Every tensor, by name, in header order. */
  readonly tensors: Map<string, SafetensorsEntry>;
  /** Reads one tensor's raw bytes. */
  read(name: string): Promise<RawTensor>;
  /** Reads one float tensor (F32, F16 or BF16) as float32, recording its dtype. */
  readF32(name: string): Promise<HostTensor>;
  /** Closes the file; later reads fail. */
  close(): void;
}

/**
 * Parses and validates a safetensors header. `headerBytes` is the JSON text
 * and `dataSize` the number of bytes after it. Exported for tests and tools
 * that already hold the bytes.
 *
 * @example
 * ```ts
 * import { parseSafetensorsHeader } from "./safetensors_read.ts";
 * const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
 * const h = parseSafetensorsHeader("x.safetensors", new TextEncoder().encode(json), 8);
 * console.log(h.tensors.get("a")?.shape); // [2]
 * ```
 */
export function parseSafetensorsHeader(
  path: string,
  headerBytes: Uint8Array,
  dataSize: number,
): { metadata: Record<string, string>; tensors: Map<string, SafetensorsEntry> } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw new FormatError(`${path}: safetensors header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path}: safetensors header is not JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new FormatError(`${path}: safetensors header is not a JSON object`);
  }
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new FormatError(`${path}: __metadata__ is not an object`);
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") {
          throw new FormatError(`${path}: __metadata__ field "${k}" is not a string`);
        }
        metadata[k] = v;
      }
      continue;
    }
    tensors.set(name, parseEntry(path, name, value, dataSize));
  }
  const sorted = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < sorted.length; i++) {
    const [prevName, prev] = sorted[i - 1];
    const [name, cur] = sorted[i];
    if (cur.begin < prev.end) {
      throw new FormatError(
        `${path}: tensor "${name}" [${cur.begin}, ${cur.end}) overlaps tensor "${prevName}" [${prev.begin}, ${prev.end})`,
      );
    }
  }
  return { metadata, tensors };
}

function isIndex(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function parseEntry(
  path: string,
  name: string,
  value: unknown,
  dataSize: number,
): SafetensorsEntry {
  const where = `${path}: tensor "${name}"`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FormatError(`${where}: header entry is not an object`);
  }
  const v = value as Record<string, unknown>;
  if (!isSafetensorsDtype(v.dtype)) {
    throw new FormatError(`${where}: unsupported dtype ${JSON.stringify(v.dtype)}`);
  }
  if (!Array.isArray(v.shape) || !v.shape.every(isIndex)) {
    throw new FormatError(
      `${where}: shape ${JSON.stringify(v.shape)} is not a list of non-negative integers`,
    );
  }
  const offs = v.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isIndex)) {
    throw new FormatError(
      `${where}: data_offsets ${JSON.stringify(offs)} is not [begin, end] of non-negative integers`,
    );
  }
  const [begin, end] = offs as number[];
  if (end < begin) throw new FormatError(`${where}: data_offsets end ${end} < begin ${begin}`);
  if (end > dataSize) {
    throw new FormatError(
      `${where}: data_offsets [${begin}, ${end}] out of range (data section is ${dataSize} bytes)`,
    );
  }
  const shape = v.shape as number[];
  const expected = numElements(shape) * DTYPE_SIZES[v.dtype];
  if (end - begin !== expected) {
    throw new FormatError(
      `${where}: ${end - begin} bytes but shape [${shape}] of ${v.dtype} needs ${expected}`,
    );
  }
  return { dtype: v.dtype, shape: [...shape], begin, end };
}

async function readExactly(file: Deno.FsFile, buf: Uint8Array, path: string): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await file.read(buf.subarray(off));
    if (n === null) throw new FormatError(`${path}: unexpected end of file`);
    off += n;
  }
}

/**
 * Converts a raw float tensor to float32 (F32 is reinterpreted, F16 and BF16
 * converted). Throws {@link FormatError} for integer dtypes.
 *
 * @example
 * ```ts
 * import { rawToF32 } from "./safetensors_read.ts";
 * const t = rawToF32("x", "a", { dtype: "F16", shape: [1], bytes: new Uint8Array([0, 0x3c]) });
 * console.log(t.data[0]); // 1
 * ```
 */
export function rawToF32(path: string, name: string, raw: RawTensor): HostTensor {
  const n = numElements(raw.shape);
  let bytes = raw.bytes;
  if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
  switch (raw.dtype) {
    case "F32":
      return {
        data: new Float32Array(bytes.buffer, bytes.byteOffset, n),
        shape: raw.shape,
        dtype: "F32",
      };
    case "F16":
      return {
        data: f16ToF32(new Uint16Array(bytes.buffer, bytes.byteOffset, n)),
        shape: raw.shape,
        dtype: "F16",
      };
    case "BF16":
      return {
        data: bf16ToF32(new Uint16Array(bytes.buffer, bytes.byteOffset, n)),
        shape: raw.shape,
        dtype: "BF16",
      };
    default:
      throw new FormatError(
        `${path}: tensor "${name}" has dtype ${raw.dtype}, expected F32, F16 or BF16`,
      );
  }
}

/**
 * Opens a safetensors file and validates its header (reading nothing else).
 * Throws {@link FormatError} naming the file (and tensor) when the file is
 * shorter than 8 bytes, the header is longer than the file, not JSON or not an
 * object, or a tensor has an unknown dtype, a bad shape, bad or out-of-range
 * or overlapping data_offsets, or a size that disagrees with shape x dtype.
 *
 * @example
 * ```ts ignore
 * import { openSafetensors } from "./safetensors_read.ts";
 * const st = await openSafetensors("model.safetensors");
 * for (const [name, e] of st.tensors) console.log(name, e.dtype, e.shape);
 * st.close();
 * ```
 */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    if (size < 8) {
      throw new FormatError(`${path}: ${size} bytes is too short for a safetensors file`);
    }
    const lenBytes = new Uint8Array(8);
    await readExactly(file, lenBytes, path);
    const n = new DataView(lenBytes.buffer).getBigUint64(0, true);
    if (n > BigInt(size - 8)) {
      throw new FormatError(`${path}: header length ${n} is larger than the file (${size} bytes)`);
    }
    const headerLen = Number(n);
    const headerBytes = new Uint8Array(headerLen);
    await readExactly(file, headerBytes, path);
    const dataStart = 8 + headerLen;
    const { metadata, tensors } = parseSafetensorsHeader(path, headerBytes, size - dataStart);
    return new OpenSafetensors(path, file, dataStart, metadata, tensors);
  } catch (e) {
    file.close();
    throw e;
  }
}

class OpenSafetensors implements SafetensorsFile {
  #file: Deno.FsFile;
  #dataStart: number;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    file: Deno.FsFile,
    dataStart: number,
    readonly metadata: Record<string, string>,
    readonly tensors: Map<string, SafetensorsEntry>,
  ) {
    this.#file = file;
    this.#dataStart = dataStart;
  }

  read(name: string): Promise<RawTensor> {
    // Reads share one file position: run them one at a time.
    const p = this.#queue.then(() => this.#read(name));
    this.#queue = p.catch(() => {});
    return p;
  }

  async #read(name: string): Promise<RawTensor> {
    if (this.#closed) throw new FormatError(`${this.path}: read of "${name}" after close()`);
    const e = this.tensors.get(name);
    if (!e) throw new FormatError(`${this.path}: no tensor "${name}"`);
    const bytes = new Uint8Array(e.end - e.begin);
    await this.#file.seek(this.#dataStart + e.begin, Deno.SeekMode.Start);
    await readExactly(this.#file, bytes, `${this.path}: tensor "${name}"`);
    return { dtype: e.dtype, shape: [...e.shape], bytes };
  }

  async readF32(name: string): Promise<HostTensor> {
    return rawToF32(this.path, name, await this.read(name));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}
