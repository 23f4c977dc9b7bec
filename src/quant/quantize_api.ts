/**
 * `quantize(modelPath, outDir, options)`: the whole job behind
 * `cli.ts quantize`, as a typed API. It checks every option and input before
 * any heavy work, loads the model, draws the calibration windows, runs the
 * layer-by-layer pipeline ({@link quantizeModel}) with per-layer checkpoints in
 * `<out>.partial` (kept on failure, for `resume`), writes an AutoAWQ
 * checkpoint with its provenance and quant_report.json, optionally measures
 * FP and quantized perplexity on a held-out text (loading the written files
 * back), and only then moves the finished directory to `outDir`: an error
 * never leaves a half-written output.
 *
 * @example
 * ```ts ignore
 * import { quantize } from "./quantize_api.ts";
 * const report = await quantize("../shared/models/stories260K/stories260K.bin", "out-awq", {
 *   method: "awq", bits: 4, groupSize: 32, samples: 32, seqlen: 256,
 *   onProgress: (p) => console.error(p.layer, p.phase, p.fraction),
 * });
 * console.log(report.layers.length, report.seconds);
 * ```
 * @module
 */

import { basename, dirname, resolve } from "node:path";
import { RequestError } from "../errors.ts";
import { TextModel } from "../engine/text_model.ts";
import { removeIfExists, replaceDirAtomic, writeFileAtomic } from "../formats/atomic.ts";
import { writeAwqCheckpoint } from "../formats/awq_checkpoint.ts";
import { checkPackable } from "../formats/awq_pack.ts";
import { acquireGpu, type GpuContext } from "../gpu/device.ts";
import { loadModel } from "../model/load_model.ts";
import type { LlamaConfig } from "../model/config.ts";
import {
  type Calibration,
  DEFAULT_CALIBRATION,
  DEFAULT_CALIBRATION_FILE,
  loadCalibration,
} from "./calibration.ts";
import { buildProvenance, hashModelFiles, sha256File } from "./provenance.ts";
import { quantizeModel, type QuantizeProgress } from "./quantize_model.ts";
import { buildReport, type QuantReport } from "./report.ts";
import type { QuantSettings } from "./types.ts";
import { statOrNull } from "../formats/path_exists.ts";

/** Options of {@link quantize}; every field has a default. */
export interface QuantizeApiOptions {
  /** "awq" (default) or "rtn" (round-to-nearest baseline, no calibration). */
  method?: "awq" | "rtn";
  /** Bits per weight: 3, 4 (default) or 8. */
  bits?: number;
  /** Input channels per group: 128 (default), 64, 32, ... (a power of two >= 32) or 0 (per channel). */
  groupSize?: number;
  /** Asymmetric with a zero point (default true). */
  zeroPoint?: boolean;
  /** Calibration file, plain text or .jsonl (default: ../shared/data/tinystories-calib.txt). */
  calib?: string;
  /** Calibration windows (default 128). */
  samples?: number;
  /** Tokens per window (default 512, capped to the model's context). */
  seqlen?: number;
  /** Seed of the window choice (default 0). */
  seed?: number;
  /** Run the clip search (AWQ only; default true). */
  clip?: boolean;
  /**
   * AutoAWQ's scale rule s = x^r / w^(1-r) (true, default), llm-awq's s = x^r
   * (false), or "both" (each group takes the better rule; twice the search).
   */
  duoScaling?: boolean | "both";
  /** Continue from the layers finished in `<out>.partial`. */
  resume?: boolean;
  /** Replace an existing output directory (and a stale `<out>.partial`). */
  force?: boolean;
  /** Packing of qweight: "gemm" (default, AutoAWQ) or "gemv". */
  layout?: "gemm" | "gemv";
  /** A held-out text: measure FP and quantized perplexity on it after quantizing. */
  validate?: string;
  /** Pin the provenance date (else AWQ_EDGE_DATE, else now). */
  date?: string;
  /** Tokenizer path override (default: found with the model). */
  tokenizer?: string;
  /** Use this device (not destroyed); else one is acquired when needed. */
  gpu?: GpuContext;
  /** Pipeline progress (layer, phase, fraction of the whole job). */
  onProgress?: (p: QuantizeProgress) => void;
  /** Lines worth showing a user (what was loaded, decided, written). */
  log?: (line: string) => void;
  /** Aborts the job (between phases) with a RequestError. */
  signal?: AbortSignal;
}

