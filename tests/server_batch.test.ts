import assert from "node:assert/strict";
import { Generator } from "../src/engine/generator.ts";
import { openInferenceModel } from "../src/engine/open_inference_model.ts";
import { loadModel } from "../src/model/load_model.ts";
import { BatchRunner } from "../src/server/batch_runner.ts";
import { RequestError } from "../src/errors.ts";
import type { EngineRequest } from "../src/server/engine.ts";
import { TEST_BACKENDS } from "./support/backends.ts";

const shared = new URL("../../shared/", import.meta.url);
const model = new URL("models/stories260K/stories260K.bin", shared).pathname;
let haveShared = true;
try {
  Deno.statSync(model);
} catch {
  haveShared = false;
  console.warn(`skipping batched decode tests: ${model} not found (../shared is absent)`);
}

const PROMPTS = ["Once upon a time", "Tom had a red ball.", "The cat sat", "Lily"];

for (const backend of TEST_BACKENDS) {
  Deno.test({
    name: `BatchRunner on ${backend}: concurrent requests decode together as each alone`,
    ignore: !haveShared,
    async fn() {
      const { weights, tokenizer } = await loadModel(model);
      const { model: m } = await openInferenceModel(weights, { backend, context: 128 });
      const runner = await BatchRunner.create(m, tokenizer, 3, 4);
      const gen = new Generator(m, tokenizer);
      try {
        const ids = PROMPTS.map((p) => tokenizer.encode(p, { bos: true }));
        const settings: Omit<EngineRequest, "promptIds">[] = [
          { maxTokens: 24 },
          { maxTokens: 24, temperature: 0.9, topP: 0.9, seed: 7 },
          { maxTokens: 9 },
          { maxTokens: 30, stop: ["."] },
        ];
        // Alone: the single-sequence Generator (the model's own KV cache).
        const alone = [];
        for (let i = 0; i < PROMPTS.length; i++) {
          const it = gen.generateFromIds(ids[i], settings[i]);
          let r = await it.next();
          while (!r.done) r = await it.next();
          alone.push(r.value);
        }
        // Together: 4 requests on 3 slots (the fourth waits for a slot).
        const events: number[] = [];
        const together = await Promise.all(PROMPTS.map(async (_, i) => {
          const out: number[] = [];
          let text = "";
          const r = await runner.run(100 + i, ids[i], settings[i], (c) => {
            out.push(...c.tokenIds);
            text += c.text;
            events.push(i);
          });
          return { out, text, r };
        }));
        for (let i = 0; i < PROMPTS.length; i++) {
          assert.equal(together[i].text, alone[i].text, `prompt ${i} text`);
          assert.equal(together[i].r.finishReason, alone[i].finishReason, `prompt ${i} finish`);
          if (settings[i].stop) {
            // A stop string ends the request at its readback; the ids read with it
            // (a readback is 4 steps here, 16 in the Generator) may differ in number.
            const n = together[i].out.length;
            assert.deepEqual(together[i].out, alone[i].tokenIds.slice(0, n), `prompt ${i} ids`);
          } else {
            assert.deepEqual(together[i].out, alone[i].tokenIds, `prompt ${i} ids`);
            assert.equal(together[i].r.completionTokens, alone[i].tokenIds.length);
          }
          assert.equal(together[i].r.promptTokens, ids[i].length);
        }
        // Fairness: the first three streamed something before any of them finished.
        const firstEnd = Math.min(...[0, 1, 2].map((i) => events.lastIndexOf(i)));
        for (const i of [0, 1, 2]) assert.ok(events.indexOf(i) < firstEnd, `request ${i} starved`);
        assert.equal(runner.busy, 0);
      } finally {
        gen.destroy();
        runner.destroy();
        m.destroy();
      }
    },
  });

  Deno.test({
    name: `BatchRunner on ${backend}: cancelling a running or waiting request frees its slot`,
    ignore: !haveShared,
    async fn() {
      const { weights, tokenizer } = await loadModel(model);
      const { model: m } = await openInferenceModel(weights, { backend, context: 128 });
      const runner = await BatchRunner.create(m, tokenizer, 1, 4);
      try {
        const ids = tokenizer.encode(PROMPTS[0], { bos: true });
        let seen = 0;
        const running = runner.run(1, ids, { maxTokens: 100 }, () => {
          if (++seen === 1) runner.cancel(1);
        });
        const waiting = runner.run(2, ids, { maxTokens: 100 }, () => {});
        runner.cancel(2, "timeout");
        const [a, b] = await Promise.all([running, waiting]);
        assert.equal(a.finishReason, "cancelled");
        assert.ok(a.completionTokens < 100);
        assert.equal(b.finishReason, "timeout");
        assert.equal(b.completionTokens, 0);
        assert.equal(runner.busy, 0);
        // The slot is free again.
        const c = await runner.run(3, ids, { maxTokens: 5 }, () => {});
        assert.equal(c.completionTokens, 5);
        assert.equal(c.finishReason, "length");
      } finally {
        runner.destroy();
        m.destroy();
      }
    },
  });
}

