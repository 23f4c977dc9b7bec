/**
 * AutoAWQ checkpoint directories: {@link writeAwqCheckpoint} writes one and
 * {@link loadAwqWeights} reads one back into {@link LlamaWeights}, with every
 * quantized linear dequantized to float32 on load (a dequantize-on-load path;
 * the GPU then runs it like an fp16 model).
 *
 * Layout (see `awq_pack.ts` for the tensors of one linear):
 * - `config.json`: the model's HF config with `"torch_dtype": "float16"` and
 *   `"quantization_config": {"quant_method": "awq", "bits", "group_size",
 *   "zero_point", "version": "gemm" | "gemv", "modules_to_not_convert": null}`
 *   (`group_size` -1 for per-channel);
 * - `model.safetensors`: `<module>.qweight`/`.qzeros`/`.scales` for the seven
 *   linears of every layer (q, k, v, o, gate, up, down), everything else
 *   (embeddings, norms, lm_head, q/k/v biases) in float16 under the usual HF
 *   names, and the caller's provenance strings in `__metadata__` (plus
 *   `"format": "pt"`, which transformers requires);
 * - tokenizer files copied verbatim, `generation_config.json` (a default one
 *   unless given) and any extra files such as `quant_report.json`.
 *
 * **Padding extension (awq-edge only).** AutoAWQ's format needs
 * `out_features % 8 == 0` (GEMM) or `in_features % 8 == 0` (GEMV) and
 * `in_features % group_size == 0`. For a linear that does not fit (e.g.
 * stories260K's hidden size 172 at any group size, babyllama's 352 at g64 or
 * g128) the writer pads the weight with codes equal to the zero point (so the
 * padding dequantizes to exactly 0) up to `paddedShape()`, and records the real
 * sizes in `quantization_config.awq_edge_padding: {"<module>": [out, in]}`;
 * the loader slices them back. Other tools (vLLM, transformers, AutoAWQ) will
 * NOT load such a checkpoint, nor 3-bit or 8-bit ones (see `awq_pack.ts`).
 *
 * **Scales.** Scales are stored as float16. The loader dequantizes with the
 * stored f16 scale, `(q - zero) * scale`, in float32; since
 * `quantizeLinear` already rounds scales to f16, the weights loaded back equal
 * `dequantizeLinear(ql)` exactly (for a `QuantizedLinear` built elsewhere,
 * `dequantizeLinear(roundScalesToF16(ql))`).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { FormatError } from "../errors.ts";
import type { LlamaConfig } from "../model/config.ts";
import {
  type HostTensor,
  LAYER_LINEARS,
  type LlamaWeights,
  quantizedTensor,
} from "../model/weights.ts";
import { dequantizeLinear } from "../quant/quantizer.ts";
import type { QuantizedLinear, QuantSettings } from "../quant/types.ts";
import { makeTempDirBeside, removeIfExists, replaceDirAtomic } from "./atomic.ts";
import {
  type AwqLayout,
  checkPackable,
  packAwq,
  type PackedAwq,
  paddedShape,
  padQuantized,
  sliceQuantized,
  unpackAwq,
} from "./awq_pack.ts";
import { parseHfConfig, toHfConfigJson } from "./hf_config.ts";
import { assembleWeights, type HfTensorSpec, hfTensorSpecs, tensorForSpec } from "./hf_layout.ts";
import { openSafetensorsModel, type SafetensorsModel } from "./safetensors_model.ts";
import { type TensorToWrite, writeSafetensors } from "./safetensors_write.ts";
import { pathExists as exists } from "./path_exists.ts";

/** What {@link writeAwqCheckpoint} writes. */
export interface AwqCheckpointInput {
  /**
   * The model's full-precision parts: embeddings, norms (already carrying the
   * folded AWQ scales), lm_head and q/k/v biases. Its linear weights are not
   * written (the `quantized` ones are).
   */
  weights: LlamaWeights;
  /**
   * The quantized linears by module name, e.g.
   * `"model.layers.0.self_attn.q_proj"`; all seven of every layer.
   */
  quantized: Map<string, QuantizedLinear>;
  /** The settings every quantized linear was made with. */
  settings: QuantSettings;
  /** Tensor layout: AutoAWQ "gemm" (what most tools read) or "gemv". */
  layout: AwqLayout;
  /** Tokenizer files by file name, copied verbatim. */
  tokenizerFiles?: Record<string, string | Uint8Array>;
  /** Provenance strings for the safetensors `__metadata__`. */
  metadata?: Record<string, string>;
  /** More files by name (e.g. `quant_report.json`), written verbatim. */
  extraFiles?: Record<string, string | Uint8Array>;
  /** Replace an existing `outDir` instead of refusing. */
  force?: boolean;
}