/** The options after defaults and checks. */
export interface ResolvedQuantizeOptions {
  /** Method. */
  method: "awq" | "rtn";
  /** Quantizer settings. */
  settings: QuantSettings;
  /** Calibration file (AWQ only). */
  calib?: string;
  /** Windows. */
  samples: number;
  /** Tokens per window as asked (undefined: 512 capped to the context). */
  seqlen?: number;
  /** Seed. */
  seed: number;
  /** Clip search. */
  clip: boolean;
  /** Scale rule: AutoAWQ's (true) or llm-awq's (false). */
  duoScaling: boolean | "both";
  /** Packing. */
  layout: "gemm" | "gemv";
}

const VALID_BITS = [3, 4, 8];

/** Whether `g` is a group size we offer: 0 (per channel) or a power of two >= 32. */
function isGroupSize(g: number): boolean {
  return g === 0 || (Number.isInteger(g) && g >= 32 && (g & (g - 1)) === 0);
}

/**
 * Applies defaults and checks every option that does not need the model.
 *
 * @throws {RequestError} naming the option.
 *
 * @example
 * ```ts
 * import { resolveQuantizeOptions } from "./quantize_api.ts";
 * const o = resolveQuantizeOptions({ method: "rtn", bits: 3, groupSize: 64 });
 * console.log(o.settings); // { bits: 3, groupSize: 64, zeroPoint: true }
 * ```
 */
export function resolveQuantizeOptions(o: QuantizeApiOptions): ResolvedQuantizeOptions {
  const method = o.method ?? "awq";
  if (method !== "awq" && method !== "rtn") {
    throw new RequestError(`--method must be awq or rtn (got "${method}")`);
  }
  const bits = o.bits ?? 4;
  if (!VALID_BITS.includes(bits)) {
    throw new RequestError(`--bits must be 3, 4 or 8 (got ${bits})`);
  }
  const groupSize = o.groupSize ?? 128;
  if (!isGroupSize(groupSize)) {
    throw new RequestError(
      `--group-size must be 0 (per channel) or a power of two >= 32 such as 32, 64, 128 ` +
        `(got ${groupSize})`,
    );
  }
  const layout = o.layout ?? "gemm";
  if (layout !== "gemm" && layout !== "gemv") {
    throw new RequestError(`--layout must be gemm or gemv (got "${layout}")`);
  }
  const samples = o.samples ?? DEFAULT_CALIBRATION.samples;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RequestError(`--samples must be a positive integer (got ${samples})`);
  }
  if (o.seqlen !== undefined && (!Number.isInteger(o.seqlen) || o.seqlen < 2)) {
    throw new RequestError(`--seqlen must be an integer >= 2 (got ${o.seqlen})`);
  }
  const seed = o.seed ?? DEFAULT_CALIBRATION.seed;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RequestError(`--seed must be an integer in 0..4294967295 (got ${seed})`);
  }
  return {
    method,
    settings: { bits: bits as 3 | 4 | 8, groupSize, zeroPoint: o.zeroPoint ?? true },
    calib: method === "awq" ? (o.calib ?? DEFAULT_CALIBRATION_FILE) : o.calib,
    samples,
    seqlen: o.seqlen,
    seed,
    clip: o.clip ?? true,
    duoScaling: o.duoScaling ?? true,
    layout,
  };
}

/**
 * The input sizes of a layer's linears, by module name: q/k/v/gate/up take
 * the hidden size, o takes heads x head size, down the FFN size.
 */
function linearInputs(c: LlamaConfig): Array<[string, number]> {
  return [
    ["self_attn.q_proj", c.hiddenSize],
    ["self_attn.o_proj", c.numHeads * c.headDim],
    ["mlp.down_proj", c.intermediateSize],
  ];
}

