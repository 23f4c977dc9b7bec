import assert from "node:assert/strict";
import { FormatError } from "../src/errors.ts";
import { exportHfDirectory } from "../src/formats/hf_export.ts";
import { toHfConfigJson } from "../src/formats/hf_config.ts";
import { hfTensorSpecs, tensorForSpec } from "../src/formats/hf_layout.ts";
import { loadHfModel } from "../src/formats/hf_model.ts";
import { readLlama2c } from "../src/formats/llama2c.ts";
import { type TensorToWrite, writeSafetensors } from "../src/formats/safetensors_write.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import type { LlamaConfig } from "../src/model/config.ts";
import { tinyWeights } from "./support/formats_tiny.ts";

const STORIES = new URL("../../shared/models/stories260K/stories260K.bin", import.meta.url);
const storiesAbsent = (() => {
  try {
    Deno.statSync(STORIES);
    return false;
  } catch {
    console.warn(`skipping stories260K export tests: ${STORIES.pathname} is absent`);
    return true;
  }
})();

const TOKENIZER = { version: "1.0", model: { type: "BPE", vocab: {}, merges: [] } };

function bitsEqual(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length, what);
  assert.deepEqual(
    new Uint32Array(a.buffer, a.byteOffset, a.length),
    new Uint32Array(b.buffer, b.byteOffset, b.length),
    what,
  );
}

function assertSameWeights(got: LlamaWeights, want: LlamaWeights) {
  assert.deepEqual(got.config, want.config);
  for (const spec of hfTensorSpecs(want.config)) {
    const g = tensorForSpec(got, spec)!;
    const w = tensorForSpec(want, spec)!;
    assert.deepEqual(g.shape, w.shape, spec.name);
    bitsEqual(g.data, w.data, spec.name);
  }
  assert.equal(got.lmHead === got.embed, want.config.tieWordEmbeddings);
}

/** Writes a HF directory by hand (config + given tensors) for loader tests. */
async function handMadeDir(config: LlamaConfig, tensors: TensorToWrite[]): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(toHfConfigJson(config)));
  await writeSafetensors(`${dir}/model.safetensors`, tensors);
  return dir;
}

function tensorsOf(w: LlamaWeights): TensorToWrite[] {
  return hfTensorSpecs(w.config).map((s) => {
    const t = tensorForSpec(w, s)!;
    return { name: s.name, dtype: "F32" as const, shape: t.shape, data: t.data };
  });
}