/** The `quantization_config` of an AWQ config.json, parsed. */
export interface AwqQuantConfig {
  /** Bits, group size (0 = per-channel) and zero point. */
  settings: QuantSettings;
  /** Tensor layout. */
  layout: AwqLayout;
  /** Real `[out, in]` of the linears the awq-edge padding extension padded. */
  padding: Map<string, [number, number]>;
}

/** Module name (without `.weight`) when the spec is a quantizable linear weight. */
function linearModule(spec: HfTensorSpec): string | undefined {
  if (spec.slot.kind !== "layer") return undefined;
  const field = spec.slot.field;
  if (!LAYER_LINEARS.some(([, f]) => f === field)) return undefined;
  return spec.name.slice(0, -".weight".length);
}

/**
 * The module names of every quantizable linear of a model, in file order
 * (`model.layers.N.self_attn.q_proj`, ..., `model.layers.N.mlp.down_proj`).
 *
 * @example
 * ```ts
 * import { awqModuleNames } from "./awq_checkpoint.ts";
 * import type { LlamaConfig } from "../model/config.ts";
 * function count(c: LlamaConfig): number {
 *   return awqModuleNames(c).length; // 7 * c.numLayers
 * }
 * ```
 */
export function awqModuleNames(config: LlamaConfig): string[] {
  const names: string[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    for (const [suffix] of LAYER_LINEARS) names.push(`model.layers.${l}.${suffix}`);
  }
  return names;
}

const RESERVED = new Set(["config.json", "model.safetensors", "model.safetensors.index.json"]);

function checkFileName(outDir: string, name: string): void {
  if (
    name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\\") ||
    RESERVED.has(name)
  ) {
    throw new FormatError(`${outDir}: cannot write an extra file named ${JSON.stringify(name)}`);
  }
}

function sameSettings(a: QuantSettings, b: QuantSettings): boolean {
  return a.bits === b.bits && a.groupSize === b.groupSize && a.zeroPoint === b.zeroPoint;
}

function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/**
 * Writes an AutoAWQ checkpoint directory `outDir` (see the module doc),
 * atomically: everything goes into a temporary directory beside it that is
 * renamed into place, so a failure leaves nothing behind. Throws
 * {@link FormatError} for an existing `outDir` (unless `force`), a missing,
 * unknown or mis-shaped quantized linear, a linear made with other settings,
 * or a missing full-precision tensor.
 *
 * @example
 * ```ts ignore
 * import { writeAwqCheckpoint } from "./awq_checkpoint.ts";
 * await writeAwqCheckpoint("out-awq", {
 *   weights, quantized, settings: { bits: 4, groupSize: 128, zeroPoint: true },
 *   layout: "gemm", tokenizerFiles: { "tokenizer.json": tokText },
 *   metadata: { tool: "awq-edge 0.1.0" },
 * });
 * ```
 */
