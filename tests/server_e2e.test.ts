import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer } from "../server.ts";
import type { RunningServer } from "../src/server/serve_command.ts";
import { TEST_BACKENDS } from "./support/backends.ts";

const shared = new URL("../../shared/", import.meta.url);
const model = new URL("models/stories260K/stories260K.bin", shared).pathname;
let haveShared = true;
try {
  Deno.statSync(model);
} catch {
  haveShared = false;
  console.warn(`skipping server end-to-end tests: ${model} not found (../shared is absent)`);
}

const MODEL_ID = "stories260K.bin";
const opts = { sanitizeOps: false, sanitizeResources: false, ignore: !haveShared };

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body });

for (const backend of TEST_BACKENDS) {
  const withServer = async (
    extra: { apiKey?: string; slots?: number; maxQueue?: number },
    fn: (s: RunningServer) => Promise<void>,
  ): Promise<void> => {
    const s = await startServer({
      model,
      port: 0,
      host: "127.0.0.1",
      log: () => {},
      backend,
      ...extra,
    });
    try {
      await s.engine.ready;
      assert.equal(s.engine.info?.backend, backend);
      await fn(s);
    } finally {
      await s.shutdown();
    }
  };

  Deno.test({
    name:
      `server end-to-end on ${backend} with the openai client: chat, completions, streams, errors`,
    ...opts,
    async fn(t) {
      await withServer({ slots: 4 }, async (s) => {
        const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "unused", maxRetries: 0 });

        await t.step("health, models", async () => {
          const health = await fetch(`${s.url}/health`).then((r) => r.json());
          assert.equal(health.status, "ok");
          assert.equal(health.backend, backend);
          const models = await client.models.list();
          assert.deepEqual(models.data.map((m) => m.id), [MODEL_ID]);
        });

        await t.step("completions: greedy text equals the library's, usage, length", async () => {
          const r = await client.completions.create({
            model: MODEL_ID,
            prompt: "Once upon a time",
            max_tokens: 10,
            temperature: 0,
          });
          assert.ok(r.choices[0].text.startsWith(", there was a little girl"), r.choices[0].text);
          assert.equal(r.choices[0].finish_reason, "length");
          assert.deepEqual(r.usage, { prompt_tokens: 5, completion_tokens: 10, total_tokens: 15 });
        });

        await t.step("completions: stop sequence", async () => {
          const r = await client.completions.create({
            model: MODEL_ID,
            prompt: "Once upon a time",
            max_tokens: 30,
            temperature: 0,
            stop: ["girl"],
          });
          assert.equal(r.choices[0].text, ", there was a little ");
          assert.equal(r.choices[0].finish_reason, "stop");
        });

        await t.step("completions: seeded sampling is reproducible", async () => {
          const req = {
            model: MODEL_ID,
            prompt: "Once upon a time",
            max_tokens: 12,
            temperature: 0.9,
            top_p: 0.9,
            seed: 42,
          };
          const a = await client.completions.create(req);
          const b = await client.completions.create(req);
          assert.equal(a.choices[0].text, b.choices[0].text);
        });

        await t.step("completions: streaming", async () => {
          const stream = await client.completions.create({
            model: MODEL_ID,
            prompt: "Once upon a time",
            max_tokens: 10,
            temperature: 0,
            stream: true,
          });
          let text = "";
          let chunks = 0;
          let finish: string | null = null;
          for await (const c of stream) {
            text += c.choices[0].text;
            finish = c.choices[0].finish_reason ?? finish;
            chunks++;
          }
          assert.ok(text.startsWith(", there was a little girl"), text);
          assert.ok(chunks >= 2);
          assert.equal(finish, "length");
        });

        await t.step("chat: fallback template, non-streaming and streaming agree", async () => {
          const messages = [{ role: "user" as const, content: "Tell me a story." }];
          const r = await client.chat.completions.create({
            model: MODEL_ID,
            messages,
            max_tokens: 16,
            temperature: 0,
          });
          const content = r.choices[0].message.content ?? "";
          assert.equal(r.choices[0].message.role, "assistant");
          assert.ok(content.length > 0);
          assert.equal(r.usage!.completion_tokens + r.usage!.prompt_tokens, r.usage!.total_tokens);
          const stream = await client.chat.completions.create({
            model: MODEL_ID,
            messages,
            max_tokens: 16,
            temperature: 0,
            stream: true,
            stream_options: { include_usage: true },
          });
          let text = "";
          let usage;
          for await (const c of stream) {
            text += c.choices[0]?.delta?.content ?? "";
            if (c.usage) usage = c.usage;
          }
          assert.equal(text, content);
          assert.deepEqual(usage, r.usage);
        });

        await t.step("errors: malformed JSON, oversize, unknown model, bad params", async () => {
          const bad = await post(`${s.url}/v1/completions`, "{nope");
          assert.equal(bad.status, 400);
          assert.equal((await bad.json()).error.code, "invalid_json");
          const big = await post(
            `${s.url}/v1/completions`,
            JSON.stringify({ model: MODEL_ID, prompt: "x".repeat(2 << 20) }),
          );
          assert.equal(big.status, 413);
          await big.body?.cancel();
          await assert.rejects(
            client.completions.create({ model: "gpt-4", prompt: "hi" }),
            (e: unknown) => e instanceof OpenAI.NotFoundError && /gpt-4/.test(e.message),
          );
          await assert.rejects(
            client.completions.create({ model: MODEL_ID, prompt: "hi", n: 2 }),
            (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "n",
          );
          await assert.rejects(
            client.chat.completions.create({
              model: MODEL_ID,
              messages: [{ role: "user", content: "hi" }],
              temperature: 5,
            }),
            (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "temperature",
          );
          await assert.rejects(
            client.completions.create({ model: MODEL_ID, prompt: "hi", max_tokens: 100000 }),
            (e: unknown) =>
              e instanceof OpenAI.BadRequestError && e.param === "max_tokens" &&
              /over the context of 512 tokens/.test(e.message),
          );
        });

        await t.step("cancel mid-stream stops the generation and frees the slot", async () => {
          const tokens = async () => {
            const m = await fetch(`${s.url}/metrics`).then((r) => r.text());
            return Number(/awq_edge_generated_tokens_total (\d+)/.exec(m)![1]);
          };
          const before = await tokens();
          const ac = new AbortController();
          const stream = await client.completions.create(
            { model: MODEL_ID, prompt: "Once upon a time", max_tokens: 500, stream: true },
            { signal: ac.signal },
          );
          try {
            for await (const _ of stream) {
              ac.abort();
            }
          } catch (e) {
            assert.ok(e instanceof OpenAI.APIUserAbortError, String(e));
          }
          for (let i = 0; i < 300 && s.engine.active > 0; i++) {
            await new Promise((r) => setTimeout(r, 10));
          }
          assert.equal(s.engine.active, 0, "the cancelled generation still runs");
          await new Promise((r) => setTimeout(r, 50));
          const generated = (await tokens()) - before;
          assert.ok(generated < 500, `generated ${generated} of 500 tokens after the cancel`);
        });

        await t.step("16 concurrent clients all complete with correct usage", async () => {
          const prompts = Array.from(
            { length: 16 },
            (_, i) => `Once upon a time ${"there ".repeat(i % 4)}`,
          );
          const t0 = performance.now();
          const rs = await Promise.all(prompts.map((prompt, i) =>
            client.completions.create({
              model: MODEL_ID,
              prompt,
              max_tokens: 20 + (i % 3),
              temperature: 0,
            })
          ));
          const elapsed = performance.now() - t0;
          for (const [i, r] of rs.entries()) {
            const u = r.usage!;
            assert.equal(u.completion_tokens, 20 + (i % 3), `client ${i}`);
            assert.equal(r.choices[0].finish_reason, "length");
            assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
            assert.ok(u.prompt_tokens >= 5);
          }
          // The same prompt gives the same greedy text whichever slot served it.
          assert.equal(rs[0].choices[0].text.slice(0, 40), rs[4].choices[0].text.slice(0, 40));
          assert.ok(elapsed < 60_000);
          const m = await fetch(`${s.url}/metrics`).then((r) => r.text());
          assert.match(m, /awq_edge_requests_total\{route="\/v1\/completions",status="200"\} \d+/);
          assert.match(m, /awq_edge_queue_depth 0/);
        });
      });
    },
  });

  Deno.test({
    name: `server end-to-end on ${backend}: API key on (401 without it), a full queue answers 429`,
    ...opts,
    async fn() {
      await withServer({ apiKey: "k-123", slots: 1, maxQueue: 0 }, async (s) => {
        const good = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "k-123", maxRetries: 0 });
        const bad = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "wrong", maxRetries: 0 });
        await assert.rejects(
          bad.models.list(),
          (e: unknown) => e instanceof OpenAI.AuthenticationError,
        );
        assert.equal((await good.models.list()).data[0].id, MODEL_ID);
        // One slot, no queue: a second request while one streams is refused with 429.
        const stream = await good.completions.create({
          model: MODEL_ID,
          prompt: "Once upon a time",
          max_tokens: 200,
          stream: true,
        });
        const it = stream[Symbol.asyncIterator]();
        await it.next();
        const r = await post(
          `${s.url}/v1/completions`,
          JSON.stringify({ model: MODEL_ID, prompt: "Hi", max_tokens: 2 }),
          { Authorization: "Bearer k-123" },
        );
        assert.equal(r.status, 429);
        assert.ok(Number(r.headers.get("retry-after")) >= 1);
        await r.body?.cancel();
        stream.controller.abort();
      });
    },
  });

  Deno.test({
    name: `server.ts --backend ${backend} starts, logs its backend, shuts down on SIGTERM`,
    ...opts,
    ignore: !haveShared || Deno.build.os === "windows",
    async fn() {
      const root = new URL("..", import.meta.url).pathname;
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", "server.ts", "--model", model, "--port", "0", "--slots", "2"],
          ...["--backend", backend],
        ],
        cwd: root,
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let log = "";
      const deadline = Date.now() + 60_000;
      while (!/ready/.test(log) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        log += value;
      }
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1];
      assert.ok(url, log);
      const r = await fetch(`${url}/health`);
      assert.equal(r.status, 200);
      await r.body?.cancel();
      child.kill("SIGTERM");
      const rest = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          log += value;
        }
      })();
      const status = await child.status;
      await rest;
      assert.equal(status.code, 0, log);
      assert.match(log, /stopped/);
      assert.ok(log.includes(`backend ${backend} (--backend ${backend}) on `), log);
    },
  });
}
