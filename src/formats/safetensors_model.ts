/**
 * A Hugging Face checkpoint directory as one tensor store: either a single
 * `model.safetensors` or shards listed by `model.safetensors.index.json`.
 *
 * @example
 * ```ts ignore
 * import { openSafetensorsModel } from "./safetensors_model.ts";
 * const m = await openSafetensorsModel("./my-model");
 * try {
 *   if (m.has("lm_head.weight")) console.log((await m.readF32("lm_head.weight")).shape);
 * } finally {
 *   m.close();
 * }
 * ```
 * @module
 */

import { join } from "node:path";
import { FormatError } from "../errors.ts";
import type { HostTensor } from "../model/weights.ts";
import {
  openSafetensors,
  type RawTensor,
  type SafetensorsEntry,
  type SafetensorsFile,
} from "./safetensors_read.ts";
import { pathExists as exists } from "./path_exists.ts";

/** All tensors of a checkpoint directory, whichever file holds them. */
export interface SafetensorsModel {
  /** The directory. */
  readonly dir: string;
  /** Whether a tensor of this name exists. */
  has(name: string): boolean;
  /** Every tensor name. */
  names(): string[];
  /** A tensor's dtype, shape and offsets (undefined when absent). */
  entry(name: string): SafetensorsEntry | undefined;
  /** Reads a tensor's raw bytes. */
  read(name: string): Promise<RawTensor>;
  /** Reads a float tensor as float32. */
  readF32(name: string): Promise<HostTensor>;
  /** Closes every shard. */
  close(): void;
}

function parseIndex(path: string, text: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path}: not JSON (${(e as Error).message})`);
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) {
    throw new FormatError(`${path}: field "weight_map" is missing or not an object`);
  }
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== "string" || shard === "" || shard.includes("/") || shard.includes("\\")) {
      throw new FormatError(
        `${path}: weight_map entry "${name}" has bad shard name ${JSON.stringify(shard)}`,
      );
    }
    map.set(name, shard);
  }
  return map;
}

/**
 * Opens the checkpoint in `dir`. With `model.safetensors.index.json` it opens
 * every shard named in `weight_map` and checks that each listed tensor is in
 * its shard; otherwise it opens `model.safetensors`. Throws
 * {@link FormatError} naming the file (and tensor) when the index is bad, a
 * shard is missing, a listed tensor is absent from its shard, or neither file
 * exists.
 *
 * @example
 * ```ts
 * import { openSafetensorsModel } from "./safetensors_model.ts";
 * import { writeSafetensors } from "./safetensors_write.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/model.safetensors`, [
 *   { name: "w", dtype: "F32", shape: [1], data: new Float32Array([3]) },
 * ]);
 * const m = await openSafetensorsModel(dir);
 * console.log(m.names()); // ["w"]
 * m.close();
 * ```
 */
export async function openSafetensorsModel(dir: string): Promise<SafetensorsModel> {
  const indexPath = join(dir, "model.safetensors.index.json");
  const singlePath = join(dir, "model.safetensors");
  const files = new Map<string, SafetensorsFile>();
  const where = new Map<string, SafetensorsFile>();
  try {
    if (await exists(indexPath)) {
      const weightMap = parseIndex(indexPath, await Deno.readTextFile(indexPath));
      for (const shard of new Set(weightMap.values())) {
        const p = join(dir, shard);
        if (!(await exists(p))) {
          throw new FormatError(`${indexPath}: shard file "${shard}" does not exist in ${dir}`);
        }
        files.set(shard, await openSafetensors(p));
      }
      for (const [name, shard] of weightMap) {
        const f = files.get(shard)!;
        if (!f.tensors.has(name)) {
          throw new FormatError(
            `${indexPath}: tensor "${name}" is listed in shard "${shard}" but ${f.path} does not contain it`,
          );
        }
        where.set(name, f);
      }
    } else if (await exists(singlePath)) {
      const f = await openSafetensors(singlePath);
      files.set("model.safetensors", f);
      for (const name of f.tensors.keys()) where.set(name, f);
    } else {
      throw new FormatError(
        `${dir}: neither model.safetensors nor model.safetensors.index.json found`,
      );
    }
  } catch (e) {
    for (const f of files.values()) f.close();
    throw e;
  }
  const get = (name: string): SafetensorsFile => {
    const f = where.get(name);
    if (!f) throw new FormatError(`${dir}: no tensor "${name}" in the checkpoint`);
    return f;
  };
  return {
    dir,
    has: (name) => where.has(name),
    names: () => [...where.keys()],
    entry: (name) => where.get(name)?.tensors.get(name),
    read: (name) => get(name).read(name),
    readF32: (name) => get(name).readF32(name),
    close: () => {
      for (const f of files.values()) f.close();
    },
  };
}
