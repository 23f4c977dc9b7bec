/**
 * `cli.ts demo`: the README's first command. Evaluates the bundled
 * stories260K model on the shared evaluation text and generates from
 * "Once upon a time", showing the reference figures beside ours.
 *
 * @example
 * ```ts ignore
 * await demoCommand([]);
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { parseCommandArgs } from "./args.ts";
import { evalCommand } from "./eval_command.ts";
import { generateCommand } from "./generate_command.ts";

/** Runs the demo on `../shared` (or --shared DIR). */
export async function demoCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(args, { shared: { type: "string" } });
  const shared = (values.shared as string | undefined) ??
    new URL("../../../shared", import.meta.url).pathname;
  const model = `${shared}/models/stories260K/stories260K.bin`;
  const text = `${shared}/data/tinystories-eval.txt`;
  try {
    await Deno.stat(model);
  } catch {
    throw new RequestError(`${model}: not found (pass --shared DIR, the folder holding models/)`);
  }
  console.error("== perplexity of stories260K on tinystories-eval.txt (reference: 5.4456)");
  await evalCommand(["--model", model, "--text", text]);
  console.error('== greedy generation from "Once upon a time" (40 tokens)');
  await generateCommand(["--model", model, "--prompt", "Once upon a time", "--max-tokens", "40"]);
}