/**
 * Checks that the model can be quantized with `settings`: the group size must
 * not exceed any linear's input size.
 *
 * @throws {RequestError} naming the linear and its input size.
 *
 * @example
 * ```ts ignore
 * checkModelFits(weights.config, { bits: 4, groupSize: 128, zeroPoint: true }, "m.bin");
 * ```
 */
export function checkModelFits(c: LlamaConfig, settings: QuantSettings, model: string): void {
  for (const [name, inputs] of linearInputs(c)) {
    if (settings.groupSize > inputs) {
      throw new RequestError(
        `${model}: --group-size ${settings.groupSize} is larger than the input size ${inputs} ` +
          `of ${name} (use a smaller group size, or 0 for per-channel)`,
      );
    }
  }
}

/** Why each distinct linear shape cannot be packed as is (empty when all can). */
function packingNotes(c: LlamaConfig, s: QuantSettings, layout: "gemm" | "gemv"): string[] {
  const q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim;
  const shapes: Array<[string, number, number]> = [
    ["q_proj", q, c.hiddenSize],
    ["k_proj/v_proj", kv, c.hiddenSize],
    ["o_proj", c.hiddenSize, q],
    ["gate_proj/up_proj", c.intermediateSize, c.hiddenSize],
    ["down_proj", c.hiddenSize, c.intermediateSize],
  ];
  const notes: string[] = [];
  for (const [name, outF, inF] of shapes) {
    const why = checkPackable(outF, inF, s, layout);
    if (why) notes.push(`${name} [${outF}, ${inF}]: ${why}`);
  }
  return notes;
}

async function realOrResolved(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return resolve(path);
  }
}

/** Checks a text file exists and has non-whitespace content; returns its text. */
async function readTextInput(path: string, what: string, option: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new RequestError(`${path}: ${what} not found (${option})`);
    }
    throw new RequestError(`${path}: cannot read ${what} (${(e as Error).message})`);
  }
  if (text.trim() === "") throw new RequestError(`${path}: ${what} is empty (${option})`);
  return text;
}

/** Throws a RequestError when `signal` has been aborted. */
function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new RequestError("quantization aborted");
}

/**
 * The work directory of per-layer checkpoints for `outDir`: `<outDir>.partial`.
 *
 * @example
 * ```ts
 * import { partialDir } from "./quantize_api.ts";
 * console.log(partialDir("out/model-awq/")); // out/model-awq.partial
 * ```
 */
export function partialDir(outDir: string): string {
  return `${outDir.replace(/\/+$/, "")}.partial`;
}

/** Every parameter, as strings (for provenance and the resume manifest). */
function parameterRecord(
  o: ResolvedQuantizeOptions,
  seqlen: number | undefined,
): Record<string, string> {
  const p: Record<string, string> = {
    quant_method: "awq",
    method: o.method,
    bits: String(o.settings.bits),
    group_size: String(o.settings.groupSize),
    zero_point: String(o.settings.zeroPoint),
    version: o.layout,
  };
  if (o.method === "awq") {
    p.clip = String(o.clip);
    p.duo_scaling = String(o.duoScaling);
    p.calib_samples = String(o.samples);
    p.calib_seqlen = String(seqlen);
    p.calib_seed = String(o.seed);
  }
  return p;
}

/**
 * Quantizes the model at `modelPath` (HF directory or llama2.c `.bin`) into an
 * AutoAWQ checkpoint directory `outDir`; returns the report that is also
 * written there as quant_report.json.
 *
 * @throws {RequestError} for bad options, an existing output (without force or
 * resume), a missing or too-short calibration file, calibrating on the
 * validation text, a group size the model cannot use, or an abort.
 * @throws {FormatError} / {ConfigError} for an unreadable or unsupported model.
 * @throws {GpuError} when AWQ or validation needs a device and none is found.
 *
 * @example
 * ```ts ignore
 * import { quantize } from "./quantize_api.ts";
 * const r = await quantize("stories260K.bin", "stories260K-rtn", { method: "rtn", groupSize: 32 });
 * console.log(r.layers[0].linears.map((l) => l.quant_error));
 * ```
 */
