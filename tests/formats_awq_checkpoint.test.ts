import assert from "node:assert/strict";
import { join } from "node:path";
import {
  awqModuleNames,
  loadAwqWeights,
  writeAwqCheckpoint,
} from "../src/formats/awq_checkpoint.ts";
import { paddedShape } from "../src/formats/awq_pack.ts";
import { roundToF16 } from "../src/formats/half.ts";
import { loadHfModel } from "../src/formats/hf_model.ts";
import { openSafetensors } from "../src/formats/safetensors_read.ts";
import { FormatError } from "../src/errors.ts";
import type { LlamaConfig } from "../src/model/config.ts";
import type { LlamaWeights } from "../src/model/weights.ts";
import { dequantizeLinear } from "../src/quant/quantizer.ts";
import type { QuantSettings } from "../src/quant/types.ts";
import {
  moduleField,
  quantizeAllLinears,
  rewriteConfig,
  rewriteTensors,
} from "./support/awq_model.ts";
import { randomLlamaWeights, tinyConfig } from "./support/random_llama.ts";

/** A tiny config whose every linear fits AutoAWQ's format at g32 (64/16/128). */
function fittingConfig(): LlamaConfig {
  return tinyConfig("mistral", {
    hiddenSize: 64,
    numHeads: 8,
    numKvHeads: 2,
    headDim: 8,
    intermediateSize: 128,
  });
}

async function writeModel(
  dir: string,
  w: LlamaWeights,
  settings: QuantSettings,
  layout: "gemm" | "gemv",
  extra: { force?: boolean } = {},
) {
  const quantized = quantizeAllLinears(w, settings);
  await writeAwqCheckpoint(dir, {
    weights: w,
    quantized,
    settings,
    layout,
    tokenizerFiles: { "tokenizer.json": '{"a": 1}', "tokenizer.model": new Uint8Array([1, 2, 3]) },
    metadata: { source_sha256: "abc", tool: "awq-edge test" },
    extraFiles: { "quant_report.json": "{}\n" },
    ...extra,
  });
  return quantized;
}

function assertLoadedEqual(
  back: LlamaWeights,
  w: LlamaWeights,
  quantized: ReturnType<typeof quantizeAllLinears>,
  what: string,
) {
  assert.deepEqual(back.config, w.config, what);
  for (const name of awqModuleNames(w.config)) {
    const { layer, field } = moduleField(name);
    const t = back.layers[layer][field]!;
    const ql = quantized.get(name)!;
    assert.deepEqual(t.shape, [ql.outFeatures, ql.inFeatures], `${what} ${name}`);
    assert.equal(t.dtype, "F16");
    assert.deepEqual(t.data, dequantizeLinear(ql), `${what} ${name}`);
  }
  const f16 = (a: Float32Array) => a.map(roundToF16);
  assert.deepEqual(back.embed.data, f16(w.embed.data), what);
  assert.deepEqual(back.norm.data, f16(w.norm.data), what);
  assert.deepEqual(back.lmHead.data, f16(w.lmHead.data), what);
  for (let l = 0; l < w.config.numLayers; l++) {
    assert.deepEqual(back.layers[l].attnNorm.data, f16(w.layers[l].attnNorm.data), what);
    assert.deepEqual(back.layers[l].ffnNorm.data, f16(w.layers[l].ffnNorm.data), what);
    for (const b of ["bq", "bk", "bv"] as const) {
      const orig = w.layers[l][b];
      if (orig) assert.deepEqual(back.layers[l][b]!.data, f16(orig.data), `${what} ${b}`);
      else assert.equal(back.layers[l][b], undefined);
    }
  }
  if (w.config.tieWordEmbeddings) assert.equal(back.lmHead, back.embed);
}

