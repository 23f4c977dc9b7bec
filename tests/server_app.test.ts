import assert from "node:assert/strict";
import { Hono } from "hono";
import { createApp } from "../src/server/app.ts";
import { FALLBACK_CHAT_TEMPLATE, renderChat } from "../src/server/chat_template.ts";
import { FakeEngine } from "./support/fake_engine.ts";

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "Content-Type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

async function sseEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  return text.split("\n\n").filter(Boolean).map((e) => {
    assert.ok(e.startsWith("data: "), `SSE event ${JSON.stringify(e)}`);
    return e.slice(6);
  });
}

Deno.test("GET /v1/models lists the model; /health is 503 until loaded", async () => {
  const engine = new FakeEngine({ loaded: false });
  const app = createApp(engine);
  assert.equal((await app.request("/health")).status, 503);
  const r0 = await app.request("/v1/models");
  assert.equal(r0.status, 503);
  assert.equal((await r0.json()).error.code, "model_loading");
  engine.loaded = true;
  assert.equal((await app.request("/health")).status, 200);
  const r = await app.request("/v1/models");
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.object, "list");
  assert.equal(body.data[0].id, "fake-model");
});

Deno.test("POST /v1/completions returns text, usage and finish_reason length, and passes the sampling fields on", async () => {
  const engine = new FakeEngine();
  const app = createApp(engine);
  const r = await app.request(
    "/v1/completions",
    json({
      model: "fake-model",
      prompt: "abc",
      max_tokens: 3,
      temperature: 0,
      top_p: 0.5,
      seed: 7,
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
    }),
  );
  assert.equal(r.status, 200);
  const b = await r.json();
  assert.equal(b.object, "text_completion");
  assert.equal(b.choices[0].text, "w0 w1 w2 ");
  assert.equal(b.choices[0].finish_reason, "length");
  assert.deepEqual(b.usage, { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 });
  const req = engine.requests[0];
  assert.deepEqual([req.temperature, req.topP, req.seed, req.maxTokens], [0, 0.5, 7, 3]);
  assert.deepEqual([req.presencePenalty, req.frequencyPenalty], [0.5, -0.25]);
});

Deno.test("stop sequences end with finish_reason stop and are removed", async () => {
  const app = createApp(new FakeEngine());
  const r = await app.request(
    "/v1/completions",
    json({ model: "fake-model", prompt: "abc", max_tokens: 10, stop: ["w2"] }),
  );
  const b = await r.json();
  assert.equal(b.choices[0].text, "w0 w1 ");
  assert.equal(b.choices[0].finish_reason, "stop");
});

Deno.test("POST /v1/chat/completions renders the fallback template and answers", async () => {
  const engine = new FakeEngine();
  const app = createApp(engine);
  const r = await app.request(
    "/v1/chat/completions",
    json({
      model: "fake-model",
      messages: [{ role: "system", content: "Be brief." }, {
        role: "user",
        content: [{ type: "text", text: "Hi" }],
      }],
      max_completion_tokens: 2,
    }),
  );
  assert.equal(r.status, 200);
  const b = await r.json();
  assert.equal(b.object, "chat.completion");
  assert.deepEqual(b.choices[0].message, { role: "assistant", content: "w0 w1 " });
  assert.equal(engine.encoded[0], "system: Be brief.\nuser: Hi\nassistant:");
  assert.equal(b.usage.prompt_tokens, engine.encoded[0].length + 1);
});

Deno.test("a model's chat_template is rendered with bos_token, and BOS is not added twice", async () => {
  const tpl = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}" +
    "{% if add_generation_prompt %}[assistant]{% endif %}";
  const engine = new FakeEngine({ chatTemplate: tpl });
  const app = createApp(engine);
  const r = await app.request(
    "/v1/chat/completions",
    json({ model: "fake-model", messages: [{ role: "user", content: "Yo" }], max_tokens: 1 }),
  );
  const b = await r.json();
  assert.equal(engine.encoded[0], "<s>[user]Yo[assistant]");
  assert.equal(b.usage.prompt_tokens, "<s>[user]Yo[assistant]".length); // no extra BOS id
  const p = renderChat([{ role: "user", content: "x" }], { bosToken: "", eosToken: "" });
  assert.equal(p.text, "user: x\nassistant:");
  assert.ok(FALLBACK_CHAT_TEMPLATE.includes("add_generation_prompt"));
});

