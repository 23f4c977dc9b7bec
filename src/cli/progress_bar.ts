/**
 * A one-line progress bar with rate and ETA, drawn on stderr (and only when
 * stderr is a terminal, or forced), so stdout stays clean for results.
 *
 * @example
 * ```ts
 * import { ProgressBar } from "./progress_bar.ts";
 * const bar = new ProgressBar("eval", 10, { force: false });
 * for (let i = 1; i <= 10; i++) bar.update(i);
 * bar.done();
 * ```
 * @module
 */

/** Options for {@link ProgressBar}. */
export interface ProgressBarOptions {
  /** Draw even when stderr is not a terminal (default: only on a terminal). */
  force?: boolean;
  /** Unit shown with the rate (default "it"). */
  unit?: string;
}

/** Draws `label [#####.....] done/total rate ETA` on stderr. */
export class ProgressBar {
  readonly #label: string;
  readonly #total: number;
  readonly #enabled: boolean;
  readonly #unit: string;
  readonly #start = performance.now();
  #lastDraw = 0;
  #drawn = false;

  /** Starts a bar for `total` steps. */
  constructor(label: string, total: number, options: ProgressBarOptions = {}) {
    this.#label = label;
    this.#total = Math.max(1, total);
    this.#unit = options.unit ?? "it";
    this.#enabled = options.force ?? Deno.stderr.isTerminal();
  }

  /** Shows `done` steps finished, with an optional note (e.g. running ppl). */
  update(done: number, note = ""): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#lastDraw < 100 && done < this.#total) return;
    this.#lastDraw = now;
    const frac = Math.min(1, done / this.#total);
    const width = 24;
    const filled = Math.round(frac * width);
    const secs = (now - this.#start) / 1000;
    const rate = done / Math.max(secs, 1e-9);
    const eta = rate > 0 ? (this.#total - done) / rate : 0;
    const line = `${this.#label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ` +
      `${done}/${this.#total} ${rate.toFixed(1)} ${this.#unit}/s ETA ${formatSeconds(eta)}` +
      (note ? ` ${note}` : "");
    Deno.stderr.writeSync(new TextEncoder().encode(`\r${line}\x1b[K`));
    this.#drawn = true;
  }

  /** Ends the bar's line. */
  done(): void {
    if (this.#drawn) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    this.#drawn = false;
  }
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatSeconds(s: number): string {
  const t = Math.round(s);
  if (t >= 3600) {
    return `${Math.floor(t / 3600)}h${String(Math.floor(t / 60) % 60).padStart(2, "0")}m`;
  }
  if (t >= 60) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, "0")}s`;
  return `${t}s`;
}
