/**
 * Quantizes a Llama-family model layer by layer: RTN, or AWQ (activation
 * statistics, scale search, scale folding and clip search on the GPU).
 * Only one layer's weights and the cached calibration activations are on the
 * device at a time.
 *
 * @example
 * ```ts ignore
 * const r = await quantizeModel(weights, {
 *   method: "awq", settings: { bits: 4, groupSize: 32, zeroPoint: true },
 *   calibration: samples, gpu,
 * });
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { writeFileAtomic } from "../formats/atomic.ts";
import { openSafetensors } from "../formats/safetensors_read.ts";
import { writeSafetensors } from "../formats/safetensors_write.ts";
import type { GpuContext } from "../gpu/device.ts";
import {
  type HostTensor,
  LAYER_LINEARS,
  type LayerWeights,
  type LlamaWeights,
} from "../model/weights.ts";
import { awqLayer, copyLayer, QuantizationError } from "./awq_layer.ts";
import { groupWidth } from "./awq_kernels.ts";
import { dequantizeLinear, groupCount, quantizeLinear } from "./quantizer.ts";
import type { LayerReport, QuantizedLinear, QuantSettings } from "./types.ts";

/** Progress of a running quantization. */
export interface QuantizeProgress {
  /** Layer being processed (0-based). */
  layer: number;
  /** Layers in all. */
  layers: number;
  /** Phase within the layer: "inputs", "stats", "scale", "clip", "quantize". */
  phase: string;
  /** Fraction of the whole job done, 0..1. */
  fraction: number;
}

/** Options of {@link quantizeModel}. */
export interface QuantizeOptions {
  /** "awq" (default) or "rtn" (round-to-nearest, no scaling or clipping). */
  method?: "awq" | "rtn";
  /** Bits, group size, zero point. */
  settings: QuantSettings;
  /** Calibration sequences of token ids, all of one length (AutoAWQ-style blocks cut from the tokenized stream); required for AWQ. */
  calibration?: readonly Int32Array[];
  /** Run the clip search (AWQ only; default true). */
  clip?: boolean;
  /** AutoAWQ's s = x^r / w^(1-r) (true, default) or llm-awq's s = x^r. */
  duoScaling?: boolean | "both";
  /** The device (AWQ only). */
  gpu?: GpuContext;
  /**
   * Folder for per-layer checkpoints: finished layers are saved there and, when
   * it already holds some, skipped (resume after an interrupt).
   */
  workDir?: string;
  /** Called as phases progress. */
  onProgress?: (p: QuantizeProgress) => void;
  /** Aborts between phases with a RequestError. */
  signal?: AbortSignal;
}

/** The quantized model. */
export interface QuantizeResult {
  /**
   * The full-precision parts after AWQ scale folding (norm weights changed;
   * linear weights as scaled before quantization).
   */
  weights: LlamaWeights;
  /** Quantized linears by HF module name, e.g. "model.layers.0.self_attn.q_proj". */
  quantized: Map<string, QuantizedLinear>;
  /** One report per layer. */
  layers: LayerReport[];
  /** Wall seconds. */
  seconds: number;
}

/** HF module names of a layer's linears, with their LayerWeights fields. */
export const LINEARS = LAYER_LINEARS;

const PHASES = ["inputs", "stats", "scale", "clip", "quantize"];

/** Checks bits / group size / zero point against the model; RequestError naming the field. */
export function validateSettings(weights: LlamaWeights, s: QuantSettings): void {
  if (![3, 4, 8].includes(s.bits)) {
    throw new RequestError(`bits must be 3, 4 or 8 (got ${s.bits})`);
  }
  if (!Number.isInteger(s.groupSize) || s.groupSize < 0) {
    throw new RequestError(
      `group size must be an integer >= 0 (got ${s.groupSize}; 0 = per-channel)`,
    );
  }
  const c = weights.config;
  const smallest = Math.min(c.hiddenSize, c.numHeads * c.headDim, c.intermediateSize);
  if (s.groupSize > smallest) {
    throw new RequestError(
      `group size ${s.groupSize} is larger than the model's smallest linear input (${smallest})`,
    );
  }
}

