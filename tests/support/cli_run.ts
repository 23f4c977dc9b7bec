/**
 * Helpers for end-to-end CLI tests: run `deno run -A cli.ts ...` as a
 * subprocess from the repository root, capture stdout/stderr, and check the
 * shape of a user error (one `error: ...` line, no stack trace, empty stdout).
 *
 * @module
 */

import assert from "node:assert/strict";

/** The repository root (where cli.ts lives). */
export const REPO_ROOT = new URL("../../", import.meta.url);

/** The shared models and data (tests/../../shared/), read-only. */
export const SHARED = new URL("../../../shared/", import.meta.url);

/** Whether ../shared holds both real models, their tokenizers and the eval text. */
export const sharedPresent: boolean = (() => {
  const need = [
    "models/stories260K/stories260K.bin",
    "models/stories260K/tok512.bin",
    "models/babyllama-tok105/model5000.bin",
    "models/babyllama-tok105/tok105.bin",
    "data/tinystories-eval.txt",
  ];
  try {
    return need.every((p) => Deno.statSync(new URL(p, SHARED)).isFile);
  } catch {
    return false;
  }
})();

/** Message for `ignore:`d tests when ../shared is absent. */
export const SHARED_MISSING = `${SHARED.pathname} (real models and eval text) is absent`;

/** An absolute path inside ../shared. */
export const shared = (p: string): string => new URL(p, SHARED).pathname;

/** The stories260K checkpoint. */
export const STORIES = shared("models/stories260K/stories260K.bin");
/** The babyllama checkpoint. */
export const BABY = shared("models/babyllama-tok105/model5000.bin");
/** The evaluation text. */
export const EVAL_TEXT = shared("data/tinystories-eval.txt");

/** What a CLI run produced. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Everything written to stdout. */
  stdout: string;
  /** stderr without the environment's XDG_RUNTIME_DIR noise. */
  stderr: string;
  /** Non-empty stderr lines, noise removed. */
  stderrLines: string[];
}

/** Runs `deno run -A cli.ts ...args` from the repository root. */
export async function runCli(args: string[]): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli.ts", ...args],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  const stderrLines = dec.decode(out.stderr).split(/\r?\n/)
    .filter((l) => l.trim() !== "" && !l.includes("XDG_RUNTIME_DIR"));
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: stderrLines.join("\n"),
    stderrLines,
  };
}

/** Runs the CLI, asserts exit 0, and parses stdout as exactly one JSON object. */
export async function runCliJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  const r = await runCli(args);
  assert.equal(r.code, 0, `cli ${args.join(" ")} exited ${r.code}:\n${r.stderr}`);
  return parseOneJsonObject<T>(r.stdout);
}

/** Asserts `stdout` is one JSON object on one line (plus a newline) and returns it. */
export function parseOneJsonObject<T = Record<string, unknown>>(stdout: string): T {
  assert.ok(stdout.endsWith("\n"), `stdout should end with a newline: ${JSON.stringify(stdout)}`);
  const body = stdout.slice(0, -1);
  assert.ok(!body.includes("\n"), `stdout should be a single line:\n${stdout}`);
  const v = JSON.parse(body);
  assert.ok(v !== null && typeof v === "object" && !Array.isArray(v), "not a JSON object");
  return v as T;
}

/**
 * Asserts `r` is a clean user error: non-zero exit, nothing on stdout,
 * exactly one `error: ...` line on stderr that matches every `culprit`, and
 * no stack trace or uncaught-exception report.
 */
export function assertCliError(r: CliResult, ...culprits: (string | RegExp)[]): string {
  assert.notEqual(r.code, 0, `expected a non-zero exit; stderr:\n${r.stderr}`);
  assert.equal(r.stdout, "", "expected nothing on stdout");
  const errors = r.stderrLines.filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, `expected one "error:" line on stderr, got:\n${r.stderr}`);
  const line = errors[0];
  for (const c of culprits) {
    if (typeof c === "string") {
      assert.ok(line.includes(c), `error line should name ${JSON.stringify(c)}: ${line}`);
    } else {
      assert.match(line, c);
    }
  }
  for (const l of r.stderrLines) {
    assert.doesNotMatch(l, /^\s+at /, `stack trace on stderr:\n${r.stderr}`);
    assert.doesNotMatch(
      l,
      /Uncaught|\bat file:|\.ts:\d+:\d+/,
      `stack trace on stderr:\n${r.stderr}`,
    );
  }
  return line;
}

/** The first `n` paragraphs (blank-line separated) of the eval text. */
export function firstParagraphs(n: number): string {
  const text = Deno.readTextFileSync(EVAL_TEXT);
  return text.split(/\n\s*\n/).slice(0, n).join("\n\n") + "\n";
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "awq_cli_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Whether anything exists at `path`. */
export function pathExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
