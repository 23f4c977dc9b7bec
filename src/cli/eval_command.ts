/**
 * `cli.ts eval --model PATH --text FILE`: perplexity with the protocol of
 * docs/formats.md.
 *
 * @example
 * ```ts ignore
 * await evalCommand(["--model", "stories260K.bin", "--text", "eval.txt", "--json"]);
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { evaluatePerplexity, type PerplexityResult } from "../engine/perplexity.ts";
import { buildTokenStream, windows } from "../engine/perplexity_stream.ts";
import { numberOption, parseCommandArgs, requiredString } from "./args.ts";
import { BACKEND_OPTIONS, BACKEND_USAGE, parseBackendOptions } from "./backend_options.ts";
import { openModel } from "./open_model.ts";
import { ProgressBar } from "./progress_bar.ts";
import type { ModelDType } from "../engine/open_inference_model.ts";

/** Usage text of the eval command. */
export const EVAL_USAGE = `usage: cli.ts eval --model PATH --text FILE [options]
  --model PATH       HF directory or llama2.c .bin
  --text FILE        UTF-8 text (paragraphs separated by blank lines)
  --tokenizer PATH   tokenizer (default: beside the model)
  --dtype D          weight storage: auto (default: as stored, AWQ linears stay int4),
                     f32 or f16 (dequantized), int4 (refuse a model that is not 4-bit AWQ)
  --json             print one JSON object on stdout
${BACKEND_USAGE}`;

/** Runs eval with CLI arguments; prints results; returns them. */
export async function evalCommand(args: string[]): Promise<PerplexityResult> {
  const { values } = parseCommandArgs(args, {
    model: { type: "string" },
    text: { type: "string" },
    tokenizer: { type: "string" },
    dtype: { type: "string" },
    json: { type: "boolean" },
    "windows-per-readback": { type: "string" },
    ...BACKEND_OPTIONS,
  });
  const modelPath = requiredString(values, "model");
  const textPath = requiredString(values, "text");
  const dtype = parseDType(values.dtype);
  const backend = parseBackendOptions(values);
  let text: string;
  try {
    text = await Deno.readTextFile(textPath);
  } catch (e) {
    throw new RequestError(`${textPath}: cannot read text file (${(e as Error).message})`);
  }
  if (text.trim() === "") throw new RequestError(`${textPath}: text file is empty`);
  const log = (s: string) => console.error(s);
  const opened = await openModel({
    model: modelPath,
    tokenizer: values.tokenizer as string | undefined,
    dtype,
    ...backend,
  }, log);
  try {
    const { model, tokenizer } = opened;
    const stream = buildTokenStream(text, tokenizer);
    const ws = windows(stream, model.maxSeq);
    if (ws.length === 0) throw new RequestError(`${textPath}: fewer than 2 tokens to evaluate`);
    const bar = new ProgressBar("eval", ws.length, { unit: "win" });
    const r = await evaluatePerplexity(model, ws, {
      windowsPerReadback: numberOption(values, "windows-per-readback", 32),
      onProgress: (p) => bar.update(p.done, `ppl ${p.ppl.toFixed(4)}`),
    });
    bar.done();
    if (values.json) {
      console.log(JSON.stringify({
        tokens: r.tokens,
        predicted: r.predicted,
        nll: r.nll,
        ppl: r.ppl,
        tokens_per_s: r.tokensPerSecond,
      }));
    } else {
      console.log(
        `tokens ${r.tokens}  predicted ${r.predicted}  mean NLL ${r.nll.toFixed(6)}  ` +
          `ppl ${r.ppl.toFixed(4)}  ${r.tokensPerSecond.toFixed(0)} tokens/s`,
      );
    }
    return r;
  } finally {
    opened.close();
  }
}

/** Parses a --dtype value. */
export function parseDType(v: unknown): ModelDType {
  if (v === undefined) return "auto";
  if (v === "f32" || v === "f16" || v === "int4" || v === "auto") return v;
  throw new RequestError(`--dtype must be auto, f32, f16 or int4 (got "${v}")`);
}