export async function quantize(
  modelPath: string,
  outDir: string,
  options: QuantizeApiOptions = {},
): Promise<QuantReport> {
  const log = options.log ?? (() => {});
  const o = resolveQuantizeOptions(options);
  // Output: refuse an existing one, and a missing parent, before any work.
  if (outDir.trim() === "") throw new RequestError("--out is required");
  const out = outDir.replace(/\/+$/, "") || outDir;
  if ((await statOrNull(out)) && !options.force && !options.resume) {
    throw new RequestError(`${out}: output directory already exists (pass --force to replace it)`);
  }
  const parent = await statOrNull(dirname(resolve(out)));
  if (!parent?.isDirectory) {
    throw new RequestError(`${out}: parent directory ${dirname(out)} does not exist`);
  }
  const work = partialDir(out);
  const workInfo = await statOrNull(work);
  if (workInfo && !options.resume && !options.force) {
    throw new RequestError(
      `${work} holds an interrupted run: pass --resume to continue it or --force to start over`,
    );
  }
  // Inputs: calibration and validation texts exist, and are not the same file.
  let validateText: string | undefined;
  if (options.validate !== undefined) {
    validateText = await readTextInput(options.validate, "validation text", "--validate");
  }
  if (o.method === "awq") {
    const calib = o.calib!;
    if (!(await statOrNull(calib))?.isFile) {
      throw new RequestError(
        options.calib === undefined
          ? `${calib}: default calibration file not found (pass --calib FILE)`
          : `${calib}: calibration file not found`,
      );
    }
    if (
      options.validate !== undefined &&
      ((await realOrResolved(calib)) === (await realOrResolved(options.validate)) ||
        (await sha256File(calib)) === (await sha256File(options.validate)))
    ) {
      throw new RequestError(
        `${calib}: the calibration file is (a copy of) the --validate file; never calibrate on the ` +
          `evaluation text`,
      );
    }
  }
  checkAborted(options.signal);

  // Model, shapes, calibration.
  const t0 = performance.now();
  const { weights, tokenizer, format } = await loadModel(modelPath, options.tokenizer);
  const c = weights.config;
  checkModelFits(c, o.settings, modelPath);
  log(
    `model ${modelPath} (${format}, ${c.modelType}, ${c.numLayers} layers, dim ${c.hiddenSize}, ` +
      `ffn ${c.intermediateSize}, context ${c.maxPositionEmbeddings})`,
  );
  const unpackable = packingNotes(c, o.settings, o.layout);
  if (unpackable.length > 0) {
    log(
      `note: ${unpackable.join("; ")}: written padded (this project's extension of the ` +
        `AutoAWQ format; other tools will not load it)`,
    );
  }
  let calibration: Calibration | undefined;
  let seqlen: number | undefined;
  if (o.method === "awq") {
    const asked = o.seqlen ?? DEFAULT_CALIBRATION.seqlen;
    seqlen = Math.min(asked, c.maxPositionEmbeddings);
    if (seqlen < asked) {
      log(`calibration: --seqlen ${asked} capped to the model's context ${seqlen}`);
    }
    calibration = await loadCalibration(o.calib!, tokenizer, {
      samples: o.samples,
      seqlen,
      seed: o.seed,
    });
    log(`calibration: ${calibration.description}`);
  }
  const source = await hashModelFiles(modelPath);
  const parameters = parameterRecord(o, seqlen);

  // The resume manifest: a partial run may only be continued with the same job.
  const manifest = JSON.stringify({
    source_sha256: source.sha256,
    ...parameters,
    calib_sha256: calibration?.fileSha256 ?? "",
  });
  const manifestPath = `${work}/awq_edge_job.json`;
  if (workInfo && options.resume) {
    let old: string | null = null;
    try {
      old = await Deno.readTextFile(manifestPath);
    } catch {
      old = null;
    }
    if (old !== null && old.trim() !== manifest) {
      throw new RequestError(
        `${work} was made by a run with other parameters or inputs (${manifestPath}); ` +
          `pass --force to start over`,
      );
    }
  } else if (workInfo) {
    await removeIfExists(work); // --force: start over
  }
  await Deno.mkdir(work, { recursive: true });
  await writeFileAtomic(manifestPath, manifest + "\n");

  // The pipeline.
  const ownsGpu = !options.gpu && (o.method === "awq" || validateText !== undefined);
  const gpu = options.gpu ?? (ownsGpu ? await acquireGpu() : undefined);
  let staging: string | undefined;
  try {
    if (gpu && o.method === "awq") {
      log(`device: ${gpu.adapterDescription}${gpu.isSoftware ? " [software adapter]" : ""}`);
    }
    const result = await quantizeModel(weights, {
      method: o.method,
      settings: o.settings,
      calibration: calibration?.samples,
      clip: o.clip,
      duoScaling: o.duoScaling,
      gpu: o.method === "awq" ? gpu : undefined,
      workDir: work,
      onProgress: options.onProgress,
      signal: options.signal,
    });
    const provenance = buildProvenance({
      source,
      parameters,
      calibration: calibration ? { path: o.calib!, sha256: calibration.fileSha256 } : undefined,
      date: options.date,
    });
    const report = buildReport({
      out,
      method: o.method,
      settings: o.settings,
      layout: o.layout,
      clip: o.method === "awq" && o.clip,
      seconds: result.seconds,
      calibration: calibration
        ? {
          file: basename(o.calib!),
          sha256: calibration.fileSha256,
          samples: o.samples,
          seqlen: seqlen!,
          seed: o.seed,
          description: calibration.description,
        }
        : null,
      layers: result.layers,
      provenance,
    });

    // Write into a staging directory beside the output; move it into place last.
    staging = `${dirname(out)}/.${basename(out)}.staging-${
      crypto.getRandomValues(new Uint32Array(1))[0].toString(36)
    }`;
    await writeAwqCheckpoint(staging, {
      weights: result.weights,
      quantized: result.quantized,
      settings: o.settings,
      layout: o.layout,
      tokenizerFiles: {
        "tokenizer.json": JSON.stringify(tokenizer.tokenizerJson, null, 2) + "\n",
        "tokenizer_config.json": JSON.stringify(tokenizer.tokenizerConfig, null, 2) + "\n",
      },
      metadata: provenance,
      extraFiles: { "quant_report.json": JSON.stringify(report, null, 2) + "\n" },
    });
    log(`wrote the checkpoint in ${((performance.now() - t0) / 1000).toFixed(2)} s`);

    if (validateText !== undefined) {
      report.validation = await validatePerplexity(
        modelPath,
        staging,
        options.validate!,
        validateText,
        { gpu: gpu!, tokenizer: options.tokenizer, log, signal: options.signal },
      );
      await writeFileAtomic(
        `${staging}/quant_report.json`,
        JSON.stringify(report, null, 2) + "\n",
      );
    }
    checkAborted(options.signal);
    await replaceDirAtomic(staging, out);
    staging = undefined;
    await removeIfExists(work);
    return report;
  } finally {
    if (staging) await removeIfExists(staging);
    if (ownsGpu) gpu?.destroy();
  }
}

/**
 * Perplexity of the source model and of the written quantized checkpoint on
 * `text` (the perplexity protocol), both through {@link TextModel}.
 */
async function validatePerplexity(
  modelPath: string,
  quantDir: string,
  file: string,
  text: string,
  o: {
    gpu: GpuContext;
    tokenizer?: string;
    log: (line: string) => void;
    signal?: AbortSignal;
  },
): Promise<QuantReport["validation"]> {
  const measure = async (path: string, tokenizer?: string) => {
    const m = await TextModel.open(path, { gpu: o.gpu, tokenizer });
    try {
      return await m.perplexity(text, { signal: o.signal });
    } finally {
      m.close();
    }
  };
  const fp = await measure(modelPath, o.tokenizer);
  o.log(`validation: FP ppl ${fp.ppl.toFixed(4)} on ${file} (${fp.tokens} tokens)`);
  const q = await measure(quantDir);
  o.log(`validation: quantized ppl ${q.ppl.toFixed(4)} (ratio ${(q.ppl / fp.ppl).toFixed(4)})`);
  return {
    file: basename(file),
    tokens: fp.tokens,
    fp_ppl: fp.ppl,
    quant_ppl: q.ppl,
    ratio: q.ppl / fp.ppl,
  };
}