Deno.test("streaming chat sends role, content chunks, finish, usage and [DONE]", async () => {
  const app = createApp(new FakeEngine());
  const r = await app.request(
    "/v1/chat/completions",
    json({
      model: "fake-model",
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    }),
  );
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type")!, /text\/event-stream/);
  const ev = await sseEvents(r);
  assert.equal(ev.at(-1), "[DONE]");
  const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  assert.equal(text, "w0 w1 w2 ");
  assert.equal(chunks.at(-2).choices[0].finish_reason, "length");
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.equal(chunks.at(-1).usage.completion_tokens, 3);
});

Deno.test("streaming completions send text chunks and [DONE]", async () => {
  const app = createApp(new FakeEngine());
  const r = await app.request(
    "/v1/completions",
    json({ model: "fake-model", prompt: "x", max_tokens: 2, stream: true }),
  );
  const ev = await sseEvents(r);
  assert.equal(ev.at(-1), "[DONE]");
  const chunks = ev.slice(0, -1).map((e) => JSON.parse(e));
  assert.equal(chunks.map((c) => c.choices[0].text).join(""), "w0 w1 ");
  assert.equal(chunks.at(-1).choices[0].finish_reason, "length");
  assert.ok(chunks.every((c) => c.object === "text_completion"));
});

Deno.test("errors: malformed JSON, bad params, n != 1, unknown model, context overflow", async () => {
  const app = createApp(new FakeEngine({ contextLength: 16 }));
  const cases: [unknown, number, string | null, RegExp][] = [
    ["{not json", 400, null, /not valid JSON/],
    [{ model: "fake-model", prompt: "a", temperature: 3 }, 400, "temperature", /\[0, 2\]/],
    [{ model: "fake-model", prompt: "a", top_p: 0 }, 400, "top_p", /top_p/],
    [{ model: "fake-model", prompt: "a", presence_penalty: 3 }, 400, "presence_penalty", /-2, 2/],
    [{ model: "fake-model", prompt: "a", frequency_penalty: "x" }, 400, "frequency_penalty", /-2/],
    [{ model: "fake-model", prompt: "a", max_tokens: 0 }, 400, "max_tokens", /integer >= 1/],
    [{ model: "fake-model", prompt: "a", seed: -1 }, 400, "seed", /seed/],
    [{ model: "fake-model", prompt: "a", n: 2 }, 400, "n", /n must be 1/],
    [{ model: "fake-model", prompt: 5 }, 400, "prompt", /prompt must be a string/],
    [{ model: "fake-model", prompt: "a", stop: [1] }, 400, "stop", /stop/],
    [{ prompt: "a" }, 400, "model", /model is required/],
    [{ model: "gpt-4", prompt: "a" }, 404, "model", /does not exist/],
    [
      { model: "fake-model", prompt: "abcdef", max_tokens: 12 },
      400,
      "max_tokens",
      /7 tokens.*12.*19 tokens.*16/,
    ],
    [{ model: "fake-model", prompt: "x".repeat(20) }, 400, "prompt", /21 tokens.*16 tokens/],
  ];
  for (const [body, status, param, message] of cases) {
    const r = await app.request("/v1/completions", json(body));
    assert.equal(r.status, status, JSON.stringify(body));
    const e = (await r.json()).error;
    assert.deepEqual(Object.keys(e).sort(), ["code", "message", "param", "type"]);
    assert.equal(e.param, param, JSON.stringify(body));
    assert.match(e.message, message);
    assert.equal(e.type, "invalid_request_error");
  }
  const r = await app.request("/v1/chat/completions", json({ model: "fake-model", messages: [] }));
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.param, "messages");
  const u = await app.request("/v1/unknown");
  assert.equal(u.status, 404);
});

Deno.test("oversize bodies are answered 413", async () => {
  const app = createApp(new FakeEngine(), { maxBodyBytes: 1000 });
  const r = await app.request(
    "/v1/completions",
    json({ model: "fake-model", prompt: "x".repeat(2000) }),
  );
  assert.equal(r.status, 413);
  assert.equal((await r.json()).error.code, "request_too_large");
});

