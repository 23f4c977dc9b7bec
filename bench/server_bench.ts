/**
 * Loopback load test of the OpenAI-compatible server on stories260K: a real
 * server on 127.0.0.1 (model in its Worker, one KV slot per client, batched
 * decode: one forward pass per step over all active requests), then a
 * fixed number of streaming completions at each concurrency (1, 8, 32; more
 * levels without --quick). Reports aggregate tokens/s, p50/p95 time to first
 * token and inter-token latency per level, against the single-client figures
 * of the same run, and the concurrency where throughput stops growing.
 *
 * @module
 */

import { startServer } from "../src/server/serve_command.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchResult,
  fmt,
  STORIES260K_PATH,
} from "./common.ts";

/** Tokens each request generates. */
export const SERVER_MAX_TOKENS = 64;

interface Sample {
  ttftMs: number;
  itlMs: number;
  tokens: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

/** One streaming completion; times the first and last content chunks. */
async function streamOne(url: string, model: string, prompt: string): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      model,
      prompt,
      max_tokens: SERVER_MAX_TOKENS,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = 0;
  let last = 0;
  let tokens = 0;
  let buf = "";
  const dec = new TextDecoder();
  for await (const bytes of res.body) {
    buf += dec.decode(bytes, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const j = JSON.parse(line.slice(6));
      if (j.usage) tokens = j.usage.completion_tokens;
      if (j.choices?.[0]?.text) {
        last = performance.now();
        if (!first) first = last;
      }
    }
  }
  return {
    ttftMs: first - t0,
    itlMs: tokens > 1 ? (last - first) / (tokens - 1) : 0,
    tokens,
  };
}

/** The server load benchmark. */
export const serverBench: Benchmark = {
  name: "server",
  description: "loopback load test of the HTTP server (1/8/32 clients): tokens/s, TTFT, ITL",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { quick, log } = ctx;
    try {
      Deno.statSync(STORIES260K_PATH);
    } catch {
      throw new Error(`the server benchmark needs ${STORIES260K_PATH} (../shared)`);
    }
    const levels = quick ? [1, 8, 32] : [1, 2, 4, 8, 16, 32];
    const maxC = Math.max(...levels);
    const s = await startServer({
      model: STORIES260K_PATH,
      port: 0,
      host: "127.0.0.1",
      slots: maxC,
      maxQueue: 1024,
      log: () => {},
    });
    const figures: Record<string, number> = {};
    const notes = [
      `model: ${STORIES260K_PATH}, ${maxC} KV slots, batched decode, 8 steps per submit`,
      `each request: streaming completion, greedy, ${SERVER_MAX_TOKENS} tokens; ` +
      `requests per level: ${quick ? "max(c, 8)" : "max(2c, 16)"}; loopback HTTP, one process`,
    ];
    try {
      await s.engine.ready;
      const model = s.engine.info!.modelId;
      await streamOne(s.url, model, "Once upon a time"); // warm-up
      let best = 0;
      let plateau = levels[0];
      for (const c of levels) {
        const total = quick ? Math.max(c, 8) : Math.max(2 * c, 16);
        const samples: Sample[] = [];
        let next = 0;
        const t0 = performance.now();
        await Promise.all(Array.from({ length: c }, async () => {
          while (next < total) {
            const k = next++;
            samples.push(
              await streamOne(s.url, model, `Once upon a time ${"there ".repeat(k % 5)}`),
            );
          }
        }));
        const seconds = (performance.now() - t0) / 1000;
        const tokens = samples.reduce((a, x) => a + x.tokens, 0);
        const tps = tokens / seconds;
        const f = (k: string, v: number) => figures[`${k}_c${c}`] = v;
        f("tokens_per_s", tps);
        f("ttft_p50_ms", percentile(samples.map((x) => x.ttftMs), 0.5));
        f("ttft_p95_ms", percentile(samples.map((x) => x.ttftMs), 0.95));
        f("itl_p50_ms", percentile(samples.map((x) => x.itlMs), 0.5));
        f("itl_p95_ms", percentile(samples.map((x) => x.itlMs), 0.95));
        f("requests", total);
        if (c > 1) f("throughput_vs_c1", tps / figures.tokens_per_s_c1);
        if (tps > best * 1.1) {
          best = tps;
          plateau = c;
        }
        log(
          `  ${String(c).padStart(2)} clients, ${total} requests: ${fmt(tps)} tok/s` +
            `${c > 1 ? ` (${fmt(tps / figures.tokens_per_s_c1)}x 1 client)` : ""}, TTFT p50/p95 ` +
            `${fmt(figures[`ttft_p50_ms_c${c}`])}/${
              fmt(figures[`ttft_p95_ms_c${c}`])
            } ms, ITL p50/p95 ` +
            `${fmt(figures[`itl_p50_ms_c${c}`])}/${fmt(figures[`itl_p95_ms_c${c}`])} ms`,
        );
      }
      figures.throughput_plateau_clients = plateau;
      log(`  throughput stops growing (by >10%) after ${plateau} clients`);
    } finally {
      await s.shutdown();
    }
    return { figures, notes };
  },
};
