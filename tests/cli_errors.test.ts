// End-to-end: every bad input to the CLI gives a non-zero exit, one
// `error: ...` line on stderr naming the culprit, no stack trace, and nothing
// on stdout (and convert leaves no output directory behind).
import assert from "node:assert/strict";
import {
  assertCliError,
  EVAL_TEXT,
  firstParagraphs,
  pathExists,
  runCli,
  shared,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
  withTempDir,
} from "./support/cli_run.ts";

if (!sharedPresent) {
  console.warn(`skipping CLI bad-input tests that need models: ${SHARED_MISSING}`);
}

const TOK512 = sharedPresent ? shared("models/stories260K/tok512.bin") : "";

/** A one-paragraph text file in `dir`. */
async function shortText(dir: string): Promise<string> {
  const p = `${dir}/short.txt`;
  await Deno.writeTextFile(p, sharedPresent ? firstParagraphs(1) : "Once upon a time.\n");
  return p;
}

/** Converts stories260K into `dir/hf` (for tests that then damage it). */
async function convertStories(dir: string): Promise<string> {
  const out = `${dir}/hf`;
  const r = await runCli(["convert", "--model", STORIES, "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

/** Rewrites the dtype of the first tensor in a safetensors header, in place. */
async function patchFirstDtype(file: string, from: string, to: string) {
  assert.equal(from.length, to.length, "keep the header length");
  const bytes = await Deno.readFile(file);
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
  const needle = `"dtype":"${from}"`;
  const at = header.indexOf(needle);
  assert.ok(at >= 0, `no ${needle} in ${file}`);
  const patched = header.slice(0, at) + `"dtype":"${to}"` + header.slice(at + needle.length);
  bytes.set(new TextEncoder().encode(patched), 8);
  await Deno.writeFile(file, bytes);
}

Deno.test("cli error: unknown command", async () => {
  const r = await runCli(["frobnicate"]);
  assertCliError(r, 'unknown command "frobnicate"');
  assert.equal(r.stderrLines[0], 'error: unknown command "frobnicate"');
});

Deno.test("cli error: missing model path", async () => {
  await withTempDir(async (dir) => {
    const missing = `${dir}/no-such-model.bin`;
    const text = await shortText(dir);
    assertCliError(
      await runCli(["eval", "--model", missing, "--text", text]),
      missing,
      /not found/,
    );
    assertCliError(
      await runCli(["generate", "--model", missing, "--prompt", "hi"]),
      missing,
      /not found/,
    );
    const out = `${dir}/out`;
    assertCliError(await runCli(["convert", "--model", missing, "--out", out]), missing);
    assert.ok(!pathExists(out), "convert left an output directory behind");
  });
});

Deno.test("cli error: required option missing", async () => {
  assertCliError(await runCli(["eval", "--text", "x.txt"]), "--model is required");
  assertCliError(await runCli(["eval", "--model", "x.bin"]), "--text is required");
  assertCliError(await runCli(["convert", "--model", "x.bin"]), "--out is required");
});

Deno.test("cli error: unknown option", async () => {
  const r = await runCli(["generate", "--model", "m.bin", "--prompt", "hi", "--bogus"]);
  assertCliError(r, "--bogus");
  assertCliError(await runCli(["eval", "--frobnicate", "1"]), "--frobnicate");
  assertCliError(await runCli(["convert", "--outdir", "x"]), "--outdir");
  // A stray word (e.g. an unquoted prompt) is not silently ignored.
  assertCliError(
    await runCli(["generate", "--model", "m.bin", "--prompt", "Once", "upon"]),
    "'upon'",
  );
  // A negative value needs --opt=-N; the hint stays on the one error line.
  const neg = assertCliError(
    await runCli(["generate", "--model", "m.bin", "--prompt", "hi", "--max-tokens", "-3"]),
    "--max-tokens",
  );
  assert.ok(neg.includes("--max-tokens=-XYZ"), neg);
});

Deno.test("cli error: bad numbers", async () => {
  // Options are validated before the model is read, so no model is needed.
  assertCliError(
    await runCli(["generate", "--model", "m.bin", "--prompt", "hi", "--max-tokens", "abc"]),
    "--max-tokens",
    '"abc"',
  );
  assertCliError(
    await runCli(["generate", "--model", "m.bin", "--prompt", "hi", "--temperature", "hot"]),
    "--temperature",
  );
  assertCliError(
    await runCli(["generate", "--model", "m.bin", "--prompt", "hi", "--seed", ""]),
    "--seed",
  );
  assertCliError(await runCli(["eval", "--model", "m", "--text", "t", "--dtype", "f8"]), "--dtype");
});

Deno.test({
  name: "cli error: --dtype int4 on a model that is not 4-bit AWQ names the first linear",
  ignore: !sharedPresent,
  async fn() {
    for (const command of [["eval", "--text", EVAL_TEXT], ["generate", "--prompt", "hi"]]) {
      assertCliError(
        await runCli([...command, "--model", STORIES, "--dtype", "int4"]),
        "--dtype int4",
        "model.layers.0.self_attn.q_proj.weight",
      );
    }
  },
});

Deno.test("cli error: empty --prompt", async () => {
  assertCliError(await runCli(["generate", "--model", "m.bin", "--prompt", ""]), "--prompt");
  assertCliError(await runCli(["generate", "--model", "m.bin", "--prompt", "  \n"]), "--prompt");
  assertCliError(await runCli(["generate", "--model", "m.bin"]), "--prompt");
});

Deno.test("cli error: unreadable or empty text file for eval", {
  ignore: !sharedPresent,
}, async () => {
  await withTempDir(async (dir) => {
    const empty = `${dir}/empty.txt`;
    await Deno.writeTextFile(empty, "");
    assertCliError(await runCli(["eval", "--model", STORIES, "--text", empty]), empty, /empty/);
    const blank = `${dir}/blank.txt`;
    await Deno.writeTextFile(blank, "\n\n   \n");
    assertCliError(await runCli(["eval", "--model", STORIES, "--text", blank]), blank, /empty/);
    const missing = `${dir}/missing.txt`;
    assertCliError(await runCli(["eval", "--model", STORIES, "--text", missing]), missing);
  });
});

Deno.test("cli error: corrupt or truncated llama2.c checkpoint", {
  ignore: !sharedPresent,
}, async () => {
  await withTempDir(async (dir) => {
    const bytes = await Deno.readFile(STORIES);
    const text = await shortText(dir);
    await Deno.copyFile(TOK512, `${dir}/tok512.bin`);
    const truncated = `${dir}/truncated.bin`;
    await Deno.writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    assertCliError(
      await runCli(["eval", "--model", truncated, "--text", text]),
      truncated,
      /short/,
    );
    assertCliError(
      await runCli(["generate", "--model", truncated, "--prompt", "hi"]),
      truncated,
      /short/,
    );
    const out = `${dir}/out`;
    assertCliError(await runCli(["convert", "--model", truncated, "--out", out]), truncated);
    assert.ok(!pathExists(out), "convert left an output directory behind");

    const tiny = `${dir}/tiny.bin`; // shorter than the 28-byte header
    await Deno.writeFile(tiny, bytes.subarray(0, 10));
    assertCliError(await runCli(["eval", "--model", tiny, "--text", text]), tiny, /header/);

    const garbage = `${dir}/garbage.bin`; // header with a negative dimension
    const g = bytes.slice();
    new DataView(g.buffer).setInt32(0, -64, true);
    await Deno.writeFile(garbage, g);
    assertCliError(await runCli(["eval", "--model", garbage, "--text", text]), garbage, /dim/);
  });
});

Deno.test("cli error: missing tokenizer beside a .bin copied alone", {
  ignore: !sharedPresent,
}, async () => {
  await withTempDir(async (dir) => {
    const alone = `${dir}/stories260K.bin`;
    await Deno.copyFile(STORIES, alone);
    const text = await shortText(dir);
    assertCliError(await runCli(["eval", "--model", alone, "--text", text]), alone, /tokenizer/);
    assertCliError(
      await runCli(["generate", "--model", alone, "--prompt", "hi"]),
      alone,
      /tokenizer/,
    );
    const out = `${dir}/out`;
    assertCliError(await runCli(["convert", "--model", alone, "--out", out]), /tokenizer/);
    assert.ok(!pathExists(out), "convert left an output directory behind");
    // An explicit --tokenizer that does not exist is named too.
    const noTok = `${dir}/no-tok.bin`;
    assertCliError(
      await runCli(["generate", "--model", alone, "--tokenizer", noTok, "--prompt", "hi"]),
      noTok,
    );
  });
});

Deno.test("cli error: HF directory with an unsupported model_type", async () => {
  await withTempDir(async (dir) => {
    const model = `${dir}/gpt2`;
    await Deno.mkdir(model);
    await Deno.writeTextFile(
      `${model}/config.json`,
      JSON.stringify({ model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }),
    );
    const text = await shortText(dir);
    assertCliError(
      await runCli(["eval", "--model", model, "--text", text]),
      `${model}/config.json`,
      "model_type",
      "gpt2",
    );
    assertCliError(
      await runCli(["generate", "--model", model, "--prompt", "hi"]),
      "model_type",
      "gpt2",
    );
  });
});

Deno.test("cli error: directory without config.json", async () => {
  await withTempDir(async (dir) => {
    assertCliError(await runCli(["generate", "--model", dir, "--prompt", "hi"]), "config.json");
  });
});

Deno.test("cli error: unsupported dtype in a safetensors file", {
  ignore: !sharedPresent,
}, async () => {
  await withTempDir(async (dir) => {
    const hf = await convertStories(dir);
    const st = `${hf}/model.safetensors`;
    // An integer dtype of the same size: the header is valid, the dtype is not usable.
    await patchFirstDtype(st, "F32", "I32");
    assertCliError(
      await runCli(["generate", "--model", hf, "--prompt", "hi"]),
      "model.embed_tokens.weight",
      "I32",
    );
    // A dtype safetensors does not know at all.
    await patchFirstDtype(st, "I32", "X32");
    assertCliError(
      await runCli(["generate", "--model", hf, "--prompt", "hi"]),
      st,
      "model.embed_tokens.weight",
      "X32",
    );
  });
});

Deno.test("cli error: prompt longer than the context", { ignore: !sharedPresent }, async () => {
  const prompt = "Once upon a time there was a little girl named Lily who lived in a big house " +
    "with her mom and dad and her dog.";
  const r = await runCli(["generate", "--model", STORIES, "--prompt", prompt, "--context", "16"]);
  assertCliError(r, "prompt", "16");
  assertCliError(
    await runCli(["generate", "--model", STORIES, "--prompt", "hi", "--context", "1"]),
    "--context",
  );
});

Deno.test("cli error: convert into an existing directory without --force", {
  ignore: !sharedPresent,
}, async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/existing`;
    await Deno.mkdir(out);
    await Deno.writeTextFile(`${out}/keep.txt`, "mine");
    assertCliError(
      await runCli(["convert", "--model", STORIES, "--out", out]),
      out,
      "already exists",
      "--force",
    );
    // Untouched.
    assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name), ["keep.txt"]);
    assert.equal(await Deno.readTextFile(`${out}/keep.txt`), "mine");
    // A plain file in the way is refused the same way.
    const file = `${dir}/file`;
    await Deno.writeTextFile(file, "x");
    assertCliError(await runCli(["convert", "--model", STORIES, "--out", file]), file, "exists");
  });
});

Deno.test("cli error: convert --dtype is checked", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/out`;
    assertCliError(
      await runCli(["convert", "--model", "m.bin", "--out", out, "--dtype", "Q4"]),
      "--dtype",
      "Q4",
    );
    assert.ok(!pathExists(out));
  });
});