Deno.test("a full queue is answered 429 with Retry-After", async () => {
  const app = createApp(new FakeEngine({ full: true }));
  const r = await app.request("/v1/completions", json({ model: "fake-model", prompt: "a" }));
  assert.equal(r.status, 429);
  assert.equal(r.headers.get("retry-after"), "7");
  assert.equal((await r.json()).error.type, "rate_limit_error");
});

Deno.test("API key: 401 without or with a wrong key, 200 with it; /health stays open", async () => {
  const app = createApp(new FakeEngine(), { apiKey: "sekret" });
  assert.equal((await app.request("/v1/models")).status, 401);
  const wrong = await app.request("/v1/models", { headers: { Authorization: "Bearer nope" } });
  assert.equal(wrong.status, 401);
  assert.equal((await wrong.json()).error.type, "authentication_error");
  const ok = await app.request("/v1/models", { headers: { Authorization: "Bearer sekret" } });
  assert.equal(ok.status, 200);
  assert.equal((await app.request("/metrics")).status, 401);
  assert.equal((await app.request("/health")).status, 200);
});

Deno.test("CORS headers only when enabled", async () => {
  const off = createApp(new FakeEngine());
  const r0 = await off.request("/v1/models", { headers: { Origin: "http://example.test" } });
  assert.equal(r0.headers.get("access-control-allow-origin"), null);
  const on = createApp(new FakeEngine(), { cors: true });
  const r1 = await on.request("/v1/models", { headers: { Origin: "http://example.test" } });
  assert.equal(r1.headers.get("access-control-allow-origin"), "*");
});

Deno.test("a cancelled stream cancels the generation", async () => {
  const engine = new FakeEngine({ delayMs: 5 });
  const app = createApp(engine);
  const r = await app.request(
    "/v1/completions",
    json({ model: "fake-model", prompt: "a", max_tokens: 50, stream: true }),
  );
  const reader = r.body!.getReader();
  await reader.read();
  await reader.cancel();
  for (let i = 0; i < 50 && !engine.results.length; i++) {
    await new Promise((res) => setTimeout(res, 5));
  }
  assert.equal(engine.results[0].finishReason, "cancelled");
  assert.ok(engine.results[0].completionTokens < 50);
});

Deno.test("a request over the time limit is answered 504", async () => {
  const app = createApp(new FakeEngine({ delayMs: 20 }), { requestTimeoutMs: 50 });
  const r = await app.request(
    "/v1/completions",
    json({ model: "fake-model", prompt: "a", max_tokens: 40 }),
  );
  assert.equal(r.status, 504);
  assert.equal((await r.json()).error.code, "timeout");
});

Deno.test("GET /metrics is Prometheus text with requests, tokens, queue, TTFT, tokens/s", async () => {
  const app = createApp(new FakeEngine());
  await app.request("/v1/completions", json({ model: "fake-model", prompt: "a", max_tokens: 4 }));
  await app.request("/v1/completions", json({ model: "nope", prompt: "a" }));
  const r = await app.request("/metrics");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type")!, /text\/plain/);
  const t = await r.text();
  assert.match(t, /awq_edge_requests_total\{route="\/v1\/completions",status="200"\} 1/);
  assert.match(t, /awq_edge_requests_total\{route="\/v1\/completions",status="404"\} 1/);
  assert.match(t, /awq_edge_generated_tokens_total 4/);
  assert.match(t, /awq_edge_queue_depth 0/);
  assert.match(t, /awq_edge_time_to_first_token_seconds_count 1/);
  assert.match(t, /# TYPE awq_edge_tokens_per_second gauge/);
});

Deno.test("the app mounts inside another Hono app", async () => {
  const outer = new Hono();
  outer.get("/", (c) => c.text("outer"));
  outer.route("/llm", createApp(new FakeEngine()));
  assert.equal(await (await outer.request("/")).text(), "outer");
  const r = await outer.request("/llm/v1/models");
  assert.equal(r.status, 200);
  assert.equal((await r.json()).data[0].id, "fake-model");
  const c = await outer.request(
    "/llm/v1/completions",
    json({ model: "fake-model", prompt: "a", max_tokens: 1 }),
  );
  assert.equal((await c.json()).choices[0].text, "w0 ");
});

Deno.test("GET / serves the chat page", async () => {
  const r = await createApp(new FakeEngine()).request("/");
  assert.equal(r.status, 200);
  assert.match(await r.text(), /<form id="form">/);
});
