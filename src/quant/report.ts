/**
 * The quantization report: a JSON object (written as quant_report.json and,
 * trimmed, printed by `quantize --json`) and a readable per-layer table for
 * stderr: chosen ratio and loss before/after per scaling group, clip shrink
 * and quantization error per linear, seconds per phase.
 *
 * @example
 * ```ts
 * import { buildReport, formatReportTable } from "./report.ts";
 * const r = buildReport({
 *   out: "out", method: "rtn", settings: { bits: 4, groupSize: 32, zeroPoint: true },
 *   layout: "gemm", clip: false, seconds: 1.5, calibration: null, provenance: {},
 *   layers: [{ layer: 0, scaling: [], linears: [{ name: "q_proj", clipShrinkMean: 1, quantError: 0.01 }],
 *     seconds: { quantize: 0.1 } }],
 * });
 * console.log(r.layers[0].linears[0].quant_error); // 0.01
 * console.log(formatReportTable(r).includes("q_proj")); // true
 * ```
 * @module
 */

import type { LayerReport, QuantSettings } from "./types.ts";

/** One scaling group's search result, as reported. */
export interface ScalingReportJson {
  /** "prev op -> linears", e.g. "input_layernorm -> q_proj,k_proj,v_proj". */
  group: string;
  /** Chosen ratio r (s = x_mean^r / w_mean^(1-r)); 0 when `scaled` is false. */
  ratio: number;
  /** False when no scaling (s = 1) beat every candidate: the group is left unscaled. */
  scaled: boolean;
  /** Scale rule of the chosen candidate: "duo" (x^r / w^(1-r)) or "x" (x^r). */
  rule?: "duo" | "x";
  /** Loss with unscaled quantized weights (s = 1). */
  loss_before: number;
  /** Loss with the chosen scales. */
  loss_after: number;
}

/** One linear's result, as reported. */
export interface LinearReportJson {
  /** Module name within the layer, e.g. "self_attn.q_proj". */
  name: string;
  /** Mean clip shrink chosen (1 = no clipping). */
  clip_shrink_mean: number;
  /** Relative quantization error. */
  quant_error: number;
}

/** One layer, as reported. */
export interface LayerReportJson {
  /** Layer index. */
  layer: number;
  /** Per scaling group. */
  scaling: ScalingReportJson[];
  /** Per linear. */
  linears: LinearReportJson[];
  /** Seconds per phase. */
  seconds: Record<string, number>;
}

/** Calibration facts in the report. */
export interface CalibrationReportJson {
  /** File name. */
  file: string;
  /** sha256 of its bytes. */
  sha256: string;
  /** Windows used. */
  samples: number;
  /** Tokens per window. */
  seqlen: number;
  /** Seed of the window choice. */
  seed: number;
  /** Readable summary (notes when fewer than the paper's 128 x 512). */
  description: string;
}

/** Perplexity before and after quantization on a held-out text. */
export interface ValidationReportJson {
  /** The text file. */
  file: string;
  /** Tokens in its stream. */
  tokens: number;
  /** Full-precision perplexity. */
  fp_ppl: number;
  /** Perplexity of the written quantized checkpoint. */
  quant_ppl: number;
  /** quant_ppl / fp_ppl. */
  ratio: number;
}

/** The whole report (quant_report.json). */
export interface QuantReport {
  /** Output directory. */
  out: string;
  /** "awq" or "rtn". */
  method: "awq" | "rtn";
  /** Bits per weight. */
  bits: number;
  /** Group size (0 = per channel). */
  group_size: number;
  /** Zero point on. */
  zero_point: boolean;
  /** "gemm" or "gemv" packing. */
  layout: "gemm" | "gemv";
  /** Clip search run. */
  clip: boolean;
  /** Wall seconds of the quantization. */
  seconds: number;
  /** Seconds per phase, summed over layers. */
  phase_seconds: Record<string, number>;
  /** Calibration used (null for RTN). */
  calibration: CalibrationReportJson | null;
  /** Per layer. */
  layers: LayerReportJson[];
  /** Perplexity check, when asked for. */
  validation?: ValidationReportJson;
  /** Provenance (the same record as the safetensors metadata). */
  provenance: Record<string, string>;
}

/** Inputs of {@link buildReport}. */
export interface ReportInput {
  /** Output directory. */
  out: string;
  /** Method. */
  method: "awq" | "rtn";
  /** Quantizer settings. */
  settings: QuantSettings;
  /** Packing. */
  layout: "gemm" | "gemv";
  /** Clip search run. */
  clip: boolean;
  /** Wall seconds. */
  seconds: number;
  /** Calibration (null for RTN). */
  calibration: CalibrationReportJson | null;
  /** Layer reports from the pipeline. */
  layers: readonly LayerReport[];
  /** Provenance record. */
  provenance: Record<string, string>;
}

/**
 * A layer report in the report's snake_case JSON form.
 *
 * @example
 * ```ts
 * import { layerReportJson } from "./report.ts";
 * const j = layerReportJson({
 *   layer: 0, scaling: [{ group: "v_proj -> o_proj", ratio: 0.3, lossBefore: 2, lossAfter: 1 }],
 *   linears: [], seconds: { scale: 0.5 },
 * });
 * console.log(j.scaling[0].loss_after); // 1
 * ```
 */
