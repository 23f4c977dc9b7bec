/**
 * Server metrics in the Prometheus text format (GET /metrics): requests by
 * route and status, tokens generated, queue depth, time to first token and
 * tokens per second.
 *
 * @example
 * ```ts
 * import { ServerMetrics } from "./metrics.ts";
 * const m = new ServerMetrics();
 * m.request("/v1/completions", 200);
 * console.log(m.render({ queueDepth: 0, active: 0 }).includes("awq_edge_requests_total"));
 * ```
 * @module
 */

const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const WINDOW_MS = 60_000;

/** Counters and histograms of one server. */
export class ServerMetrics {
  #requests = new Map<string, number>();
  #generated = 0;
  #prompt = 0;
  #ttftCounts = new Array(TTFT_BUCKETS.length).fill(0);
  #ttftSum = 0;
  #ttftCount = 0;
  #recent: { at: number; tokens: number; seconds: number }[] = [];

  /** Counts a finished HTTP request. */
  request(route: string, status: number): void {
    const key = `${route}\u0000${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  /** Records a time to first token. */
  firstToken(seconds: number): void {
    this.#ttftSum += seconds;
    this.#ttftCount++;
    TTFT_BUCKETS.forEach((b, i) => {
      if (seconds <= b) this.#ttftCounts[i]++;
    });
  }

  /** Records a finished generation: tokens and its seconds from first to last token. */
  generation(promptTokens: number, completionTokens: number, decodeSeconds: number): void {
    this.#prompt += promptTokens;
    this.#generated += completionTokens;
    const now = performance.now();
    this.#recent.push({ at: now, tokens: completionTokens, seconds: decodeSeconds });
    while (this.#recent.length && now - this.#recent[0].at > WINDOW_MS) this.#recent.shift();
  }

  /** Tokens generated per second over the last minute (all requests together). */
  tokensPerSecond(): number {
    const now = performance.now();
    const recent = this.#recent.filter((r) => now - r.at <= WINDOW_MS);
    if (!recent.length) return 0;
    const tokens = recent.reduce((a, r) => a + r.tokens, 0);
    const first = Math.min(...recent.map((r) => r.at - r.seconds * 1000));
    const span = (now - first) / 1000;
    return span > 0 ? tokens / span : 0;
  }

  /** The exposition text. */
  render(engine: { queueDepth: number; active: number }): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    head("awq_edge_requests_total", "counter", "HTTP requests by route and status.");
    for (const [key, n] of this.#requests) {
      const [route, status] = key.split("\u0000");
      out.push(`awq_edge_requests_total{route="${route}",status="${status}"} ${n}`);
    }
    head("awq_edge_generated_tokens_total", "counter", "Completion tokens generated.");
    out.push(`awq_edge_generated_tokens_total ${this.#generated}`);
    head("awq_edge_prompt_tokens_total", "counter", "Prompt tokens processed.");
    out.push(`awq_edge_prompt_tokens_total ${this.#prompt}`);
    head("awq_edge_queue_depth", "gauge", "Requests waiting for a KV slot.");
    out.push(`awq_edge_queue_depth ${engine.queueDepth}`);
    head("awq_edge_active_requests", "gauge", "Requests generating.");
    out.push(`awq_edge_active_requests ${engine.active}`);
    head("awq_edge_time_to_first_token_seconds", "histogram", "Request arrival to first token.");
    TTFT_BUCKETS.forEach((b, i) =>
      out.push(`awq_edge_time_to_first_token_seconds_bucket{le="${b}"} ${this.#ttftCounts[i]}`)
    );
    out.push(`awq_edge_time_to_first_token_seconds_bucket{le="+Inf"} ${this.#ttftCount}`);
    out.push(`awq_edge_time_to_first_token_seconds_sum ${this.#ttftSum}`);
    out.push(`awq_edge_time_to_first_token_seconds_count ${this.#ttftCount}`);
    head("awq_edge_tokens_per_second", "gauge", "Generated tokens per second, last 60 s.");
    out.push(`awq_edge_tokens_per_second ${this.tokensPerSecond().toFixed(3)}`);
    return out.join("\n") + "\n";
  }
}
