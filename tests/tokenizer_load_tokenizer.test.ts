import assert from "node:assert/strict";
import { FormatError } from "../src/errors.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import { SHARED, sharedPresent } from "./support/cli_run.ts";

if (!sharedPresent) {
  console.warn(`skipping real-data tokenizer tests: ${SHARED.pathname} is absent`);
}
const shared = (p: string) => new URL(p, SHARED).pathname;

/** A fake llama2.c checkpoint: just the 7-int header. */
function header(vocabSize: number, seqLen: number): Uint8Array {
  return new Uint8Array(Int32Array.from([64, 172, 5, 8, 4, vocabSize, seqLen]).buffer);
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "loadTokenizer() finds the only tok*.bin beside a llama2.c checkpoint (tok512)",
  ignore: !sharedPresent,
  async fn() {
    const tok = await loadTokenizer(shared("models/stories260K/stories260K.bin"));
    assert.equal(tok.vocabSize, 512);
    assert.deepEqual(tok.encode("Once upon a time"), [1, 403, 407, 261, 378]);
  },
});

Deno.test({
  name: "loadTokenizer() finds tok105.bin beside model5000.bin",
  ignore: !sharedPresent,
  async fn() {
    const tok = await loadTokenizer(shared("models/babyllama-tok105/model5000.bin"));
    assert.equal(tok.vocabSize, 105);
  },
});

Deno.test({
  name: "loadTokenizer() uses an explicit llama2.c tokenizer path",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      await Deno.writeFile(`${dir}/model.bin`, header(512, 512));
      const tok = await loadTokenizer(`${dir}/model.bin`, shared("models/stories260K/tok512.bin"));
      assert.deepEqual(tok.encode("Once upon a time"), [1, 403, 407, 261, 378]);
    });
  },
});

Deno.test({
  name: "loadTokenizer() rejects a tokenizer whose size disagrees with the checkpoint",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      await Deno.writeFile(`${dir}/model.bin`, header(32000, 512));
      const tokPath = shared("models/stories260K/tok512.bin");
      await assert.rejects(
        () => loadTokenizer(`${dir}/model.bin`, tokPath),
        (e: unknown) =>
          e instanceof FormatError && e.message.startsWith(tokPath) &&
          e.message.includes("vocab_size 32000"),
      );
    });
  },
});

Deno.test({
  name: "loadTokenizer() prefers tokenizer.bin beside the checkpoint",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      await Deno.writeFile(`${dir}/model.bin`, header(105, 256));
      await Deno.copyFile(shared("models/babyllama-tok105/tok105.bin"), `${dir}/tokenizer.bin`);
      await Deno.copyFile(shared("models/stories260K/tok512.bin"), `${dir}/tok512.bin`);
      const tok = await loadTokenizer(`${dir}/model.bin`);
      assert.equal(tok.vocabSize, 105);
    });
  },
});

Deno.test("loadTokenizer() names where it looked when no tokenizer is beside the checkpoint", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/model.bin`, header(512, 512));
    await assert.rejects(
      () => loadTokenizer(`${dir}/model.bin`),
      (e: unknown) =>
        e instanceof FormatError && e.message.includes(`${dir}/tokenizer.bin`) &&
        e.message.includes(`tok*.bin in ${dir}`),
    );
  });
});

Deno.test("loadTokenizer() refuses to guess between several tok*.bin files", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/model.bin`, header(512, 512));
    await Deno.writeFile(`${dir}/tok1.bin`, new Uint8Array(4));
    await Deno.writeFile(`${dir}/tok2.bin`, new Uint8Array(4));
    await assert.rejects(
      () => loadTokenizer(`${dir}/model.bin`),
      (e: unknown) =>
        e instanceof FormatError && /several tokenizers.*tok1\.bin, tok2\.bin/.test(e.message),
    );
  });
});

Deno.test("loadTokenizer() names tokenizer.json when a model directory lacks it", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      () => loadTokenizer(dir),
      (e: unknown) => e instanceof FormatError && e.message.startsWith(`${dir}/tokenizer.json`),
    );
  });
});

Deno.test("loadTokenizer() names a model path that does not exist", async () => {
  await assert.rejects(
    () => loadTokenizer("/nonexistent/model.bin"),
    (e: unknown) => e instanceof FormatError && e.message.startsWith("/nonexistent/model.bin"),
  );
});
