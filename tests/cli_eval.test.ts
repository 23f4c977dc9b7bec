// End-to-end: `cli.ts eval` on the real shared llama2.c models, as a subprocess.
// The full evaluation file runs once per model (about 1 min for stories260K
// and 4 min for babyllama on a 2-core software adapter); everything else uses
// a few paragraphs.
import assert from "node:assert/strict";
import {
  BABY,
  EVAL_TEXT,
  firstParagraphs,
  parseOneJsonObject,
  runCli,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
  withTempDir,
} from "./support/cli_run.ts";
import { TEST_BACKENDS } from "./support/backends.ts";

if (!sharedPresent) console.warn(`skipping CLI eval tests: ${SHARED_MISSING}`);

interface EvalJson {
  tokens: number;
  predicted: number;
  nll: number;
  ppl: number;
  tokens_per_s: number;
}

/** Runs eval --json, checks stdout is exactly one JSON object, logs on stderr. */
async function evalJson(
  model: string,
  text: string,
  backend: string,
  ...extra: string[]
): Promise<EvalJson> {
  const r = await runCli([
    ...["eval", "--model", model, "--text", text, "--json", "--backend", backend],
    ...extra,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const j = parseOneJsonObject<EvalJson>(r.stdout);
  assert.deepEqual(Object.keys(j).sort(), ["nll", "ppl", "predicted", "tokens", "tokens_per_s"]);
  for (const k of Object.keys(j) as (keyof EvalJson)[]) {
    assert.ok(Number.isFinite(j[k]), `${k} = ${j[k]}`);
  }
  // The model/adapter log line goes to stderr, never stdout.
  assert.ok(r.stderrLines.some((l) => l.startsWith(`model ${model}`)), r.stderr);
  assert.ok(r.stderrLines.includes(`backend ${backend} (--backend ${backend})`), r.stderr);
  assert.ok(!r.stderrLines.some((l) => l.startsWith("error:")), r.stderr);
  assert.ok(Math.abs(j.ppl - Math.exp(j.nll)) < 1e-9 * j.ppl);
  return j;
}

// Reference figures from ../shared/models/README.md (float32, full eval text).
const FULL = [
  { name: "stories260K", model: STORIES, tokens: 131999, ppl: "5.4456" },
  { name: "babyllama-tok105", model: BABY, tokens: 271655, ppl: "2.4340" },
];

for (const backend of TEST_BACKENDS) {
  for (const ref of FULL) {
    Deno.test({
      name:
        `cli eval --json --backend ${backend}: ${ref.name} on the full eval text gives ppl ${ref.ppl}`,
      ignore: !sharedPresent,
      async fn() {
        const t0 = performance.now();
        // On wasm the exact path (f32 activations); FP models have no int4 linears anyway.
        const extra = backend === "wasm" ? ["--activations", "f32"] : [];
        const j = await evalJson(ref.model, EVAL_TEXT, backend, ...extra);
        console.error(
          `${backend} ${ref.name}: ${j.tokens} tokens, ppl ${j.ppl}, ` +
            `${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
        assert.equal(j.tokens, ref.tokens);
        assert.ok(j.predicted > 0 && j.predicted < j.tokens, `predicted ${j.predicted}`);
        assert.equal(j.ppl.toFixed(4), ref.ppl);
      },
    });
  }

  Deno.test({
    name: `cli eval --backend ${backend}: without --json prints one summary line on stdout`,
    ignore: !sharedPresent,
    async fn() {
      await withTempDir(async (dir) => {
        const text = `${dir}/short.txt`;
        await Deno.writeTextFile(text, firstParagraphs(3));
        const r = await runCli(["eval", "--model", STORIES, "--text", text, "--backend", backend]);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.split("\n").filter((l) => l !== "");
        assert.equal(lines.length, 1, r.stdout);
        assert.match(lines[0], /^tokens \d+ +predicted \d+ +mean NLL [\d.]+ +ppl [\d.]+ /);
        // Same numbers as --json.
        const j = await evalJson(STORIES, text, backend);
        assert.ok(lines[0].includes(`ppl ${j.ppl.toFixed(4)}`), lines[0]);
        assert.ok(lines[0].startsWith(`tokens ${j.tokens} `), lines[0]);
      });
    },
  });
}
