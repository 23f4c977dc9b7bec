import assert from "node:assert/strict";
import { TextModel } from "../mod.ts";
import { BABY, sharedPresent, STORIES } from "./support/cli_run.ts";

for (const [name, model] of [["stories260K", STORIES], ["babyllama-tok105", BABY]] as const) {
  Deno.test({
    name: `greedy ${name}: the wasm backend gives the WebGPU backend's 48 ids`,
    ignore: !sharedPresent,
    async fn() {
      const out: number[][] = [];
      for (const backend of ["webgpu", "wasm"] as const) {
        const m = await TextModel.open(model, { backend });
        try {
          const prompt = name === "stories260K" ? "Once upon a time" : "Lily and Tom went to the";
          out.push((await m.complete(prompt, { maxTokens: 48 })).tokenIds);
        } finally {
          m.close();
        }
      }
      assert.ok(out[0].length > 10, `${out[0].length} ids`);
      assert.deepEqual(out[1], out[0]);
    },
  });
}