export async function writeAwqCheckpoint(outDir: string, input: AwqCheckpointInput): Promise<void> {
  const { weights, quantized, settings, layout } = input;
  const config = weights.config;
  if (layout !== "gemm" && layout !== "gemv") {
    throw new FormatError(`${outDir}: layout ${JSON.stringify(layout)} is not "gemm" or "gemv"`);
  }
  if (settings.bits !== 3 && settings.bits !== 4 && settings.bits !== 8) {
    throw new FormatError(`${outDir}: bits ${settings.bits} is not 3, 4 or 8`);
  }
  if (!Number.isInteger(settings.groupSize) || settings.groupSize < 0) {
    throw new FormatError(`${outDir}: group size ${settings.groupSize} is not an integer >= 0`);
  }
  if (!input.force && (await exists(outDir))) {
    throw new FormatError(`${outDir}: already exists (pass force to replace it)`);
  }
  const files = new Map<string, string | Uint8Array>();
  for (const [name, data] of Object.entries(input.tokenizerFiles ?? {})) {
    checkFileName(outDir, name);
    files.set(name, data);
  }
  for (const [name, data] of Object.entries(input.extraFiles ?? {})) {
    checkFileName(outDir, name);
    files.set(name, data);
  }

  const tensors: TensorToWrite[] = [];
  const padding: Record<string, [number, number]> = {};
  const seen = new Set<string>();
  for (const spec of hfTensorSpecs(config)) {
    const module = linearModule(spec);
    if (!module) {
      const t = tensorForSpec(weights, spec);
      if (!t) throw new FormatError(`${outDir}: weights lack tensor "${spec.name}"`);
      if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
        throw new FormatError(
          `${outDir}: tensor "${spec.name}" has shape [${t.shape}], config implies [${spec.shape}]`,
        );
      }
      tensors.push({ name: spec.name, dtype: "F16", shape: spec.shape, data: t.data });
      continue;
    }
    seen.add(module);
    const ql = quantized.get(module);
    if (!ql) throw new FormatError(`${outDir}: no quantized weight for "${module}"`);
    const [outF, inF] = spec.shape;
    if (ql.outFeatures !== outF || ql.inFeatures !== inF) {
      throw new FormatError(
        `${outDir}: quantized "${module}" is [${ql.outFeatures}, ${ql.inFeatures}], ` +
          `config implies [${outF}, ${inF}]`,
      );
    }
    if (!sameSettings(ql.settings, settings)) {
      throw new FormatError(
        `${outDir}: quantized "${module}" was made with ${JSON.stringify(ql.settings)}, ` +
          `not ${JSON.stringify(settings)}`,
      );
    }
    const [outP, inP] = paddedShape(outF, inF, settings, layout);
    if (outP !== outF || inP !== inF) padding[module] = [outF, inF];
    const p = packAwq(padQuantized(ql, outP, inP), layout);
    tensors.push(
      { name: `${module}.qweight`, dtype: "I32", shape: p.qweight.shape, data: p.qweight.data },
      { name: `${module}.qzeros`, dtype: "I32", shape: p.qzeros.shape, data: p.qzeros.data },
      { name: `${module}.scales`, dtype: "F16", shape: p.scales.shape, data: p.scales.data },
    );
  }
  for (const name of quantized.keys()) {
    if (!seen.has(name)) {
      throw new FormatError(`${outDir}: quantized weight "${name}" is not a linear of this model`);
    }
  }

  const quantizationConfig: Record<string, unknown> = {
    quant_method: "awq",
    bits: settings.bits,
    group_size: settings.groupSize === 0 ? -1 : settings.groupSize,
    zero_point: settings.zeroPoint,
    version: layout,
    modules_to_not_convert: null,
  };
  if (Object.keys(padding).length > 0) quantizationConfig.awq_edge_padding = padding;
  const configJson = {
    ...toHfConfigJson(config, "float16"),
    torch_dtype: "float16",
    quantization_config: quantizationConfig,
  };
  if (!files.has("generation_config.json")) {
    files.set(
      "generation_config.json",
      jsonText({
        bos_token_id: config.bosTokenId,
        eos_token_id: config.eosTokenId,
        max_length: config.maxPositionEmbeddings,
      }),
    );
  }
  const metadata = { format: "pt", ...input.metadata };

  let tmp: string;
  try {
    tmp = await makeTempDirBeside(outDir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      throw new FormatError(`${outDir}: parent directory ${dirname(outDir)} does not exist`, {
        cause: e,
      });
    }
    throw e;
  }
  try {
    await Deno.writeTextFile(join(tmp, "config.json"), jsonText(configJson));
    await writeSafetensors(join(tmp, "model.safetensors"), tensors, metadata);
    for (const [name, data] of files) {
      if (typeof data === "string") await Deno.writeTextFile(join(tmp, name), data);
      else await Deno.writeFile(join(tmp, name), data);
    }
    await replaceDirAtomic(tmp, outDir);
  } catch (e) {
    await removeIfExists(tmp);
    throw e;
  }
}

/**
 * Whether a parsed config.json declares a quantized checkpoint (has a
 * `quantization_config` object). {@link loadAwqWeights} then decides whether
 * it is one we can read.
 *
 * @example
 * ```ts
 * import { hasQuantizationConfig } from "./awq_checkpoint.ts";
 * hasQuantizationConfig({ quantization_config: { quant_method: "awq" } }); // true
 * ```
 */
export function hasQuantizationConfig(json: unknown): boolean {
  const qc = (json as { quantization_config?: unknown } | null)?.quantization_config;
  return typeof qc === "object" && qc !== null;
}

/**
 * Whether `dir/config.json` declares a quantized checkpoint (false when it is
 * missing or not JSON: the ordinary loader then reports that).
 *
 * @example
 * ```ts ignore
 * import { isQuantizedCheckpoint } from "./awq_checkpoint.ts";
 * if (await isQuantizedCheckpoint("./model")) console.log("AWQ");
 * ```
 */
