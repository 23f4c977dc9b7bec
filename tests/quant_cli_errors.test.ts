// End-to-end: every bad input to `cli.ts quantize` gives a non-zero exit, one
// `error: ...` line naming the culprit, nothing on stdout, and no output (or
// `.partial`) directory left behind. All of these fail before any GPU work.
import assert from "node:assert/strict";
import {
  assertCliError,
  EVAL_TEXT,
  pathExists,
  runCli,
  shared,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
  withTempDir,
} from "./support/cli_run.ts";

if (!sharedPresent) console.warn(`skipping quantize CLI bad-input tests: ${SHARED_MISSING}`);

const CALIB = sharedPresent ? shared("data/tinystories-calib.txt") : "";

/** Runs quantize with `args` plus --model/--out, expects a clean error, checks nothing was written. */
async function expectError(
  dir: string,
  args: string[],
  ...culprits: (string | RegExp)[]
): Promise<string> {
  const out = `${dir}/out`;
  const r = await runCli(["quantize", "--model", STORIES, "--out", out, ...args]);
  const line = assertCliError(r, ...culprits);
  assert.ok(!pathExists(out), "an output directory was left behind");
  assert.ok(!pathExists(`${out}.partial`), "a .partial directory was left behind");
  const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes("out"));
  assert.deepEqual(left, [], `files left in ${dir}: ${left}`);
  return line;
}

function cliTest(name: string, fn: (dir: string) => Promise<void>) {
  Deno.test({
    name: `cli quantize error: ${name}`,
    ignore: !sharedPresent,
    fn: () => withTempDir(fn),
  });
}

Deno.test("cli quantize error: --model and --out are required", async () => {
  assertCliError(await runCli(["quantize", "--out", "x"]), "--model is required");
  assertCliError(await runCli(["quantize", "--model", "x.bin"]), "--out is required");
});

