/**
 * Safetensors writer: single files and sharded checkpoints
 * (`model-0000N-of-0000M.safetensors` + `model.safetensors.index.json`), both
 * written atomically.
 *
 * Layout follows the reference implementation: tensors sorted by dtype size
 * (largest first, which keeps every tensor aligned to its element size) and
 * then by name; header padded with spaces to a multiple of 8 bytes.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors_write.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/a.safetensors`, [
 *   { name: "w", dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
 * ], { format: "pt" });
 * ```
 * @module
 */

import { join } from "node:path";
import { FormatError } from "../errors.ts";
import { withAtomicFile, writeAll, writeFileAtomic } from "./atomic.ts";
import { DTYPE_SIZES, isSafetensorsDtype, numElements, type SafetensorsDtype } from "./dtype.ts";
import { f32ToBf16, f32ToF16 } from "./half.ts";

/** One tensor to write. A Float32Array given for F16/BF16 is converted (round-to-nearest-even). */
export interface TensorToWrite {
  /** Tensor name. */
  name: string;
  /** Stored dtype. */
  dtype: SafetensorsDtype;
  /** Shape. */
  shape: number[];
  /** Values: raw little-endian bytes, float32 values, 16-bit patterns (F16/BF16) or int32. */
  data: Uint8Array | Float32Array | Uint16Array | Int32Array;
}

function toBytes(path: string, t: TensorToWrite): Uint8Array {
  const where = `${path}: tensor "${t.name}"`;
  if (!isSafetensorsDtype(t.dtype)) {
    throw new FormatError(`${where}: unsupported dtype ${JSON.stringify(t.dtype)}`);
  }
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new FormatError(`${where}: bad shape ${JSON.stringify(t.shape)}`);
  }
  const d = t.data;
  let bytes: Uint8Array;
  if (d instanceof Uint8Array) {
    bytes = d;
  } else if (d instanceof Float32Array) {
    if (t.dtype === "F32") bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    else if (t.dtype === "F16") bytes = new Uint8Array(f32ToF16(d).buffer);
    else if (t.dtype === "BF16") bytes = new Uint8Array(f32ToBf16(d).buffer);
    else throw new FormatError(`${where}: Float32Array data cannot be stored as ${t.dtype}`);
  } else if (d instanceof Uint16Array) {
    if (t.dtype !== "F16" && t.dtype !== "BF16") {
      throw new FormatError(`${where}: Uint16Array data cannot be stored as ${t.dtype}`);
    }
    bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  } else if (d instanceof Int32Array) {
    if (t.dtype !== "I32") {
      throw new FormatError(`${where}: Int32Array data cannot be stored as ${t.dtype}`);
    }
    bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  } else {
    throw new FormatError(`${where}: unsupported data array type`);
  }
  const expected = numElements(t.shape) * DTYPE_SIZES[t.dtype];
  if (bytes.length !== expected) {
    throw new FormatError(
      `${where}: ${bytes.length} bytes but shape [${t.shape}] of ${t.dtype} needs ${expected}`,
    );
  }
  return bytes;
}

function referenceOrder(a: TensorToWrite, b: TensorToWrite): number {
  const s = DTYPE_SIZES[b.dtype] - DTYPE_SIZES[a.dtype];
  if (s !== 0) return s;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function checkNames(path: string, tensors: TensorToWrite[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === "__metadata__") {
      throw new FormatError(`${path}: "__metadata__" is not a valid tensor name`);
    }
    if (seen.has(t.name)) throw new FormatError(`${path}: tensor "${t.name}" given twice`);
    seen.add(t.name);
  }
}

/**
 * Builds the padded header (8-byte length prefix included) for tensors that
 * are already in file order.
 */
function buildHeader(
  sorted: Array<{ t: TensorToWrite; bytes: Uint8Array }>,
  metadata: Record<string, string> | undefined,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let off = 0;
  for (const { t, bytes } of sorted) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes.length] };
    off += bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Writes tensors to one safetensors file atomically (temp file + rename).
 * Throws {@link FormatError} naming the tensor when a name repeats, a dtype is
 * unknown, or the data's size disagrees with its shape.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors_write.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/m.safetensors`, [
 *   { name: "ids", dtype: "I32", shape: [3], data: new Int32Array([1, 2, 3]) },
 * ]);
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  checkNames(path, tensors);
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new FormatError(`${path}: metadata field "${k}" is not a string`);
      }
    }
  }
  const sorted = tensors.map((t) => ({ t, bytes: toBytes(path, t) }))
    .sort((a, b) => referenceOrder(a.t, b.t));
  const header = buildHeader(sorted, metadata);
  await withAtomicFile(path, async (f) => {
    await writeAll(f, header);
    for (const { bytes } of sorted) await writeAll(f, bytes);
  });
}

/** Options of {@link writeSafetensorsSharded}. */
export interface ShardOptions {
  /** Largest data size of one shard in bytes (a bigger single tensor gets a shard of its own). */
  maxShardBytes: number;
  /** `__metadata__` written into every shard. */
  metadata?: Record<string, string>;
}

/**
 * Writes a checkpoint into `dir` as Hugging Face does: one `model.safetensors`
 * when everything fits in `maxShardBytes`, otherwise
 * `model-0000N-of-0000M.safetensors` shards plus `model.safetensors.index.json`
 * (`{"metadata": {"total_size"}, "weight_map": {name: shard}}`). Each file is
 * written atomically. Returns the file names written.
 *
 * @example
 * ```ts
 * import { writeSafetensorsSharded } from "./safetensors_write.ts";
 * const dir = await Deno.makeTempDir();
 * const files = await writeSafetensorsSharded(dir, [
 *   { name: "a", dtype: "F32", shape: [4], data: new Float32Array(4) },
 *   { name: "b", dtype: "F32", shape: [4], data: new Float32Array(4) },
 * ], { maxShardBytes: 16 });
 * console.log(files.length); // 3 (two shards and the index)
 * ```
 */
export async function writeSafetensorsSharded(
  dir: string,
  tensors: TensorToWrite[],
  options: ShardOptions,
): Promise<string[]> {
  const { maxShardBytes, metadata } = options;
  if (!(maxShardBytes > 0)) {
    throw new FormatError(`${dir}: maxShardBytes must be positive, got ${maxShardBytes}`);
  }
  checkNames(dir, tensors);
  for (const t of tensors) toBytes(dir, t); // validate before writing anything
  const byName = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const shards: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  let total = 0;
  for (const t of byName) {
    const size = numElements(t.shape) * DTYPE_SIZES[t.dtype];
    if (current.length > 0 && currentBytes + size > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += size;
    total += size;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  if (shards.length === 1) {
    await writeSafetensors(join(dir, "model.safetensors"), shards[0], metadata);
    return ["model.safetensors"];
  }
  const m = shards.length;
  const pad = (i: number) => String(i).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  for (let i = 0; i < m; i++) {
    const name = `model-${pad(i + 1)}-of-${pad(m)}.safetensors`;
    await writeSafetensors(join(dir, name), shards[i], metadata);
    for (const t of shards[i]) weightMap[t.name] = name;
    files.push(name);
  }
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  await writeFileAtomic(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify(index, null, 2) + "\n",
  );
  files.push("model.safetensors.index.json");
  return files;
}
