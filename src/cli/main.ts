/**
 * The command-line entry: dispatches to a subcommand, prints user errors as
 * one line on stderr (no stack trace) and sets the exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await main(["eval", "--model", "m.bin", "--text", "t.txt"]));
 * ```
 * @module
 */

import { AwqEdgeError } from "../errors.ts";
import { CONVERT_USAGE, convertCommand } from "./convert_command.ts";
import { DEMO_USAGE, demoCommand } from "./demo_command.ts";
import { EVAL_USAGE, evalCommand } from "./eval_command.ts";
import { GENERATE_USAGE, generateCommand } from "./generate_command.ts";
import { SERVE_USAGE, serveCommand } from "../server/serve_command.ts";
import { QUANTIZE_USAGE, quantizeCommand } from "./quantize_command.ts";

/** Top-level usage. */
export const USAGE =
  `awq-edge: quantize and run Llama-family models on WebGPU or the WebAssembly CPU backend

usage: deno run -A cli.ts <command> [options]

commands:
  eval       perplexity of a model on a text file
  generate   generate text from a prompt
  convert    llama2.c checkpoint -> Hugging Face directory
  serve      OpenAI-compatible HTTP server (see server.ts)
  quantize   AWQ / RTN quantization -> AutoAWQ checkpoint directory
  demo       eval + generate on the bundled small model (../shared)

Run "cli.ts <command> --help" for a command's options.`;

const COMMANDS: Record<string, { run: (args: string[]) => Promise<unknown>; usage: string }> = {
  eval: { run: evalCommand, usage: EVAL_USAGE },
  generate: { run: generateCommand, usage: GENERATE_USAGE },
  convert: { run: convertCommand, usage: CONVERT_USAGE },
  serve: { run: serveCommand, usage: SERVE_USAGE },
  quantize: { run: quantizeCommand, usage: QUANTIZE_USAGE },
  demo: { run: demoCommand, usage: DEMO_USAGE },
};

/** Runs the CLI with `args`; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`error: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    await cmd.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof AwqEdgeError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    // The reader of stdout went away (e.g. `| head`): stop quietly, like SIGPIPE.
    if (e instanceof Deno.errors.BrokenPipe) return 141;
    throw e;
  }
}
