/**
 * The CLI in a runtime without WebGPU (as on Deno Deploy): removes the GPU*
 * globals and `navigator.gpu` before loading the CLI, then runs it with the
 * process arguments. For tests of the CPU fallback.
 *
 * @example
 * ```sh
 * deno run -A tests/support/no_webgpu_cli.ts generate --model m.bin --prompt "Once"
 * ```
 * @module
 */

for (const k of Object.getOwnPropertyNames(globalThis)) {
  if (/^GPU/.test(k)) delete (globalThis as Record<string, unknown>)[k];
}
Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined, configurable: true });
const { main } = await import("../../src/cli/main.ts");
Deno.exitCode = await main(Deno.args);
