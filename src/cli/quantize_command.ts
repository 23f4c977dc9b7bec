/**
 * `cli.ts quantize --model PATH --out DIR`: AWQ (or RTN) quantization to an
 * AutoAWQ checkpoint, through {@link quantize}. Progress (layer, phase, ETA)
 * and the per-layer table go to stderr; with `--json` stdout gets exactly one
 * JSON object at the end.
 *
 * @example
 * ```ts ignore
 * await quantizeCommand([
 *   "--model", "stories260K.bin", "--out", "stories260K-awq", "--group-size", "32", "--json",
 * ]);
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { quantize } from "../quant/quantize_api.ts";
import { formatReportTable, type QuantReport, reportSummary } from "../quant/report.ts";
import { numberOption, type OptionValues, parseCommandArgs, requiredString } from "./args.ts";
import { ProgressBar } from "./progress_bar.ts";

/** Usage text of the quantize command. */
export const QUANTIZE_USAGE = `usage: cli.ts quantize --model PATH --out DIR [options]
  --model PATH         HF directory or llama2.c .bin
  --out DIR            output AutoAWQ checkpoint directory (must not exist)
  --method awq|rtn     AWQ (default) or the round-to-nearest baseline
  --bits 3|4|8         bits per weight (default 4)
  --group-size G       input channels per group: 128 (default), 64, 32, ... or 0 (per channel)
  --zero-point BOOL    asymmetric with zero point (default true) or symmetric (false)
  --calib FILE         calibration text or .jsonl with "text" fields
                       (default ../shared/data/tinystories-calib.txt)
  --samples N          calibration windows (default 128)
  --seqlen L           tokens per window (default 512, capped to the model context)
  --seed S             seed of the window choice (default 0)
  --no-clip            skip the clip search
  --duo-scaling RULE   true: AutoAWQ's s = x^r / w^(1-r) (default); false: llm-awq's
                       s = x^r; both: search both rules' candidates (2x the work)
  --layout gemm|gemv   qweight packing (default gemm, AutoAWQ's)
  --validate FILE      after quantizing, FP and quantized perplexity on FILE (held-out text)
  --resume             continue an interrupted run from DIR.partial
  --force              replace an existing output directory
  --date ISO           pin the provenance date (also: AWQ_EDGE_DATE)
  --tokenizer PATH     tokenizer (default: beside the model)
  --json               print one JSON object on stdout`;

/** Parses a boolean option given as a value (true/false/1/0/yes/no). */
function boolOption(values: OptionValues, name: string, fallback: boolean): boolean {
  const v = values[name];
  if (v === undefined) return fallback;
  const s = String(v).toLowerCase();
  if (["true", "1", "yes", "on"].includes(s)) return true;
  if (["false", "0", "no", "off"].includes(s)) return false;
  throw new RequestError(`--${name} must be true or false (got "${v}")`);
}

/** `--duo-scaling true|false|both`. */
function scaleRuleOption(values: OptionValues): boolean | "both" {
  const v = values["duo-scaling"];
  if (v !== undefined && String(v).toLowerCase() === "both") return "both";
  try {
    return boolOption(values, "duo-scaling", true);
  } catch {
    throw new RequestError(`--duo-scaling must be true, false or both (got "${v}")`);
  }
}

/** An integer option; non-integers are a RequestError naming the option. */
function intOption(values: OptionValues, name: string): number | undefined {
  const n = numberOption(values, name);
  if (n !== undefined && !Number.isInteger(n)) {
    throw new RequestError(`--${name} must be an integer (got "${values[name]}")`);
  }
  return n;
}

/** Runs quantize with CLI arguments; prints the table (and JSON); returns the report. */
export async function quantizeCommand(args: string[]): Promise<QuantReport> {
  const { values } = parseCommandArgs(args, {
    model: { type: "string" },
    out: { type: "string" },
    method: { type: "string" },
    bits: { type: "string" },
    "group-size": { type: "string" },
    "zero-point": { type: "string" },
    calib: { type: "string" },
    samples: { type: "string" },
    seqlen: { type: "string" },
    seed: { type: "string" },
    "no-clip": { type: "boolean" },
    "duo-scaling": { type: "string" },
    layout: { type: "string" },
    validate: { type: "string" },
    resume: { type: "boolean" },
    force: { type: "boolean" },
    date: { type: "string" },
    tokenizer: { type: "string" },
    json: { type: "boolean" },
  });
  const model = requiredString(values, "model");
  const out = requiredString(values, "out");
  let bar: ProgressBar | undefined;
  const log = (line: string) => {
    bar?.done();
    console.error(line);
  };
  const report = await quantize(model, out, {
    method: values.method as "awq" | "rtn" | undefined,
    bits: intOption(values, "bits"),
    groupSize: intOption(values, "group-size"),
    zeroPoint: boolOption(values, "zero-point", true),
    calib: values.calib as string | undefined,
    samples: intOption(values, "samples"),
    seqlen: intOption(values, "seqlen"),
    seed: intOption(values, "seed"),
    clip: !values["no-clip"],
    duoScaling: scaleRuleOption(values),
    layout: values.layout as "gemm" | "gemv" | undefined,
    validate: values.validate as string | undefined,
    resume: Boolean(values.resume),
    force: Boolean(values.force),
    date: values.date as string | undefined,
    tokenizer: values.tokenizer as string | undefined,
    log,
    onProgress: (p) => {
      // One bar for the whole job (so its ETA is the job's), noting layer and phase.
      bar ??= new ProgressBar("quantize", 1000, { unit: "‰" });
      bar.update(Math.round(p.fraction * 1000), `layer ${p.layer + 1}/${p.layers} ${p.phase}`);
    },
  });
  bar?.done();
  console.error(formatReportTable(report));
  console.error(`wrote ${report.out}`);
  if (values.json) console.log(JSON.stringify(reportSummary(report)));
  return report;
}