export async function isQuantizedCheckpoint(dir: string): Promise<boolean> {
  try {
    return hasQuantizationConfig(JSON.parse(await Deno.readTextFile(join(dir, "config.json"))));
  } catch {
    return false;
  }
}

/**
 * Parses and validates `quantization_config` of an AWQ config.json. Throws
 * {@link FormatError} naming the field: a quant_method other than "awq", a
 * version other than gemm/gemv (case-insensitive), bits outside {3, 4, 8}, a
 * group size that is not a positive integer or -1, a non-boolean zero_point or
 * a malformed `awq_edge_padding`.
 *
 * @example
 * ```ts
 * import { parseAwqQuantConfig } from "./awq_checkpoint.ts";
 * const q = parseAwqQuantConfig({
 *   quant_method: "awq", bits: 4, group_size: 128, zero_point: true, version: "gemm",
 * }, "config.json");
 * q.settings.groupSize; // 128
 * ```
 */
export function parseAwqQuantConfig(qc: unknown, file: string): AwqQuantConfig {
  const where = `${file}: quantization_config`;
  if (typeof qc !== "object" || qc === null || Array.isArray(qc)) {
    throw new FormatError(`${where} is missing or not an object`);
  }
  const o = qc as Record<string, unknown>;
  if (o.quant_method !== "awq") {
    throw new FormatError(
      `${where}.quant_method is ${JSON.stringify(o.quant_method)}; only "awq" is supported`,
    );
  }
  const version = typeof o.version === "string" ? o.version.toLowerCase() : o.version;
  if (version !== "gemm" && version !== "gemv") {
    throw new FormatError(
      `${where}.version is ${JSON.stringify(o.version)}; only "gemm" and "gemv" are supported`,
    );
  }
  if (o.bits !== 3 && o.bits !== 4 && o.bits !== 8) {
    throw new FormatError(`${where}.bits is ${JSON.stringify(o.bits)}; expected 3, 4 or 8`);
  }
  const g = o.group_size;
  if (typeof g !== "number" || !Number.isInteger(g) || (g < 1 && g !== -1)) {
    throw new FormatError(
      `${where}.group_size is ${JSON.stringify(g)}; expected a positive integer or -1`,
    );
  }
  const zp = o.zero_point ?? true;
  if (typeof zp !== "boolean") {
    throw new FormatError(`${where}.zero_point is ${JSON.stringify(zp)}; expected a boolean`);
  }
  const padding = new Map<string, [number, number]>();
  if (o.awq_edge_padding !== undefined && o.awq_edge_padding !== null) {
    const p = o.awq_edge_padding;
    if (typeof p !== "object" || Array.isArray(p)) {
      throw new FormatError(`${where}.awq_edge_padding is not an object`);
    }
    for (const [name, v] of Object.entries(p as Record<string, unknown>)) {
      if (
        !Array.isArray(v) || v.length !== 2 ||
        !v.every((d) => Number.isSafeInteger(d) && d > 0)
      ) {
        throw new FormatError(
          `${where}.awq_edge_padding["${name}"] is ${JSON.stringify(v)}; expected [out, in]`,
        );
      }
      padding.set(name, [v[0], v[1]]);
    }
  }
  return {
    settings: { bits: o.bits, groupSize: g === -1 ? 0 : g, zeroPoint: zp },
    layout: version,
    padding,
  };
}

async function readConfigJson(dir: string): Promise<{ path: string; json: unknown }> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FormatError(`${path}: config.json not found`, { cause: e });
    }
    throw e;
  }
  try {
    return { path, json: JSON.parse(text) };
  } catch (e) {
    throw new FormatError(`${path}: not JSON (${(e as Error).message})`);
  }
}

