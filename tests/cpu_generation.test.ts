import assert from "node:assert/strict";
import { TextModel } from "../mod.ts";
import { BABY, sharedPresent, STORIES } from "./support/cli_run.ts";
import {
  CpuInferenceModel,
  type CpuInferenceModelOptions,
} from "../src/cpu/cpu_inference_model.ts";
import { readLlama2c } from "../src/formats/llama2c.ts";
import { resolveSampling } from "../src/engine/sampling_options.ts";

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

/** Hosts without parts of WebAssembly: each falls back with a note and gives the same ids. */
const HOSTS = [
  {
    host: "without SharedArrayBuffer",
    features: { simd: true, relaxed: true, sharedMemory: false },
    note: /no SharedArrayBuffer in this runtime: 1 thread/,
    description: /1 thread/,
  },
  {
    host: "without relaxed SIMD",
    features: { simd: true, relaxed: false, sharedMemory: true },
    note: /no relaxed SIMD/,
    description: /^wasm simd128, /,
  },
  {
    host: "without SIMD",
    features: { simd: false, relaxed: false, sharedMemory: true },
    note: /no WebAssembly SIMD.*TypeScript kernels/,
    description: /typescript/,
  },
];

for (const { host, features, note, description } of HOSTS) {
  Deno.test({
    name: `greedy stories260K on a host ${host}: a note, and the default kernels' 24 ids`,
    ignore: !sharedPresent,
    async fn() {
      const weights = await readLlama2c(STORIES);
      const prompt = [1, 403, 407, 261, 378];
      const run = async (options: CpuInferenceModelOptions) => {
        const m = await CpuInferenceModel.load(weights, { maxSeq: 64, threads: 2, ...options });
        const seq = m.openSequence();
        try {
          const first = await seq.prefill(prompt, resolveSampling(), []);
          const ids = [first, ...await seq.decode(23)];
          return { ids, notes: m.notes.join("\n"), description: m.description };
        } finally {
          seq.destroy();
          m.destroy();
        }
      };
      const want = await run({});
      const got = await run({ features });
      assert.match(got.notes, note);
      assert.match(got.description, description);
      assert.deepEqual(got.ids, want.ids);
    },
  });
}
