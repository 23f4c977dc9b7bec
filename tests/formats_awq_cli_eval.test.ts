// End-to-end: an AWQ checkpoint of the real stories260K (RTN with the
// reference quantizer, w4 g32, GEMM with the padding extension since its FFN
// is 172 wide) runs through `cli.ts eval` like any HF directory, and its
// perplexity stays close to the full-precision one.
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeAwqCheckpoint } from "../src/formats/awq_checkpoint.ts";
import { loadHfModel } from "../src/formats/hf_model.ts";
import {
  firstParagraphs,
  parseOneJsonObject,
  runCli,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
  withTempDir,
} from "./support/cli_run.ts";
import { quantizeAllLinears } from "./support/awq_model.ts";

if (!sharedPresent) console.warn(`skipping AWQ CLI eval test: ${SHARED_MISSING}`);

async function evalPpl(model: string, text: string): Promise<number> {
  const r = await runCli(["eval", "--model", model, "--text", text, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return parseOneJsonObject<{ ppl: number }>(r.stdout).ppl;
}

Deno.test({
  name: "cli eval --model AWQ_DIR runs a padded w4 g32 checkpoint of stories260K near its FP ppl",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      const hf = join(dir, "hf");
      const conv = await runCli(["convert", "--model", STORIES, "--out", hf]);
      assert.equal(conv.code, 0, conv.stderr);
      const weights = await loadHfModel(hf);
      const settings = { bits: 4, groupSize: 32, zeroPoint: true } as const;
      const tokenizerFiles: Record<string, string> = {};
      for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
        tokenizerFiles[f] = await Deno.readTextFile(join(hf, f));
      }
      const awq = join(dir, "awq");
      await writeAwqCheckpoint(awq, {
        weights,
        quantized: quantizeAllLinears(weights, settings),
        settings,
        layout: "gemm",
        tokenizerFiles,
        metadata: { method: "rtn" },
      });
      const cfg = JSON.parse(await Deno.readTextFile(join(awq, "config.json")));
      assert.ok(
        cfg.quantization_config.awq_edge_padding,
        "stories260K needs the padding extension",
      );
      const text = join(dir, "short.txt");
      await Deno.writeTextFile(text, firstParagraphs(3));
      const fp = await evalPpl(hf, text);
      const q = await evalPpl(awq, text);
      console.error(`stories260K ppl: FP ${fp.toFixed(4)}, RTN w4 g32 (AWQ file) ${q.toFixed(4)}`);
      assert.ok(Number.isFinite(q) && q >= fp * 0.98 && q < fp * 1.5, `FP ${fp}, quantized ${q}`);
    });
  },
});