function shapeEq(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function readPacked(
  st: SafetensorsModel,
  dir: string,
  module: string,
): Promise<PackedAwq> {
  const want = { qweight: "I32", qzeros: "I32", scales: "F16" } as const;
  const out: Partial<Record<keyof PackedAwq, { data: Int32Array | Uint16Array; shape: number[] }>> =
    {};
  for (const key of ["qweight", "qzeros", "scales"] as const) {
    const name = `${module}.${key}`;
    const e = st.entry(name);
    if (!e) throw new FormatError(`${dir}: tensor "${name}" is missing`);
    if (e.dtype !== want[key]) {
      throw new FormatError(`${dir}: tensor "${name}" has dtype ${e.dtype}, expected ${want[key]}`);
    }
    if (e.shape.length !== 2) {
      throw new FormatError(`${dir}: tensor "${name}" has shape [${e.shape}], expected 2-D`);
    }
    const raw = await st.read(name);
    const bytes = raw.bytes.byteOffset % 4 === 0 ? raw.bytes : raw.bytes.slice();
    const n = e.shape[0] * e.shape[1];
    const data = key === "scales"
      ? new Uint16Array(bytes.buffer, bytes.byteOffset, n)
      : new Int32Array(bytes.buffer, bytes.byteOffset, n);
    out[key] = { data, shape: e.shape };
  }
  return out as unknown as PackedAwq;
}

/**
 * Loads an AutoAWQ checkpoint directory (GEMM or GEMV, ours or AutoAWQ's)
 * into {@link LlamaWeights}: quantized linears dequantized to float32 with
 * their stored f16 scales (HostTensor dtype "F16", so the GPU holds them as
 * f16: the float32 product `(q - zero) * scale` is rounded once more to f16
 * on upload, as fp16 AWQ kernels compute it), everything else as stored. Validates `quantization_config` (see
 * {@link parseAwqQuantConfig}) and each tensor's presence, dtype and shape,
 * and that the group size divides every (padded) input size; throws
 * {@link FormatError} naming the tensor or field.
 *
 * @example
 * ```ts ignore
 * import { loadAwqWeights } from "./awq_checkpoint.ts";
 * const w = await loadAwqWeights("./stories260K-awq-w4g32");
 * console.log(w.layers[0].wq.shape);
 * ```
 */
export async function loadAwqWeights(dir: string): Promise<LlamaWeights> {
  const { path, json } = await readConfigJson(dir);
  const config = parseHfConfig(json, path);
  const qc = parseAwqQuantConfig(
    (json as { quantization_config?: unknown }).quantization_config,
    path,
  );
  const { settings, layout, padding } = qc;
  const specs = hfTensorSpecs(config);
  const modules = new Set(awqModuleNames(config));
  for (const name of padding.keys()) {
    if (!modules.has(name)) {
      throw new FormatError(
        `${path}: quantization_config.awq_edge_padding names "${name}", not a linear of this model`,
      );
    }
  }
  const st = await openSafetensorsModel(dir);
  try {
    const known = new Set<string>();
    for (const s of specs) {
      const m = linearModule(s);
      if (m) { for (const k of ["qweight", "qzeros", "scales"]) known.add(`${m}.${k}`); }
      else known.add(s.name);
    }
    if (config.tieWordEmbeddings) known.add("lm_head.weight");
    for (const name of st.names()) {
      if (!known.has(name) && !/\.rotary_emb\.inv_freq$/.test(name)) {
        throw new FormatError(
          `${dir}: unexpected tensor "${name}" for a ${config.modelType} AWQ model with this config.json`,
        );
      }
    }
    return await assembleWeights(config, specs, async (s) => {
      const module = linearModule(s);
      let t: HostTensor;
      if (module) {
        const [outF, inF] = s.shape;
        const real = padding.get(module);
        if (real && !shapeEq(real, s.shape)) {
          throw new FormatError(
            `${path}: quantization_config.awq_edge_padding["${module}"] is [${real}], ` +
              `config.json implies [${s.shape}]`,
          );
        }
        const [outP, inP] = real ? paddedShape(outF, inF, settings, layout) : [outF, inF];
        const why = checkPackable(outP, inP, settings, layout);
        if (why) {
          throw new FormatError(
            `${dir}: "${module}" [${outP}, ${inP}] cannot be stored as AWQ ${layout} ` +
              `(group_size ${settings.groupSize || -1}, ${settings.bits}-bit): ${why}`,
          );
        }
        const packed = await readPacked(st, dir, module);
        const ql = sliceQuantized(
          unpackAwq(packed, outP, inP, settings, layout, `${dir}: tensor ${module}`),
          outF,
          inF,
        );
        t = quantizedTensor(ql, dequantizeLinear);
      } else {
        const e = st.entry(s.name);
        if (!e) throw new FormatError(`${dir}: tensor "${s.name}" is missing`);
        if (!shapeEq(e.shape, s.shape)) {
          throw new FormatError(
            `${dir}: tensor "${s.name}" has shape [${e.shape}], config.json implies [${s.shape}]`,
          );
        }
        if (e.dtype !== "F32" && e.dtype !== "F16" && e.dtype !== "BF16") {
          throw new FormatError(
            `${dir}: tensor "${s.name}" has dtype ${e.dtype}, expected a float`,
          );
        }
        t = await st.readF32(s.name);
      }
      return t;
    });
  } finally {
    st.close();
  }
}