/** Embedding rows of every calibration token: the first layer's input [N, dim]. */
function embedTokens(weights: LlamaWeights, samples: readonly Int32Array[]): Float32Array {
  const dim = weights.config.hiddenSize;
  const N = samples.reduce((n, s) => n + s.length, 0);
  const x = new Float32Array(N * dim);
  let t = 0;
  for (const s of samples) {
    for (const id of s) {
      if (id < 0 || id >= weights.config.vocabSize) {
        throw new RequestError(`calibration token id ${id} is outside the vocabulary`);
      }
      x.set(weights.embed.data.subarray(id * dim, (id + 1) * dim), t * dim);
      t++;
    }
  }
  return x;
}

function relativeError(w: Float32Array, ql: QuantizedLinear): number {
  const d = dequantizeLinear(ql);
  let num = 0;
  let den = 0;
  for (let i = 0; i < w.length; i++) {
    num += (w[i] - d[i]) ** 2;
    den += w[i] ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : 0;
}

function meanShrink(w: HostTensor, clip: Float32Array | undefined, groupSize: number): number {
  if (!clip) return 1;
  const [rows, cols] = w.shape;
  const nGroups = groupCount(cols, groupSize);
  const g = groupWidth(cols, groupSize);
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    for (let gi = 0; gi < nGroups; gi++) {
      let mx = 0;
      for (let c = gi * g; c < Math.min(cols, (gi + 1) * g); c++) {
        mx = Math.max(mx, Math.abs(w.data[r * cols + c]));
      }
      sum += mx > 0 ? Math.min(1, clip[r * nGroups + gi] / mx) : 1;
    }
  }
  return sum / (rows * nGroups);
}

/** Saved state of one finished layer (for --resume). */
interface LayerCheckpoint {
  layer: LayerWeights;
  quantized: Map<string, QuantizedLinear>;
  report: LayerReport;
  next?: Float32Array;
}

async function saveLayer(
  dir: string,
  index: number,
  cp: LayerCheckpoint,
): Promise<void> {
  const tensors: Parameters<typeof writeSafetensors>[1] = [];
  for (const [field, t] of Object.entries(cp.layer)) {
    if (t) {
      tensors.push({
        name: `fp.${field}`,
        dtype: "F32",
        shape: (t as HostTensor).shape,
        data: (t as HostTensor).data,
      });
    }
  }
  for (const [name, ql] of cp.quantized) {
    const nGroups = ql.scales.length / ql.outFeatures;
    tensors.push({
      name: `${name}.q`,
      dtype: "U8",
      shape: [ql.outFeatures, ql.inFeatures],
      data: ql.q,
    });
    tensors.push({
      name: `${name}.scales`,
      dtype: "F32",
      shape: [ql.outFeatures, nGroups],
      data: ql.scales,
    });
    tensors.push({
      name: `${name}.zeros`,
      dtype: "U8",
      shape: [ql.outFeatures, nGroups],
      data: ql.zeros,
    });
  }
  if (cp.next) tensors.push({ name: "next", dtype: "F32", shape: [cp.next.length], data: cp.next });
  await writeSafetensors(`${dir}/layer-${String(index).padStart(4, "0")}.safetensors`, tensors, {
    report: JSON.stringify(cp.report),
  });
}

async function loadLayer(
  dir: string,
  index: number,
  source: LayerWeights,
  settings: QuantSettings,
): Promise<LayerCheckpoint | null> {
  const path = `${dir}/layer-${String(index).padStart(4, "0")}.safetensors`;
  try {
    await Deno.stat(path);
  } catch {
    return null;
  }
  const f = await openSafetensors(path);
  try {
    const layer = {} as Record<string, HostTensor>;
    for (const field of Object.keys(source)) {
      if ((source as unknown as Record<string, unknown>)[field]) {
        layer[field] = await f.readF32(`fp.${field}`);
      }
    }
    const quantized = new Map<string, QuantizedLinear>();
    for (const [name] of LINEARS) {
      const full = `model.layers.${index}.${name}`;
      const q = await f.read(`${full}.q`);
      const zeros = await f.read(`${full}.zeros`);
      const scales = await f.readF32(`${full}.scales`);
      quantized.set(full, {
        outFeatures: q.shape[0],
        inFeatures: q.shape[1],
        settings: { ...settings },
        q: new Uint8Array(q.bytes),
        scales: scales.data,
        zeros: new Uint8Array(zeros.bytes),
      });
    }
    const next = f.tensors.has("next") ? (await f.readF32("next")).data : undefined;
    const report = JSON.parse(f.metadata.report ?? "{}") as LayerReport;
    return { layer: layer as unknown as LayerWeights, quantized, report, next };
  } finally {
    f.close();
  }
}

