// End-to-end: `cli.ts convert` of the real llama2.c models to Hugging Face
// directories, then eval and generate on the result agree with the .bin.
import assert from "node:assert/strict";
import {
  BABY,
  firstParagraphs,
  parseOneJsonObject,
  runCli,
  runCliJson,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
  withTempDir,
} from "./support/cli_run.ts";

if (!sharedPresent) console.warn(`skipping CLI convert tests: ${SHARED_MISSING}`);

const HF_FILES = [
  "config.json",
  "generation_config.json",
  "model.safetensors",
  "tokenizer.json",
  "tokenizer_config.json",
];

const MODELS = [
  { name: "stories260K", model: STORIES, vocab: 512, prompt: "Once upon a time" },
  { name: "babyllama-tok105", model: BABY, vocab: 105, prompt: "Once upon a time" },
];

for (const m of MODELS) {
  Deno.test({
    name: `cli convert: ${m.name} -> HF dir; eval and greedy generate match the .bin`,
    ignore: !sharedPresent,
    async fn() {
      await withTempDir(async (dir) => {
        const out = `${dir}/${m.name}-hf`;
        const r = await runCli(["convert", "--model", m.model, "--out", out, "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const info = parseOneJsonObject<{ out: string; dtype: string }>(r.stdout);
        assert.equal(info.out, out);
        assert.equal(info.dtype, "F32");
        const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
        assert.deepEqual(files, HF_FILES);
        const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
        assert.equal(config.model_type, "llama");
        assert.equal(config.vocab_size, m.vocab);

        const text = `${dir}/short.txt`;
        await Deno.writeTextFile(text, firstParagraphs(4));
        type E = { tokens: number; predicted: number; nll: number; ppl: number };
        const evalArgs = (model: string) => ["eval", "--model", model, "--text", text, "--json"];
        const a = await runCliJson<E>(evalArgs(m.model));
        const b = await runCliJson<E>(evalArgs(out));
        assert.equal(b.tokens, a.tokens);
        assert.equal(b.predicted, a.predicted);
        assert.ok(a.tokens > 100, `${a.tokens} tokens`);
        assert.ok(Math.abs(a.nll - b.nll) <= 1e-6, `nll .bin ${a.nll} vs HF ${b.nll}`);

        type G = { text: string; token_ids: number[] };
        const genArgs = (model: string) => [
          "generate",
          "--model",
          model,
          "--prompt",
          m.prompt,
          "--max-tokens",
          "24",
          "--json",
        ];
        const ga = await runCliJson<G>(genArgs(m.model));
        const gb = await runCliJson<G>(genArgs(out));
        assert.ok(ga.token_ids.length > 0);
        assert.deepEqual(gb.token_ids, ga.token_ids);
        assert.equal(gb.text, ga.text);
      });
    },
  });
}

Deno.test({
  name: "cli convert: --force replaces an existing output directory",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      const out = `${dir}/hf`;
      await Deno.mkdir(out);
      await Deno.writeTextFile(`${out}/stale.txt`, "old");
      const r = await runCli(["convert", "--model", STORIES, "--out", out, "--force"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      assert.ok(r.stderrLines.some((l) => l.startsWith(`wrote ${out}`)), r.stderr);
      const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
      assert.deepEqual(files, HF_FILES);
    });
  },
});