Deno.test("cli error: damaged HF directory (tokenizer, weights, config)", {
  ignore: !sharedPresent,
}, async () => {
  await withTempDir(async (dir) => {
    const hf = await convertStories(dir);
    const gen = (model: string, ...extra: string[]) =>
      runCli(["generate", "--model", model, "--prompt", "hi", ...extra]);
    // A tokenizer of the wrong vocabulary for the model.
    assertCliError(
      await gen(shared("models/babyllama-tok105/model5000.bin"), "--tokenizer", TOK512),
      TOK512,
      "512",
    );
    const st = `${hf}/model.safetensors`;
    const full = await Deno.readFile(st);
    await Deno.writeFile(st, full.subarray(0, 5000));
    assertCliError(await gen(hf), st, /out of range|too short|end of file/);
    await Deno.remove(st);
    assertCliError(await gen(hf), "model.safetensors");
    await Deno.writeFile(st, full);
    await Deno.writeTextFile(`${hf}/config.json`, "{not json");
    assertCliError(await gen(hf), `${hf}/config.json`, /JSON/);
    await Deno.mkdir(`${dir}/again`);
    await convertStories(`${dir}/again`);
    await Deno.remove(`${dir}/again/hf/tokenizer.json`);
    assertCliError(await gen(`${dir}/again/hf`), "tokenizer.json");
  });
});

Deno.test("cli error: convert --out under a missing or non-directory parent", {
  ignore: !sharedPresent,
}, async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/no/such/parent/hf`;
    assertCliError(
      await runCli(["convert", "--model", STORIES, "--out", out]),
      out,
      `${dir}/no/such/parent does not exist`,
    );
    assert.ok(!pathExists(`${dir}/no`));
    await Deno.writeTextFile(`${dir}/file`, "x");
    const under = `${dir}/file/hf`;
    assertCliError(
      await runCli(["convert", "--model", STORIES, "--out", under]),
      under,
      "not a directory",
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["file"]);
  });
});
