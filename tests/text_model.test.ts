import assert from "node:assert/strict";
import { ReferenceLlama, RequestError, TextModel } from "../mod.ts";
import { TEST_BACKENDS } from "./support/backends.ts";

const shared = new URL("../../shared/", import.meta.url);
const model = new URL("models/stories260K/stories260K.bin", shared).pathname;
let haveShared = true;
try {
  Deno.statSync(model);
} catch {
  haveShared = false;
  console.warn(`skipping TextModel tests: ${model} not found (../shared is absent)`);
}

for (const backend of TEST_BACKENDS) {
  Deno.test({
    name: `TextModel.complete() on ${backend} continues the prompt greedily with the reference ids`,
    ignore: !haveShared,
    async fn() {
      const lines: string[] = [];
      const m = await TextModel.open(model, { backend, log: (l) => lines.push(l) });
      try {
        assert.equal(m.backend, backend);
        assert.equal(m.backendReason, `--backend ${backend}`);
        assert.ok(lines[0].startsWith(`backend ${backend} (--backend ${backend}) on `), lines[0]);
        const r = await m.complete("Once upon a time", { maxTokens: 10, tokensPerReadback: 3 });
        assert.deepEqual(r.tokenIds, [432, 383, 286, 261, 376, 298, 315, 421, 395, 317]);
        assert.equal(r.finishReason, "length");
        assert.equal(r.promptTokens, 5);
        assert.ok(r.text.startsWith(", there was a little girl"));
      } finally {
        m.close();
      }
    },
  });

  Deno.test({
    name: `TextModel.perplexity() on ${backend} equals the reference NLL on a short text`,
    ignore: !haveShared,
    async fn() {
      const m = await TextModel.open(model, { backend, activations: "f32" });
      try {
        const text = "Tom had a red ball.\n\nHe liked to play with it every day.";
        const r = await m.perplexity(text);
        const ids = [
          ...m.tokenizer.encode("Tom had a red ball."),
          ...m.tokenizer.encode("He liked to play with it every day."),
        ];
        assert.equal(r.tokens, ids.length);
        const { readLlama2c } = await import("../src/formats/llama2c.ts");
        const ref = new ReferenceLlama(await readLlama2c(model));
        const logits = ref.forward(ids, 0);
        const V = m.model.config.vocabSize;
        let sum = 0;
        for (let t = 0; t + 1 < ids.length; t++) {
          const row = logits.subarray(t * V, (t + 1) * V);
          const mx = Math.max(...row);
          const lse = Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0)) + mx;
          sum += lse - row[ids[t + 1]];
        }
        assert.ok(
          Math.abs(r.nll - sum / (ids.length - 1)) < 1e-4,
          `${r.nll} vs ${sum / (ids.length - 1)}`,
        );
      } finally {
        m.close();
      }
    },
  });

  Deno.test({
    name: `TextModel.complete() on ${backend} rejects a prompt that does not fit the context`,
    ignore: !haveShared,
    async fn() {
      const m = await TextModel.open(model, { context: 16, backend });
      try {
        await assert.rejects(
          () =>
            m.complete("Once upon a time there was a very long prompt that will not fit at all"),
          (e: unknown) => e instanceof RequestError && /context holds 16/.test(e.message),
        );
      } finally {
        m.close();
      }
    },
  });
}
