// End-to-end: `cli.ts generate` on the real stories260K model, as a subprocess.
import assert from "node:assert/strict";
import {
  parseOneJsonObject,
  REPO_ROOT,
  runCli,
  runCliJson,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
} from "./support/cli_run.ts";
import { TEST_BACKENDS } from "./support/backends.ts";

if (!sharedPresent) console.warn(`skipping CLI generate tests: ${SHARED_MISSING}`);

interface GenJson {
  text: string;
  token_ids: number[];
  tokens_per_s: number;
}

// From ../shared/models/README.md: greedy continuation of "Once upon a time".
const PROMPT = "Once upon a time";
const REF_IDS = [432, 383, 286, 261, 376, 298, 315, 421, 395, 317];
const REF_TEXT = ", there was a little girl named Lily.";

for (const backend of TEST_BACKENDS) {
  const B = ["--backend", backend];
  const gen = (...extra: string[]) =>
    runCliJson<GenJson>([
      ...["generate", "--model", STORIES, "--prompt", PROMPT, ...extra, "--json", ...B],
    ]);

  Deno.test({
    name:
      `cli generate --json --backend ${backend}: greedy stories260K continues with the reference ids`,
    ignore: !sharedPresent,
    async fn() {
      const r = await runCli([
        "generate",
        "--model",
        STORIES,
        "--prompt",
        PROMPT,
        "--max-tokens",
        "40",
        "--json",
        ...B,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const j = parseOneJsonObject<GenJson>(r.stdout);
      assert.deepEqual(Object.keys(j).sort(), ["text", "token_ids", "tokens_per_s"]);
      assert.equal(j.token_ids.length, 40);
      assert.deepEqual(j.token_ids.slice(0, REF_IDS.length), REF_IDS);
      assert.ok(j.text.startsWith(REF_TEXT), j.text);
      assert.ok(j.tokens_per_s > 0);
      // Logs (model line, tokens/s summary) are on stderr only.
      assert.ok(r.stderrLines.some((l) => l.startsWith(`model ${STORIES}`)), r.stderr);
      assert.ok(r.stderrLines.includes(`backend ${backend} (--backend ${backend})`), r.stderr);
      assert.ok(r.stderrLines.some((l) => /^40 tokens \(length\)/.test(l)), r.stderr);
    },
  });

  Deno.test({
    name: `cli generate --backend ${backend}: without --json streams exactly the generated text`,
    ignore: !sharedPresent,
    async fn() {
      const j = await gen("--max-tokens", "20");
      const r = await runCli([
        "generate",
        "--model",
        STORIES,
        "--prompt",
        PROMPT,
        "--max-tokens",
        "20",
        ...B,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${j.text}\n`);
    },
  });

  Deno.test({
    name: `cli generate --backend ${backend}: --stop "Lily" cuts the text before "Lily"`,
    ignore: !sharedPresent,
    async fn() {
      const j = await gen("--max-tokens", "40", "--stop", "Lily");
      assert.equal(j.text, ", there was a little girl named ");
      assert.ok(!j.text.includes("Lily"));
      assert.ok(j.token_ids.length < 40, `${j.token_ids.length} tokens`);
      assert.deepEqual(j.token_ids.slice(0, 5), REF_IDS.slice(0, 5));
    },
  });

  Deno.test({
    name: `cli generate --backend ${backend}: --max-tokens is respected`,
    ignore: !sharedPresent,
    async fn() {
      for (const n of [1, 7]) {
        const j = await gen("--max-tokens", String(n));
        assert.equal(j.token_ids.length, n);
        assert.deepEqual(j.token_ids, REF_IDS.slice(0, n));
      }
      const s = await gen("--max-tokens", "5", "--temperature", "0.8", "--seed", "3");
      assert.equal(s.token_ids.length, 5);
    },
  });

  Deno.test({
    name:
      `cli generate --backend ${backend}: sampling at temperature 0.8 is deterministic per seed`,
    ignore: !sharedPresent,
    async fn() {
      const sample = (seed: number) =>
        gen("--max-tokens", "40", "--temperature", "0.8", "--seed", String(seed));
      const a = await sample(1);
      const b = await sample(1);
      assert.equal(b.text, a.text);
      assert.deepEqual(b.token_ids, a.token_ids);
      assert.ok(a.token_ids.length > 0 && a.token_ids.length <= 40);
      let differs = false;
      for (const seed of [2, 3, 4]) {
        if ((await sample(seed)).text !== a.text) {
          differs = true;
          break;
        }
      }
      assert.ok(differs, "seeds 2, 3 and 4 all gave the text of seed 1");
    },
  });

  Deno.test({
    name: `cli generate --backend ${backend}: a closed stdout (| head) stops quietly`,
    ignore: !sharedPresent,
    async fn() {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", "cli.ts", "generate", "--model", STORIES, "--prompt", PROMPT],
          ...["--max-tokens", "500", ...B],
        ],
        cwd: REPO_ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).spawn();
      const reader = child.stdout.getReader();
      const first = await reader.read();
      assert.ok(!first.done && first.value.length > 0);
      await reader.cancel();
      const status = await child.status;
      const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
      assert.doesNotMatch(stderr, /Uncaught|BrokenPipe|^\s+at /m, stderr);
      // 141 (SIGPIPE convention) when the pipe broke, 0 if generation had already finished.
      assert.ok(status.code === 141 || status.code === 0, `exit ${status.code}:\n${stderr}`);
    },
  });
}

Deno.test({
  name:
    "cli generate: presence and frequency penalties change greedy stories260K alike on every backend",
  ignore: !sharedPresent,
  async fn() {
    const runs: number[][] = [];
    for (const backend of TEST_BACKENDS) {
      const r = await runCliJson<GenJson>([
        ...["generate", "--model", STORIES, "--prompt", PROMPT, "--max-tokens", "40"],
        ...[
          "--presence-penalty",
          "0.5",
          "--frequency-penalty",
          "1",
          "--json",
          "--backend",
          backend,
        ],
      ]);
      runs.push(r.token_ids);
    }
    const plain = await runCliJson<GenJson>([
      ...["generate", "--model", STORIES, "--prompt", PROMPT, "--max-tokens", "40", "--json"],
      ...["--backend", TEST_BACKENDS[0]],
    ]);
    assert.equal(runs[0].length, 40);
    assert.notDeepEqual(runs[0], plain.token_ids, "the penalties changed nothing");
    for (const ids of runs.slice(1)) assert.deepEqual(ids, runs[0]);
  },
});