Deno.test("cli quantize: --help prints the usage and exits 0", async () => {
  const r = await runCli(["quantize", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /usage: cli\.ts quantize --model PATH --out DIR/);
  assert.match(r.stdout, /--resume/);
});

cliTest("unknown option", async (dir) => {
  await expectError(dir, ["--frobnicate"], "--frobnicate");
});

cliTest("--duo-scaling other than true, false or both", async (dir) => {
  await expectError(
    dir,
    ["--duo-scaling", "maybe"],
    "--duo-scaling must be true, false or both",
    "maybe",
  );
});

cliTest("bits outside {3, 4, 8}", async (dir) => {
  await expectError(dir, ["--bits", "5"], "--bits must be 3, 4 or 8", "5");
  await expectError(dir, ["--bits", "2"], "--bits");
  await expectError(dir, ["--bits", "four"], "--bits must be a number");
});

cliTest("group size not 0 or a power of two >= 32", async (dir) => {
  await expectError(dir, ["--group-size", "48"], "--group-size", "48");
  await expectError(dir, ["--group-size", "16"], "--group-size", "16");
  await expectError(dir, ["--group-size", "-1"], "--group-size");
  await expectError(dir, ["--group-size", "32.5"], "--group-size");
});

cliTest("group size larger than a linear's input size", async (dir) => {
  // stories260K: hidden 64, so q/k/v/gate/up take 64 inputs.
  await expectError(
    dir,
    ["--group-size", "128"],
    "--group-size 128 is larger than the input size 64",
    "q_proj",
  );
});

cliTest("bad --method, --layout, --zero-point, --samples, --seqlen, --seed", async (dir) => {
  await expectError(dir, ["--method", "gptq"], "--method must be awq or rtn", "gptq");
  await expectError(dir, ["--layout", "marlin"], "--layout must be gemm or gemv", "marlin");
  await expectError(dir, ["--zero-point", "maybe"], "--zero-point must be true or false");
  await expectError(dir, ["--samples", "0"], "--samples");
  await expectError(dir, ["--seqlen", "1"], "--seqlen");
  await expectError(dir, ["--seed", "-3"], "--seed");
  await expectError(dir, ["--samples", "2.5"], "--samples must be an integer");
});

cliTest("missing model file", async (dir) => {
  const missing = `${dir}/no-such.bin`;
  const r = await runCli(["quantize", "--model", missing, "--out", `${dir}/out`]);
  assertCliError(r, missing, /not found/);
  assert.ok(!pathExists(`${dir}/out`));
});

cliTest("missing calibration file", async (dir) => {
  const missing = `${dir}/no-calib.txt`;
  await expectError(dir, ["--calib", missing], missing, /calibration file not found/);
});

cliTest("empty calibration file", async (dir) => {
  const p = `${dir}/empty.txt`;
  await Deno.writeTextFile(p, "\n\n  \n");
  await expectError(dir, ["--calib", p, "--group-size", "32"], p, /empty/);
});

cliTest("calibration file too short for the samples asked", async (dir) => {
  const p = `${dir}/short.txt`;
  await Deno.writeTextFile(p, "Once upon a time there was a cat.\n\nThe cat sat.\n");
  await expectError(
    dir,
    ["--calib", p, "--samples", "4", "--seqlen", "64", "--group-size", "32"],
    p,
    /too short: \d+ tokens, 4 samples x 64 tokens = 256 needed/,
  );
});

cliTest("calibrating on the --validate file is refused", async (dir) => {
  await expectError(
    dir,
    ["--calib", EVAL_TEXT, "--validate", EVAL_TEXT],
    EVAL_TEXT,
    /never calibrate on the evaluation text/,
  );
  // Also a copy of it under another name.
  const copy = `${dir}/copy-of-eval.txt`;
  await Deno.copyFile(EVAL_TEXT, copy);
  await expectError(dir, ["--calib", copy, "--validate", EVAL_TEXT], /never calibrate/);
  await Deno.remove(copy);
  // Also when the default calibration file is given as the validation text.
  await expectError(dir, ["--validate", CALIB], /never calibrate/);
});

cliTest("missing or empty --validate file", async (dir) => {
  const missing = `${dir}/no-eval.txt`;
  await expectError(dir, ["--validate", missing], missing, /not found/);
  const empty = `${dir}/empty-eval.txt`;
  await Deno.writeTextFile(empty, " \n");
  await expectError(dir, ["--validate", empty], empty, /empty/);
});

cliTest("an existing output directory is refused without --force", async (dir) => {
  const out = `${dir}/existing`;
  await Deno.mkdir(out);
  await Deno.writeTextFile(`${out}/keep.txt`, "mine");
  const r = await runCli(["quantize", "--model", STORIES, "--out", out, "--method", "rtn"]);
  assertCliError(r, out, /already exists/, "--force");
  assert.equal(await Deno.readTextFile(`${out}/keep.txt`), "mine", "the directory was touched");
});

cliTest("a leftover .partial directory needs --resume or --force", async (dir) => {
  const out = `${dir}/q`;
  await Deno.mkdir(`${out}.partial`);
  const r = await runCli(["quantize", "--model", STORIES, "--out", out, "--method", "rtn"]);
  assertCliError(r, `${out}.partial`, "--resume", "--force");
  assert.ok(!pathExists(out));
});

cliTest("the output's parent directory is missing", async (dir) => {
  const out = `${dir}/no/such/parent/out`;
  const r = await runCli(["quantize", "--model", STORIES, "--out", out, "--method", "rtn"]);
  assertCliError(r, out, /parent directory/);
  assert.ok(!pathExists(`${dir}/no`));
});

cliTest("unsupported architecture", async (dir) => {
  const hf = `${dir}/hf`;
  const c = await runCli(["convert", "--model", STORIES, "--out", hf]);
  assert.equal(c.code, 0, c.stderr);
  const cfg = JSON.parse(await Deno.readTextFile(`${hf}/config.json`));
  cfg.model_type = "gemma3";
  await Deno.writeTextFile(`${hf}/config.json`, JSON.stringify(cfg));
  const out = `${dir}/out`;
  const r = await runCli(["quantize", "--model", hf, "--out", out, "--method", "rtn"]);
  assertCliError(r, "model_type", "gemma3");
  assert.ok(!pathExists(out));
  assert.ok(!pathExists(`${out}.partial`));
});