async function expectFormatError(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof FormatError, `not a FormatError: ${e}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

Deno.test("writeAwqCheckpoint() then loadAwqWeights() gives exactly the dequantized weights (gemm and gemv)", async () => {
  const root = await Deno.makeTempDir();
  const w = randomLlamaWeights(fittingConfig(), 3);
  for (const layout of ["gemm", "gemv"] as const) {
    for (
      const settings of [
        { bits: 4, groupSize: 32, zeroPoint: true },
        { bits: 3, groupSize: 64, zeroPoint: true },
        { bits: 8, groupSize: 32, zeroPoint: false },
        { bits: 4, groupSize: 0, zeroPoint: true },
      ] as QuantSettings[]
    ) {
      const dir = join(root, `${layout}-${settings.bits}-${settings.groupSize}`);
      const q = await writeModel(dir, w, settings, layout);
      const back = await loadAwqWeights(dir);
      assertLoadedEqual(back, w, q, `${layout} ${JSON.stringify(settings)}`);
    }
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("writeAwqCheckpoint() writes AutoAWQ's config, tensor names, dtypes and shapes", async () => {
  const dir = join(await Deno.makeTempDir(), "out");
  const w = randomLlamaWeights(fittingConfig(), 4);
  await writeModel(dir, w, { bits: 4, groupSize: 32, zeroPoint: true }, "gemm");
  const cfg = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  assert.equal(cfg.torch_dtype, "float16");
  assert.deepEqual(cfg.quantization_config, {
    quant_method: "awq",
    bits: 4,
    group_size: 32,
    zero_point: true,
    version: "gemm",
    modules_to_not_convert: null,
  });
  const st = await openSafetensors(join(dir, "model.safetensors"));
  const e = (n: string) => {
    const t = st.tensors.get(n)!;
    return [t.dtype, t.shape];
  };
  assert.deepEqual(e("model.layers.0.self_attn.q_proj.qweight"), ["I32", [64, 8]]);
  assert.deepEqual(e("model.layers.0.self_attn.q_proj.qzeros"), ["I32", [2, 8]]);
  assert.deepEqual(e("model.layers.0.self_attn.q_proj.scales"), ["F16", [2, 64]]);
  assert.deepEqual(e("model.layers.1.mlp.down_proj.qweight"), ["I32", [128, 8]]);
  assert.deepEqual(e("model.embed_tokens.weight"), ["F16", [97, 64]]);
  assert.deepEqual(e("lm_head.weight"), ["F16", [97, 64]]);
  assert.equal(st.tensors.has("model.layers.0.self_attn.q_proj.weight"), false);
  assert.deepEqual(st.metadata, { format: "pt", source_sha256: "abc", tool: "awq-edge test" });
  st.close();
  assert.equal(await Deno.readTextFile(join(dir, "tokenizer.json")), '{"a": 1}');
  assert.deepEqual(await Deno.readFile(join(dir, "tokenizer.model")), new Uint8Array([1, 2, 3]));
  assert.equal(await Deno.readTextFile(join(dir, "quant_report.json")), "{}\n");
  assert.ok((await Deno.stat(join(dir, "generation_config.json"))).isFile);
});

Deno.test("writeAwqCheckpoint() pads shapes the format cannot hold and the loader slices them back", async () => {
  const root = await Deno.makeTempDir();
  // hidden 60, FFN 86, q 60 / kv 20: nothing is a multiple of 8 or of 32.
  const w = randomLlamaWeights(tinyConfig("qwen2"), 5);
  for (const layout of ["gemm", "gemv"] as const) {
    for (
      const settings of [
        { bits: 4, groupSize: 32, zeroPoint: true },
        { bits: 8, groupSize: 0, zeroPoint: true },
        { bits: 3, groupSize: 64, zeroPoint: false },
      ] as QuantSettings[]
    ) {
      const dir = join(root, `${layout}-${settings.bits}-${settings.groupSize}`);
      const q = await writeModel(dir, w, settings, layout);
      const cfg = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
      const pad = cfg.quantization_config.awq_edge_padding;
      const expected: Record<string, number[]> = {};
      for (const [name, ql] of q) {
        const [o, i] = [ql.outFeatures, ql.inFeatures];
        const [oP, iP] = paddedShape(o, i, settings, layout);
        if (oP !== o || iP !== i) expected[name] = [o, i];
      }
      assert.ok(Object.keys(expected).length > 0);
      assert.deepEqual(pad, expected);
      const back = await loadAwqWeights(dir);
      assertLoadedEqual(back, w, q, `${layout} ${JSON.stringify(settings)}`);
    }
  }
  const st = await openSafetensors(join(root, "gemm-4-32", "model.safetensors"));
  // down_proj [60, 86] at g32 in GEMM: padded to [64, 96].
  assert.deepEqual(st.tensors.get("model.layers.0.mlp.down_proj.qweight")!.shape, [96, 8]);
  assert.deepEqual(st.tensors.get("model.layers.0.self_attn.q_proj.bias")!.dtype, "F16");
  st.close();
  await Deno.remove(root, { recursive: true });
});

Deno.test("writeAwqCheckpoint() writes no padding entry when every linear fits", async () => {
  const dir = join(await Deno.makeTempDir(), "out");
  await writeModel(dir, randomLlamaWeights(fittingConfig(), 6), {
    bits: 4,
    groupSize: 64,
    zeroPoint: true,
  }, "gemv");
  const cfg = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
  assert.equal("awq_edge_padding" in cfg.quantization_config, false);
  assert.equal(cfg.quantization_config.version, "gemv");
});

Deno.test("loadHfModel() loads an AWQ checkpoint directory through loadAwqWeights()", async () => {
  const dir = join(await Deno.makeTempDir(), "out");
  const w = randomLlamaWeights(tinyConfig("llama"), 7);
  const q = await writeModel(dir, w, { bits: 4, groupSize: 32, zeroPoint: true }, "gemm");
  assertLoadedEqual(await loadHfModel(dir), w, q, "loadHfModel");
});

Deno.test("writeAwqCheckpoint() refuses an existing directory without force and leaves it alone", async () => {
  const root = await Deno.makeTempDir();
  const dir = join(root, "out");
  await Deno.mkdir(dir);
  await Deno.writeTextFile(join(dir, "keep.txt"), "mine");
  const w = randomLlamaWeights(fittingConfig(), 8);
  const s: QuantSettings = { bits: 4, groupSize: 32, zeroPoint: true };
  await expectFormatError(writeModel(dir, w, s, "gemm"), /already exists/);
  assert.equal(await Deno.readTextFile(join(dir, "keep.txt")), "mine");
  assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["out"]);
  await writeModel(dir, w, s, "gemm", { force: true });
  assert.equal(await exists(join(dir, "keep.txt")), false);
  assert.ok(await loadAwqWeights(dir));
});

Deno.test("writeAwqCheckpoint() leaves nothing behind when a quantized linear is missing", async () => {
  const root = await Deno.makeTempDir();
  const w = randomLlamaWeights(fittingConfig(), 9);
  const s: QuantSettings = { bits: 4, groupSize: 32, zeroPoint: true };
  const quantized = quantizeAllLinears(w, s);
  quantized.delete("model.layers.1.mlp.up_proj");
  await expectFormatError(
    writeAwqCheckpoint(join(root, "out"), { weights: w, quantized, settings: s, layout: "gemm" }),
    /no quantized weight for "model\.layers\.1\.mlp\.up_proj"/,
  );
  assert.deepEqual([...Deno.readDirSync(root)], []);
});

Deno.test("writeAwqCheckpoint() refuses a linear quantized with other settings", async () => {
  const root = await Deno.makeTempDir();
  const w = randomLlamaWeights(fittingConfig(), 10);
  const quantized = quantizeAllLinears(w, { bits: 4, groupSize: 32, zeroPoint: true });
  await expectFormatError(
    writeAwqCheckpoint(join(root, "out"), {
      weights: w,
      quantized,
      settings: { bits: 4, groupSize: 64, zeroPoint: true },
      layout: "gemm",
    }),
    /q_proj" was made with/,
  );
  assert.deepEqual([...Deno.readDirSync(root)], []);
});

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A fresh good checkpoint (fitting shapes, gemm, 4-bit g32) to corrupt. */
async function goodCheckpoint(): Promise<string> {
  const dir = join(await Deno.makeTempDir(), "out");
  await writeModel(dir, randomLlamaWeights(fittingConfig(), 11), {
    bits: 4,
    groupSize: 32,
    zeroPoint: true,
  }, "gemm");
  return dir;
}

const Q = "model.layers.0.self_attn.q_proj";

Deno.test("loadAwqWeights() rejects a missing qweight, naming it", async () => {
  const dir = await goodCheckpoint();
  await rewriteTensors(dir, (ts) => ts.filter((t) => t.name !== `${Q}.qweight`));
  await expectFormatError(
    loadAwqWeights(dir),
    /tensor "model\.layers\.0\.self_attn\.q_proj\.qweight" is missing/,
  );
});

Deno.test("loadAwqWeights() rejects qzeros of the wrong dtype, naming it", async () => {
  const dir = await goodCheckpoint();
  await rewriteTensors(
    dir,
    (ts) => ts.map((t) => t.name === `${Q}.qzeros` ? { ...t, dtype: "F32" } : t),
  );
  await expectFormatError(loadAwqWeights(dir), /q_proj\.qzeros" has dtype F32, expected I32/);
});

Deno.test("loadAwqWeights() rejects scales of the wrong shape, naming them", async () => {
  const dir = await goodCheckpoint();
  // [2, 64] stored as [64, 2]: same bytes, transposed shape.
  await rewriteTensors(
    dir,
    (ts) => ts.map((t) => t.name === `${Q}.scales` ? { ...t, shape: [64, 2] } : t),
  );
  await expectFormatError(loadAwqWeights(dir), /q_proj\.scales: shape \[64,2\], expected \[2,64\]/);
});

Deno.test("loadAwqWeights() rejects a leftover full-precision weight of a quantized linear", async () => {
  const dir = await goodCheckpoint();
  await rewriteTensors(dir, (ts) => [
    ...ts,
    { name: `${Q}.weight`, dtype: "F16", shape: [1], data: new Uint16Array(1) },
  ]);
  await expectFormatError(
    loadAwqWeights(dir),
    /unexpected tensor "model\.layers\.0\.self_attn\.q_proj\.weight"/,
  );
});

Deno.test("loadAwqWeights() rejects an unknown quant_method, naming the field", async () => {
  const dir = await goodCheckpoint();
  await rewriteConfig(dir, (j) => {
    (j.quantization_config as Record<string, unknown>).quant_method = "gptq";
  });
  await expectFormatError(loadAwqWeights(dir), /quantization_config\.quant_method is "gptq"/);
  await expectFormatError(loadHfModel(dir), /quant_method is "gptq"/);
});

Deno.test("loadAwqWeights() rejects an unknown version, naming the field", async () => {
  const dir = await goodCheckpoint();
  await rewriteConfig(dir, (j) => {
    (j.quantization_config as Record<string, unknown>).version = "marlin";
  });
  await expectFormatError(loadAwqWeights(dir), /quantization_config\.version is "marlin"/);
});

Deno.test("loadAwqWeights() accepts AutoAWQ's upper-case version spelling", async () => {
  const dir = await goodCheckpoint();
  await rewriteConfig(dir, (j) => {
    (j.quantization_config as Record<string, unknown>).version = "GEMM";
  });
  assert.ok(await loadAwqWeights(dir));
});

Deno.test("loadAwqWeights() rejects bits outside {3, 4, 8}, naming the field", async () => {
  const dir = await goodCheckpoint();
  await rewriteConfig(dir, (j) => {
    (j.quantization_config as Record<string, unknown>).bits = 2;
  });
  await expectFormatError(loadAwqWeights(dir), /quantization_config\.bits is 2/);
});

Deno.test("loadAwqWeights() rejects a group size that does not divide in_features, naming the module", async () => {
  const dir = await goodCheckpoint();
  await rewriteConfig(dir, (j) => {
    (j.quantization_config as Record<string, unknown>).group_size = 48;
  });
  await expectFormatError(
    loadAwqWeights(dir),
    /"model\.layers\.0\.self_attn\.q_proj" \[64, 64\] cannot be stored .* not a multiple of the group size 48/,
  );
});

Deno.test("loadAwqWeights() rejects a padding entry that disagrees with config.json", async () => {
  const dir = await goodCheckpoint();
  await rewriteConfig(dir, (j) => {
    (j.quantization_config as Record<string, unknown>).awq_edge_padding = { [Q]: [60, 64] };
  });
  await expectFormatError(
    loadAwqWeights(dir),
    /awq_edge_padding\["model\.layers\.0\.self_attn\.q_proj"\] is \[60,64\]/,
  );
});