export function layerReportJson(l: LayerReport): LayerReportJson {
  return {
    layer: l.layer,
    scaling: l.scaling.map((s) => ({
      group: s.group,
      ratio: s.ratio,
      scaled: s.scaled ?? true,
      ...(s.rule ? { rule: s.rule } : {}),
      loss_before: s.lossBefore,
      loss_after: s.lossAfter,
    })),
    linears: l.linears.map((x) => ({
      name: x.name,
      clip_shrink_mean: x.clipShrinkMean,
      quant_error: x.quantError,
    })),
    seconds: { ...l.seconds },
  };
}

/**
 * Builds the report object from the pipeline's results (phase seconds summed
 * over layers).
 *
 * @example
 * ```ts
 * import { buildReport } from "./report.ts";
 * const r = buildReport({
 *   out: "o", method: "rtn", settings: { bits: 4, groupSize: 32, zeroPoint: true },
 *   layout: "gemm", clip: false, seconds: 1, calibration: null, provenance: {},
 *   layers: [
 *     { layer: 0, scaling: [], linears: [], seconds: { quantize: 0.25 } },
 *     { layer: 1, scaling: [], linears: [], seconds: { quantize: 0.5 } },
 *   ],
 * });
 * console.log(r.phase_seconds); // { quantize: 0.75 }
 * ```
 */
export function buildReport(input: ReportInput): QuantReport {
  const phase: Record<string, number> = {};
  for (const l of input.layers) {
    for (const [k, v] of Object.entries(l.seconds)) phase[k] = (phase[k] ?? 0) + v;
  }
  return {
    out: input.out,
    method: input.method,
    bits: input.settings.bits,
    group_size: input.settings.groupSize,
    zero_point: input.settings.zeroPoint,
    layout: input.layout,
    clip: input.clip,
    seconds: input.seconds,
    phase_seconds: phase,
    calibration: input.calibration,
    layers: input.layers.map(layerReportJson),
    provenance: input.provenance,
  };
}

/**
 * The `--json` summary: `{"out","method","bits","group_size","seconds","layers"}`
 * plus `"validation"` when it was run.
 *
 * @example
 * ```ts ignore
 * console.log(JSON.stringify(reportSummary(report)));
 * ```
 */
export function reportSummary(r: QuantReport): Record<string, unknown> {
  const s: Record<string, unknown> = {
    out: r.out,
    method: r.method,
    bits: r.bits,
    group_size: r.group_size,
    seconds: r.seconds,
    layers: r.layers,
  };
  if (r.validation) s.validation = r.validation;
  return s;
}

function num(x: number, width: number): string {
  if (!Number.isFinite(x)) return String(x).padStart(width);
  const a = Math.abs(x);
  const t = a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : x.toPrecision(4);
  return t.padStart(width);
}

function pad(s: string, width: number): string {
  return s.length >= width ? s : s + " ".repeat(width - s.length);
}

/**
 * The readable table: one block per layer, a row per scaling group (ratio,
 * loss before and after) and per linear (clip shrink, quantization error),
 * then the layer's seconds per phase; totals at the end.
 *
 * @example
 * ```ts ignore
 * console.error(formatReportTable(report));
 * ```
 */
export function formatReportTable(r: QuantReport): string {
  const lines: string[] = [];
  const gz = r.group_size === 0 ? "per-channel" : `g${r.group_size}`;
  lines.push(
    `${r.method.toUpperCase()} w${r.bits} ${gz} ${r.zero_point ? "zero-point" : "symmetric"} ` +
      `${r.layout}${r.method === "awq" ? (r.clip ? " clip" : " no-clip") : ""}` +
      (r.calibration ? `; calibration ${r.calibration.description}` : ""),
  );
  const nameW = Math.max(
    24,
    ...r.layers.flatMap((l) => [...l.scaling.map((s) => s.group), ...l.linears.map((x) => x.name)])
      .map((s) => s.length + 2),
  );
  lines.push(
    `${pad("layer", 6)}${pad("group / linear", nameW)}${"ratio".padStart(7)}` +
      `${"loss before".padStart(12)}${"loss after".padStart(12)}${"clip".padStart(7)}` +
      `${"q error".padStart(11)}`,
  );
  for (const l of r.layers) {
    let first = true;
    const tag = () => {
      const s = first ? String(l.layer) : "";
      first = false;
      return pad(s, 6);
    };
    for (const s of l.scaling) {
      lines.push(
        `${tag()}${pad(s.group, nameW)}${
          (s.scaled ? (s.rule === "x" ? "x" : "") + s.ratio.toFixed(2) : "none").padStart(7)
        }` +
          `${num(s.loss_before, 12)}${num(s.loss_after, 12)}`,
      );
    }
    for (const x of l.linears) {
      lines.push(
        `${tag()}${pad(x.name, nameW)}${"".padStart(31)}` +
          `${x.clip_shrink_mean.toFixed(3).padStart(7)}${num(x.quant_error, 11)}`,
      );
    }
    const phases = Object.entries(l.seconds).map(([k, v]) => `${k} ${v.toFixed(2)}s`).join(", ");
    lines.push(`${tag()}time: ${phases || "-"}`);
  }
  const total = Object.entries(r.phase_seconds).map(([k, v]) => `${k} ${v.toFixed(2)}s`)
    .join(", ");
  lines.push(`total ${r.seconds.toFixed(2)} s${total ? ` (${total})` : ""}`);
  if (r.validation) {
    const v = r.validation;
    lines.push(
      `validation on ${v.file} (${v.tokens} tokens): FP ppl ${v.fp_ppl.toFixed(4)}, ` +
        `quantized ppl ${v.quant_ppl.toFixed(4)}, ratio ${v.ratio.toFixed(4)}`,
    );
  }
  return lines.join("\n");
}
