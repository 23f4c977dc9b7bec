/**
 * Loads WGSL kernels from `shaders/`, one file per kernel family, composing a
 * weight-access prelude (`weights_f32.wgsl` or `weights_f16.wgsl`) in front of
 * kernels that read weight matrices.
 *
 * @example
 * ```ts
 * import { loadShaderSource } from "./shader_source.ts";
 * const wgsl = await loadShaderSource("matmul", "f16");
 * console.log(wgsl.includes("fn gemv"));
 * ```
 * @module
 */

import { GpuError } from "../errors.ts";

/**
 * Element type of the KV cache (`kv_f32.wgsl` / `kv_f16.wgsl` preludes of
 * the RoPE/KV-store and attention kernels); f16 needs shader-f16.
 */
export type KvDType = "f32" | "f16";

/** Storage type of a weight matrix as the kernels read it. */
export type WeightDType = "f32" | "f16";

/**
 * A weight-access prelude: `f32`/`f16` give `weight(i)` and `weight4(i)` over
 * any index; `f32x4`/`f16x4` give `weight4a(i4)`, one load per aligned group of 4.
 */
export type WeightPrelude = WeightDType | `${WeightDType}x4` | "f16x8";

const SHADER_DIR = new URL("../../shaders/", import.meta.url);
const texts = new Map<string, Promise<string>>();

async function readText(url: URL): Promise<string> {
  try {
    if (url.protocol === "file:") return await Deno.readTextFile(url);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return await res.text();
  } catch (e) {
    throw new GpuError(`Cannot read shader ${url.href}: ${(e as Error).message}`);
  }
}

function file(name: string): Promise<string> {
  let t = texts.get(name);
  if (!t) {
    t = readText(new URL(`${name}.wgsl`, SHADER_DIR));
    texts.set(name, t);
  }
  return t;
}

/**
 * Returns the WGSL text of kernel family `name`, preceded by the weight
 * prelude for `weights` and the KV-cache prelude for `kv` when given. A line `//!include other` in a shader is
 * replaced by `shaders/other.wgsl` (WGSL has no imports; shared helpers such as
 * the group quantizer live in one file this way).
 */
export async function loadShaderSource(
  name: string,
  weights?: WeightPrelude,
  kv?: KvDType,
): Promise<string> {
  let text = await withIncludes(await file(name), new Set([name]));
  if (weights) text = `${await file(`weights_${weights}`)}\n${text}`;
  // The KV prelude goes first: kv_f16.wgsl starts with `enable f16;`.
  if (kv) text = `${await file(`kv_${kv}`)}\n${text}`;
  return text;
}

async function withIncludes(text: string, seen: Set<string>): Promise<string> {
  const lines = await Promise.all(
    text.split("\n").map(async (line) => {
      const m = /^\/\/!include\s+([\w-]+)\s*$/.exec(line);
      if (!m) return line;
      if (seen.has(m[1])) throw new GpuError(`shaders: include cycle through ${m[1]}.wgsl`);
      return await withIncludes(await file(m[1]), new Set([...seen, m[1]]));
    }),
  );
  return lines.join("\n");
}
