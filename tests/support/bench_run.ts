/**
 * Runs `bench/mod.ts --quick --json --only NAME` in a child process for the
 * bench smoke tests: asserts a zero exit and exactly one line of JSON on
 * stdout, and returns the parsed report with the stderr text.
 *
 * @example
 * ```ts ignore
 * const { report } = await runQuickBench("cpu");
 * console.log(report.benchmarks.cpu.figures);
 * ```
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname;

/** One benchmark's entry in the JSON report. */
export interface BenchEntry {
  /** Named figures. */
  figures: Record<string, number>;
  /** Human-readable notes. */
  notes: string[];
  /** Set when the benchmark failed. */
  error?: string;
}

/** The JSON report `bench/mod.ts --json` prints. */
export interface BenchReport {
  /** True under --quick. */
  quick: boolean;
  /** The adapter's description. */
  adapter: string;
  /** Entries by benchmark name. */
  benchmarks: Record<string, BenchEntry>;
}

/** Runs one benchmark in quick JSON mode; see the module doc. */
export async function runQuickBench(
  only: string,
): Promise<{ report: BenchReport; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/mod.ts", "--quick", "--json", "--only", only],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `bench failed:\n${stderr}`);
  assert.equal(
    stdout.split("\n").length,
    1,
    `expected one line of JSON on stdout, got:\n${stdout}`,
  );
  return { report: JSON.parse(stdout) as BenchReport, stderr };
}
