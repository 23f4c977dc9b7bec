/**
 * `cli.ts demo`: the README's first command, the main job on the bundled
 * stories260K model: its full-precision perplexity on the shared evaluation
 * text, AWQ quantization to 4 bits (groups of 32) on the calibration text,
 * the quantized model's perplexity, and a greedy continuation from it — with
 * the reference figures beside ours.
 *
 * @example
 * ```ts ignore
 * await demoCommand([]);
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import {
  BACKEND_OPTIONS,
  BACKEND_USAGE,
  backendArgs,
  parseBackendOptions,
} from "./backend_options.ts";
import { evalCommand } from "./eval_command.ts";
import { generateCommand } from "./generate_command.ts";
import { quantizeCommand } from "./quantize_command.ts";

/** Usage text of the demo command. */
export const DEMO_USAGE = `usage: cli.ts demo [--shared DIR] [options]
  --shared DIR       the folder holding models/ and data/ (default: ../shared)
${BACKEND_USAGE}
  (quantization always runs on WebGPU; the options apply to the eval and generate steps)`;

/** Runs the demo on `../shared` (or --shared DIR). */
export async function demoCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(args, { shared: { type: "string" }, ...BACKEND_OPTIONS });
  const backend = backendArgs(parseBackendOptions(values));
  const shared = (values.shared as string | undefined) ??
    new URL("../../../shared", import.meta.url).pathname;
  const model = `${shared}/models/stories260K/stories260K.bin`;
  const text = `${shared}/data/tinystories-eval.txt`;
  const calib = `${shared}/data/tinystories-calib.txt`;
  try {
    await Deno.stat(model);
  } catch {
    throw new RequestError(`${model}: not found (pass --shared DIR, the folder holding models/)`);
  }
  const out = await Deno.makeTempDir({ prefix: "awq-edge-demo-" });
  try {
    console.error("== 1. perplexity of stories260K on tinystories-eval.txt (reference: 5.4456)");
    await evalCommand(["--model", model, "--text", text, ...backend]);
    console.error("== 2. AWQ, 4-bit, groups of 32, 32 x 256 calibration tokens");
    await quantizeCommand([
      "--model",
      model,
      "--out",
      `${out}/stories260K-awq`,
      "--calib",
      calib,
      "--bits",
      "4",
      "--group-size",
      "32",
      "--samples",
      "32",
      "--seqlen",
      "256",
    ]);
    console.error("== 3. perplexity of the AWQ checkpoint");
    await evalCommand(["--model", `${out}/stories260K-awq`, "--text", text, ...backend]);
    console.error('== 4. greedy generation from "Once upon a time" with the AWQ checkpoint');
    await generateCommand([
      "--model",
      `${out}/stories260K-awq`,
      "--prompt",
      "Once upon a time",
      "--max-tokens",
      "40",
      ...backend,
    ]);
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
}
