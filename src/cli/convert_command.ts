/**
 * `cli.ts convert --model FILE.bin --out DIR`: a llama2.c checkpoint and its
 * tokenizer to a complete Hugging Face directory (config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json,
 * generation_config.json), written atomically.
 *
 * @example
 * ```ts ignore
 * await convertCommand(["--model", "stories260K.bin", "--out", "stories260K-hf"]);
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { exportHfDirectory } from "../formats/hf_export.ts";
import { readLlama2c } from "../formats/llama2c.ts";
import { loadTokenizer } from "../tokenizer/load_tokenizer.ts";
import { parseCommandArgs, requiredString } from "./args.ts";
import { pathExists } from "../formats/path_exists.ts";

/** Usage text of the convert command. */
export const CONVERT_USAGE = `usage: cli.ts convert --model FILE.bin --out DIR [options]
  --model FILE.bin    llama2.c checkpoint
  --out DIR           output Hugging Face directory (must not exist)
  --tokenizer PATH    llama2.c tokenizer .bin (default: beside the model)
  --dtype F32|F16     weight dtype in model.safetensors (default F32)
  --force             replace an existing output directory
  --json              print one JSON object on stdout`;

/** Runs convert with CLI arguments; returns the output directory. */
export async function convertCommand(args: string[]): Promise<string> {
  const { values } = parseCommandArgs(args, {
    model: { type: "string" },
    out: { type: "string" },
    tokenizer: { type: "string" },
    dtype: { type: "string" },
    force: { type: "boolean" },
    json: { type: "boolean" },
  });
  const modelPath = requiredString(values, "model");
  const out = requiredString(values, "out");
  const dtype = (values.dtype ?? "F32") as string;
  if (dtype !== "F32" && dtype !== "F16") {
    throw new RequestError(`--dtype must be F32 or F16 (got "${dtype}")`);
  }
  if (!values.force && await pathExists(out)) {
    throw new RequestError(`${out}: output directory already exists (pass --force to replace it)`);
  }
  const t0 = performance.now();
  const weights = await readLlama2c(modelPath);
  const tokenizer = await loadTokenizer(modelPath, values.tokenizer as string | undefined);
  await exportHfDirectory(weights, out, {
    tokenizerJson: tokenizer.tokenizerJson,
    tokenizerConfig: tokenizer.tokenizerConfig,
  }, { dtype, force: Boolean(values.force) });
  const seconds = (performance.now() - t0) / 1000;
  if (values.json) console.log(JSON.stringify({ out, dtype, seconds }));
  else console.error(`wrote ${out} (${dtype}) in ${seconds.toFixed(2)} s`);
  return out;
}