async function listDir(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test({
  name: "exportHfDirectory() then loadHfModel() gives bit-identical tensors for stories260K",
  ignore: storiesAbsent,
  fn: async () => {
    const w = await readLlama2c(STORIES.pathname);
    const parent = await Deno.makeTempDir();
    const out = `${parent}/stories260K-hf`;
    await exportHfDirectory(w, out, { tokenizerJson: TOKENIZER });
    assert.deepEqual(await listDir(out), [
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    assert.deepEqual(await listDir(parent), ["stories260K-hf"]);
    const back = await loadHfModel(out);
    assertSameWeights(back, w);
    assert.equal(back.embed.dtype, "F32");
    const tc = JSON.parse(await Deno.readTextFile(`${out}/tokenizer_config.json`));
    assert.equal(tc.bos_token, "<s>");
    assert.equal(tc.eos_token, "</s>");
    assert.equal(tc.add_bos_token, true);
    assert.equal(tc.model_max_length, 512);
    assert.equal(tc.tokenizer_class, "LlamaTokenizerFast");
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${out}/tokenizer.json`)), TOKENIZER);
    const cfg = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
    assert.deepEqual(cfg.architectures, ["LlamaForCausalLM"]);
    assert.equal(cfg.torch_dtype, "float32");
    const gen = JSON.parse(await Deno.readTextFile(`${out}/generation_config.json`));
    assert.equal(gen.bos_token_id, 1);
    assert.equal(gen.eos_token_id, 2);
    await Deno.remove(parent, { recursive: true });
  },
});

Deno.test({
  name: "exportHfDirectory() with dtype F16 stores f16 weights that load back rounded",
  ignore: storiesAbsent,
  fn: async () => {
    const w = await readLlama2c(STORIES.pathname);
    const parent = await Deno.makeTempDir();
    await exportHfDirectory(w, `${parent}/h`, { tokenizerJson: TOKENIZER }, { dtype: "F16" });
    const back = await loadHfModel(`${parent}/h`);
    assert.equal(back.layers[0].wq.dtype, "F16");
    const a = back.layers[0].wq.data, b = w.layers[0].wq.data;
    for (let i = 0; i < a.length; i++) {
      assert.ok(Math.abs(a[i] - b[i]) <= Math.abs(b[i]) * 2 ** -11 + 2 ** -24, `wq[${i}]`);
    }
    const cfg = JSON.parse(await Deno.readTextFile(`${parent}/h/config.json`));
    assert.equal(cfg.torch_dtype, "float16");
    await Deno.remove(parent, { recursive: true });
  },
});

Deno.test("exportHfDirectory() round-trips an untied qwen2 model with biases", async () => {
  const w = tinyWeights({ modelType: "qwen2", attentionBias: true, tieWordEmbeddings: false });
  const parent = await Deno.makeTempDir();
  await exportHfDirectory(w, `${parent}/q`, { tokenizerJson: TOKENIZER });
  const back = await loadHfModel(`${parent}/q`);
  assertSameWeights(back, w);
  assert.ok(back.layers[1].bq && back.layers[1].bk && back.layers[1].bv);
  await Deno.remove(parent, { recursive: true });
});

Deno.test("exportHfDirectory() refuses an existing directory and leaves it untouched", async () => {
  const parent = await Deno.makeTempDir();
  await Deno.mkdir(`${parent}/out`);
  await Deno.writeTextFile(`${parent}/out/keep.txt`, "keep");
  await assert.rejects(
    exportHfDirectory(tinyWeights(), `${parent}/out`, { tokenizerJson: TOKENIZER }),
    (e: unknown) => e instanceof FormatError && e.message.includes(`${parent}/out`),
  );
  assert.deepEqual(await listDir(parent), ["out"]);
  assert.deepEqual(await listDir(`${parent}/out`), ["keep.txt"]);
  await Deno.remove(parent, { recursive: true });
});

Deno.test("exportHfDirectory() with force replaces an existing directory", async () => {
  const parent = await Deno.makeTempDir();
  await Deno.mkdir(`${parent}/out`);
  await Deno.writeTextFile(`${parent}/out/old.txt`, "old");
  await exportHfDirectory(tinyWeights(), `${parent}/out`, { tokenizerJson: TOKENIZER }, {
    force: true,
  });
  assert.ok(!(await listDir(`${parent}/out`)).includes("old.txt"));
  assert.deepEqual(await listDir(parent), ["out"]);
  assertSameWeights(await loadHfModel(`${parent}/out`), tinyWeights());
  await Deno.remove(parent, { recursive: true });
});

Deno.test("exportHfDirectory() leaves nothing behind when writing fails", async () => {
  const parent = await Deno.makeTempDir();
  await assert.rejects(
    exportHfDirectory(tinyWeights(), `${parent}/out`, { tokenizerJson: { n: 1n } }),
    FormatError,
  );
  assert.deepEqual(await listDir(parent), []);
  const bad = tinyWeights();
  bad.layers[1].wUp = { ...bad.layers[1].wUp, shape: [3, 3], data: new Float32Array(9) };
  await assert.rejects(
    exportHfDirectory(bad, `${parent}/out`, { tokenizerJson: TOKENIZER }),
    (e: unknown) => e instanceof FormatError && e.message.includes("model.layers.1.mlp.up_proj"),
  );
  assert.deepEqual(await listDir(parent), []);
  await Deno.remove(parent, { recursive: true });
});

Deno.test("loadHfModel() makes lmHead the embedding when embeddings are tied", async () => {
  const w = tinyWeights({ tieWordEmbeddings: true });
  const dir = await handMadeDir(w.config, tensorsOf(w));
  const back = await loadHfModel(dir);
  assert.equal(back.lmHead, back.embed);
  assertSameWeights(back, w);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadHfModel() ignores rotary_emb.inv_freq buffers", async () => {
  const w = tinyWeights();
  const dir = await handMadeDir(w.config, [
    ...tensorsOf(w),
    {
      name: "model.layers.0.self_attn.rotary_emb.inv_freq",
      dtype: "F32",
      shape: [2],
      data: new Float32Array(2),
    },
  ]);
  assertSameWeights(await loadHfModel(dir), w);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadHfModel() loads F16 and BF16 tensors, recording their dtype", async () => {
  const w = tinyWeights();
  const tensors = tensorsOf(w).map((t, i) => ({
    ...t,
    dtype: i % 2 ? "F16" as const : "BF16" as const,
  }));
  const dir = await handMadeDir(w.config, tensors);
  const back = await loadHfModel(dir);
  assert.equal(back.embed.dtype, "BF16");
  assert.equal(back.layers[0].attnNorm.dtype, "F16");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadHfModel() rejects a missing tensor, naming it", async () => {
  const w = tinyWeights();
  const dir = await handMadeDir(
    w.config,
    tensorsOf(w).filter((t) => t.name !== "model.layers.1.self_attn.k_proj.weight"),
  );
  await assert.rejects(
    loadHfModel(dir),
    (e: unknown) =>
      e instanceof FormatError &&
      e.message.includes('"model.layers.1.self_attn.k_proj.weight" is missing'),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadHfModel() rejects a missing lm_head when embeddings are not tied", async () => {
  const w = tinyWeights({ tieWordEmbeddings: false });
  const dir = await handMadeDir(w.config, tensorsOf(w).filter((t) => t.name !== "lm_head.weight"));
  await assert.rejects(
    loadHfModel(dir),
    (e: unknown) => e instanceof FormatError && e.message.includes('"lm_head.weight"'),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadHfModel() rejects a tensor whose shape disagrees with config.json", async () => {
  const w = tinyWeights();
  const tensors = tensorsOf(w).map((t) =>
    t.name === "model.layers.0.mlp.down_proj.weight" ? { ...t, shape: [24, 16] } : t
  );
  const dir = await handMadeDir(w.config, tensors);
  await assert.rejects(
    loadHfModel(dir),
    (e: unknown) =>
      e instanceof FormatError &&
      e.message.includes('"model.layers.0.mlp.down_proj.weight" has shape [24,16]') &&
      e.message.includes("[16,24]"),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadHfModel() rejects a tensor the config does not expect", async () => {
  const w = tinyWeights();
  const dir = await handMadeDir(w.config, [
    ...tensorsOf(w),
    {
      name: "model.layers.0.self_attn.o_proj.bias",
      dtype: "F32",
      shape: [16],
      data: new Float32Array(16),
    },
  ]);
  await assert.rejects(
    loadHfModel(dir),
    (e: unknown) =>
      e instanceof FormatError && e.message.includes('"model.layers.0.self_attn.o_proj.bias"'),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadHfModel() rejects a directory without config.json, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    loadHfModel(dir),
    (e: unknown) => e instanceof FormatError && e.message.includes(`${dir}/config.json`),
  );
  await Deno.remove(dir);
});
