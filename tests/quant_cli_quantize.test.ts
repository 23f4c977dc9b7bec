// End-to-end: `cli.ts quantize` on stories260K as a subprocess: RTN (no GPU
// pipeline) and AWQ with a small calibration set write an AutoAWQ checkpoint
// with provenance and a report, which `eval` then loads and runs.
import assert from "node:assert/strict";
import { sha256File } from "../src/quant/provenance.ts";
import { openSafetensors } from "../src/formats/safetensors_read.ts";
import {
  firstParagraphs,
  parseOneJsonObject,
  pathExists,
  runCli,
  runCliJson,
  shared,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
  withTempDir,
} from "./support/cli_run.ts";

if (!sharedPresent) console.warn(`skipping quantize CLI tests: ${SHARED_MISSING}`);

const CALIB = sharedPresent ? shared("data/tinystories-calib.txt") : "";
const DATE = "2024-05-01T12:00:00.000Z";

interface LayerJson {
  layer: number;
  scaling: { group: string; ratio: number; loss_before: number; loss_after: number }[];
  linears: { name: string; clip_shrink_mean: number; quant_error: number }[];
  seconds: Record<string, number>;
}
interface SummaryJson {
  out: string;
  method: string;
  bits: number;
  group_size: number;
  seconds: number;
  layers: LayerJson[];
  validation?: { file: string; tokens: number; fp_ppl: number; quant_ppl: number; ratio: number };
}
type EvalJson = { tokens: number; nll: number; ppl: number };

/** Checks the written directory: config, provenance in metadata and report, no leftovers. */
async function checkCheckpoint(out: string, method: string, bits: number, g: number) {
  const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
  for (const f of ["config.json", "quant_report.json", "tokenizer.json", "tokenizer_config.json"]) {
    assert.ok(files.includes(f), `${f} missing from ${files}`);
  }
  assert.ok(files.some((f) => f.endsWith(".safetensors")), `no safetensors in ${files}`);
  assert.ok(!pathExists(`${out}.partial`), "the .partial work directory was not removed");
  const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  assert.equal(config.quantization_config.quant_method, "awq");
  assert.equal(config.quantization_config.bits, bits);
  assert.equal(config.quantization_config.group_size, g);
  assert.equal(config.quantization_config.zero_point, true);
  assert.equal(config.quantization_config.version, "gemm");

  const report = JSON.parse(await Deno.readTextFile(`${out}/quant_report.json`));
  assert.equal(report.method, method);
  assert.equal(report.bits, bits);
  assert.equal(report.group_size, g);
  const st = await openSafetensors(`${out}/model.safetensors`);
  try {
    const meta = st.metadata;
    assert.equal(meta.quantizer, "awq-edge");
    assert.equal(meta.source_sha256, await sha256File(STORIES));
    assert.equal(meta.method, method);
    assert.equal(meta.bits, String(bits));
    assert.equal(meta.group_size, String(g));
    assert.equal(meta.date, DATE);
    // quant_report.json carries the same provenance.
    for (const [k, v] of Object.entries(report.provenance as Record<string, string>)) {
      assert.equal(meta[k], v, `metadata ${k}`);
    }
    if (method === "awq") assert.equal(meta.calib_sha256, await sha256File(CALIB));
    else assert.equal(meta.calib_sha256, undefined);
  } finally {
    st.close();
  }
  return report;
}

async function evalPpl(model: string, text: string): Promise<EvalJson> {
  // On WebGPU, where quantize --validate measures (auto picks wasm, int8 activations, on a
  // software adapter; those move the figure by ~0.1%).
  return await runCliJson<EvalJson>([
    ...["eval", "--model", model, "--text", text, "--json", "--backend", "webgpu"],
  ]);
}

Deno.test({
  name: "cli quantize --method rtn: stories260K w4 g32 writes a checkpoint that eval runs",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      const out = `${dir}/rtn`;
      const r = await runCli([
        "quantize",
        "--model",
        STORIES,
        "--out",
        out,
        "--method",
        "rtn",
        "--group-size",
        "32",
        "--date",
        DATE,
        "--json",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const j = parseOneJsonObject<SummaryJson>(r.stdout);
      assert.deepEqual(Object.keys(j).sort(), [
        "bits",
        "group_size",
        "layers",
        "method",
        "out",
        "seconds",
      ]);
      assert.equal(j.out, out);
      assert.equal(j.method, "rtn");
      assert.equal(j.layers.length, 5);
      for (const l of j.layers) {
        assert.equal(l.linears.length, 7, `layer ${l.layer} linears`);
        for (const x of l.linears) assert.ok(Number.isFinite(x.quant_error) && x.quant_error > 0);
      }
      // The readable table is on stderr.
      assert.ok(r.stderrLines.some((l) => l.includes("q error")), r.stderr);
      const report = await checkCheckpoint(out, "rtn", 4, 32);
      assert.equal(report.calibration, null);

      const text = `${dir}/eval.txt`;
      await Deno.writeTextFile(text, firstParagraphs(4));
      const fp = await evalPpl(STORIES, text);
      const q = await evalPpl(out, text);
      assert.equal(q.tokens, fp.tokens);
      assert.ok(q.ppl > fp.ppl * 0.98 && q.ppl < fp.ppl * 2, `FP ${fp.ppl} vs RTN w4 ${q.ppl}`);
    });
  },
});

Deno.test({
  name:
    "cli quantize --method awq: small calibration, --validate puts FP and quantized ppl in the report",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      const out = `${dir}/awq`;
      const text = `${dir}/held.txt`;
      await Deno.writeTextFile(text, firstParagraphs(6));
      const r = await runCli([
        "quantize",
        "--model",
        STORIES,
        "--out",
        out,
        "--group-size",
        "32",
        "--bits",
        "4",
        "--samples",
        "8",
        "--seqlen",
        "128",
        "--seed",
        "3",
        "--validate",
        text,
        "--date",
        DATE,
        "--json",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const j = parseOneJsonObject<SummaryJson>(r.stdout);
      assert.equal(j.method, "awq");
      assert.equal(j.layers.length, 5);
      for (const l of j.layers) {
        assert.ok(l.scaling.length >= 3, `layer ${l.layer}: ${l.scaling.length} scaling groups`);
        for (const s of l.scaling) {
          assert.ok(s.ratio >= 0 && s.ratio < 1, `${s.group} ratio ${s.ratio}`);
          assert.ok(s.loss_after <= s.loss_before * (1 + 1e-6), `${s.group} loss got worse`);
        }
      }
      const v = j.validation!;
      assert.ok(v, "no validation in the JSON");
      assert.ok(Number.isFinite(v.fp_ppl) && Number.isFinite(v.quant_ppl));
      assert.ok(Math.abs(v.ratio - v.quant_ppl / v.fp_ppl) < 1e-12);
      assert.ok(v.ratio > 0.98 && v.ratio < 2, `ratio ${v.ratio}`);
      const report = await checkCheckpoint(out, "awq", 4, 32);
      assert.deepEqual(report.validation, v);
      assert.equal(report.calibration.samples, 8);
      assert.equal(report.calibration.seqlen, 128);
      assert.match(report.calibration.description, /fewer than the paper's/);
      // The quantized perplexity in the report is what eval measures on the written files.
      const q = await evalPpl(out, text);
      assert.ok(Math.abs(q.ppl - v.quant_ppl) <= 1e-6 * v.quant_ppl, `${q.ppl} vs ${v.quant_ppl}`);
    });
  },
});
