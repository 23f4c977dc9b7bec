/**
 * The awq-edge command line: `deno run -A cli.ts <command> [options]`.
 * Commands: eval, generate, convert, demo (see `cli.ts --help`).
 *
 * @module
 */

import { main } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
