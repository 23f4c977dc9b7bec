/**
 * Command-line option parsing on top of `node:util` parseArgs, turning its
 * errors and bad numbers into one-line {@link RequestError}s.
 *
 * @example
 * ```ts
 * import { parseCommandArgs, numberOption } from "./args.ts";
 * const { values } = parseCommandArgs(["--max-tokens", "5"], { "max-tokens": { type: "string" } });
 * console.log(numberOption(values, "max-tokens", 40)); // 5
 * ```
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { RequestError } from "../errors.ts";

/** Option table in node:util parseArgs form. */
export type OptionTable = NonNullable<ParseArgsConfig["options"]>;

/** Parsed option values. */
export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Parses `args` strictly against `options`; unknown options and positionals are errors. */
export function parseCommandArgs(
  args: string[],
  options: OptionTable,
): { values: OptionValues; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, strict: true, allowPositionals: false });
    return { values: r.values as OptionValues, positionals: r.positionals };
  } catch (e) {
    // parseArgs messages can span lines (hints on the next lines): keep them, on one line.
    throw new RequestError((e as Error).message.split("\n").map((l) => l.trim()).join(" "));
  }
}

/** A required string option, or a RequestError naming it. */
export function requiredString(values: OptionValues, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v === "") throw new RequestError(`--${name} is required`);
  return v;
}

/** A numeric option with a default; non-numbers are a RequestError naming the option. */
export function numberOption(values: OptionValues, name: string, fallback: number): number;
export function numberOption(
  values: OptionValues,
  name: string,
  fallback?: number,
): number | undefined;
export function numberOption(
  values: OptionValues,
  name: string,
  fallback?: number,
): number | undefined {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
    throw new RequestError(`--${name} must be a number (got "${v}")`);
  }
  return n;
}