for (const backend of TEST_BACKENDS) {
  Deno.test({
    name:
      `BatchRunner on ${backend}: a long prompt is prefilled in chunks between the running stream's turns, with the same ids`,
    ignore: !haveShared,
    async fn() {
      const { weights, tokenizer } = await loadModel(model);
      const { model: m } = await openInferenceModel(weights, { backend, context: 256 });
      const runner = await BatchRunner.create(m, tokenizer, 2, 4);
      runner.prefillTokensPerTurn = 5;
      const gen = new Generator(m, tokenizer);
      try {
        const shortIds = tokenizer.encode("Once upon a time", { bos: true });
        const long =
          "Tom had a red ball. He liked to play with it in the park every day with his dog.";
        const longIds = tokenizer.encode(long, { bos: true });
        assert.ok(longIds.length > 20, `${longIds.length} prompt tokens`);
        const alone = async (ids: number[], maxTokens: number) => {
          const it = gen.generateFromIds(ids, { maxTokens });
          let r = await it.next();
          while (!r.done) r = await it.next();
          return r.value.tokenIds;
        };
        const wantShort = await alone(shortIds, 80);
        const wantLong = await alone(longIds, 12);
        const events: string[] = [];
        const got: number[][] = [[], []];
        let second: Promise<unknown> | undefined;
        const first = runner.run(1, shortIds, { maxTokens: 80 }, (c) => {
          got[0].push(...c.tokenIds);
          events.push("short");
          second ??= runner.run(2, longIds, { maxTokens: 12 }, (c2) => {
            got[1].push(...c2.tokenIds);
            events.push("long");
          });
        });
        await first;
        await second;
        assert.deepEqual(got[0], wantShort);
        assert.deepEqual(got[1], wantLong);
        // The long prompt took ceil(n / 5) turns to prefill; the short stream kept streaming.
        const during = events.slice(1, events.indexOf("long")).filter((e) => e === "short").length;
        assert.ok(
          during >= Math.floor(longIds.length / 5) - 1,
          `only ${during} short chunks while ${longIds.length} prompt tokens were prefilled: ${events}`,
        );
      } finally {
        gen.destroy();
        runner.destroy();
        m.destroy();
      }
    },
  });
}

for (const backend of TEST_BACKENDS) {
  Deno.test({
    name: `DecodeSlots.prefill on ${backend} refuses a row range outside the prompt, naming it`,
    ignore: !haveShared,
    async fn() {
      const { weights } = await loadModel(model);
      const { model: m } = await openInferenceModel(weights, { backend, context: 64 });
      const slots = await m.createDecodeSlots(1, 2);
      try {
        for (const [start, end] of [[3, 3], [0, 9], [-1, 2], [2, 1.5]]) {
          await assert.rejects(
            async () => await slots.prefill(0, [1, 2, 3, 4, 5], start, end),
            (e: unknown) =>
              e instanceof RequestError && e.message.includes(`rows [${start}, ${end})`),
          );
        }
      } finally {
        slots.destroy();
        m.destroy();
      }
    },
  });
}
