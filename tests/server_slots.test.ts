import assert from "node:assert/strict";
import { acquireGpu } from "../src/gpu/device.ts";
import { GpuLlama } from "../src/model/gpu_llama.ts";
import { loadModel } from "../src/model/load_model.ts";
import { SlotRunner } from "../src/server/slots.ts";

const shared = new URL("../../shared/", import.meta.url);
const model = new URL("models/stories260K/stories260K.bin", shared).pathname;
let haveShared = true;
try {
  Deno.statSync(model);
} catch {
  haveShared = false;
  console.warn(`skipping KV slot tests: ${model} not found (../shared is absent)`);
}

Deno.test({
  name: "KV slots: concurrent sequences on shared weights give the same greedy ids as one alone",
  ignore: !haveShared,
  async fn() {
    const { weights, tokenizer } = await loadModel(model);
    const gpu = await acquireGpu();
    const m = await GpuLlama.load(gpu, weights, { maxSeq: 128 });
    const runner = await SlotRunner.create(m, tokenizer, 3, 4);
    try {
      const prompts = ["Once upon a time", "Tom had a red ball.", "The cat sat"];
      const ids = prompts.map((p) => tokenizer.encode(p));
      const events: number[] = [];
      const run = async (i: number, id: number) => {
        const out: number[] = [];
        const order: number[] = [];
        const r = await runner.run(id, ids[i], { maxTokens: 24 }, (c) => {
          out.push(...c.tokenIds);
          order.push(i);
          events.push(i);
        });
        return { out, r };
      };
      const alone = [];
      for (let i = 0; i < 3; i++) alone.push(await run(i, 10 + i));
      events.length = 0;
      const together = await Promise.all([0, 1, 2].map((i) => run(i, 20 + i)));
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(together[i].out, alone[i].out, `prompt ${i}`);
        assert.equal(together[i].r.completionTokens, 24);
        assert.equal(together[i].r.promptTokens, ids[i].length);
      }
      // Fairness: every request streamed something before any of them finished.
      const firstEnd = Math.min(...[0, 1, 2].map((i) => events.lastIndexOf(i)));
      for (const i of [0, 1, 2]) assert.ok(events.indexOf(i) < firstEnd, `request ${i} starved`);
      // Cancelling one request stops it early and frees its slot.
      let seen = 0;
      const p = runner.run(30, ids[0], { maxTokens: 100 }, () => {
        if (++seen === 1) runner.cancel(30);
      });
      const r = await p;
      assert.equal(r.finishReason, "cancelled");
      assert.ok(r.completionTokens < 100);
      assert.equal(runner.busy, 0);
    } finally {
      runner.destroy();
      m.destroy();
      gpu.destroy();
    }
  },
});