/** Quantizes `weights` (not modified; a copy is returned). */
export async function quantizeModel(
  weights: LlamaWeights,
  options: QuantizeOptions,
): Promise<QuantizeResult> {
  const t0 = performance.now();
  const method = options.method ?? "awq";
  const settings = options.settings;
  validateSettings(weights, settings);
  const c = weights.config;
  const nLayers = c.numLayers;
  let x: Float32Array | undefined;
  let seqLen = 0;
  if (method === "awq") {
    const cal = options.calibration;
    if (!cal || cal.length === 0) throw new RequestError("AWQ needs calibration samples");
    seqLen = cal[0].length;
    if (cal.some((s) => s.length !== seqLen) || seqLen < 2) {
      throw new RequestError("calibration samples must all have the same length (>= 2)");
    }
    if (!options.gpu) throw new RequestError("AWQ needs a GPU device (options.gpu)");
    x = embedTokens(weights, cal);
  }
  if (options.workDir) await Deno.mkdir(options.workDir, { recursive: true });
  const layers: LayerWeights[] = [];
  const quantized = new Map<string, QuantizedLinear>();
  const reports: LayerReport[] = [];
  const progress = (layer: number, phase: string) => {
    const within = Math.max(0, PHASES.indexOf(phase)) / PHASES.length;
    options.onProgress?.({ layer, layers: nLayers, phase, fraction: (layer + within) / nLayers });
  };
  for (let i = 0; i < nLayers; i++) {
    if (options.signal?.aborted) throw new RequestError("quantization aborted");
    const source = weights.layers[i];
    const resumed = options.workDir ? await loadLayer(options.workDir, i, source, settings) : null;
    if (resumed && (method === "rtn" || resumed.next)) {
      layers.push(resumed.layer);
      for (const [k, v] of resumed.quantized) quantized.set(k, v);
      reports.push(resumed.report);
      x = resumed.next;
      progress(i, "quantize");
      continue;
    }
    let layer: LayerWeights;
    let clip = new Map<string, Float32Array>();
    let report: LayerReport;
    let next: Float32Array | undefined;
    if (method === "awq") {
      const r = await awqLayer(options.gpu!, c, source, x!, seqLen, settings, {
        clip: options.clip,
        duoScaling: options.duoScaling,
        index: i,
        onPhase: (p) => progress(i, p),
      });
      layer = r.layer;
      clip = r.clip;
      next = r.next;
      report = {
        layer: i,
        scaling: r.scaling.map((d) => ({
          group: d.group,
          ratio: d.ratio,
          scaled: d.scaled,
          rule: d.rule,
          lossBefore: d.lossBefore,
          lossAfter: d.lossAfter,
        })),
        linears: [],
        seconds: r.seconds,
      };
    } else {
      layer = copyLayer(source);
      report = { layer: i, scaling: [], linears: [], seconds: {} };
    }
    progress(i, "quantize");
    const tq = performance.now();
    const q = new Map<string, QuantizedLinear>();
    for (const [name, field] of LINEARS) {
      const w = layer[field] as HostTensor;
      if (!w.data.every(Number.isFinite)) {
        throw new QuantizationError(`layer ${i}: ${name} has NaN/inf weights (phase: quantize)`);
      }
      const short = name.split(".")[1];
      const caps = clip.get(short);
      const ql = quantizeLinear(w.data, w.shape[0], w.shape[1], settings, caps);
      const err = relativeError(w.data, ql);
      if (!Number.isFinite(err)) {
        throw new QuantizationError(`layer ${i}: ${name} has NaN/inf weights (phase: quantize)`);
      }
      q.set(`model.layers.${i}.${name}`, ql);
      report.linears.push({
        name,
        clipShrinkMean: meanShrink(w, caps, settings.groupSize),
        quantError: err,
      });
    }
    report.seconds.quantize = (performance.now() - tq) / 1000;
    if (options.workDir) await saveLayer(options.workDir, i, { layer, quantized: q, report, next });
    layers.push(layer);
    for (const [k, v] of q) quantized.set(k, v);
    reports.push(report);
    x = next;
  }
  if (options.workDir) {
    await writeFileAtomic(`${options.workDir}/done.json`, JSON.stringify({ layers: nLayers }));
  }
  return {
    weights: { ...weights, layers },
    quantized,
    layers: reports,
    seconds: (performance.now() - t0) / 1000,
  };
}
