import assert from "node:assert/strict";
import { FormatError } from "../src/errors.ts";
import { parseLlama2cTokenizer, readLlama2cTokenizer } from "../src/formats/llama2c_tokenizer.ts";
import { SHARED, sharedPresent } from "./support/cli_run.ts";

if (!sharedPresent) {
  console.warn(`skipping real-data tokenizer tests: ${SHARED.pathname} is absent`);
}

/** Builds a tokenizer file: header, then (score, piece) entries. */
function build(maxLen: number, entries: [number, string][]): Uint8Array {
  const enc = new TextEncoder();
  const parts = entries.map(([s, p]) => [s, enc.encode(p)] as const);
  const size = 4 + parts.reduce((n, [, b]) => n + 8 + b.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setInt32(0, maxLen, true);
  let o = 4;
  for (const [s, b] of parts) {
    view.setFloat32(o, s, true);
    view.setInt32(o + 4, b.length, true);
    out.set(b, o + 8);
    o += 8 + b.length;
  }
  return out;
}

function throwsNaming(fn: () => unknown, file: string, pattern: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected a FormatError, got ${e}`);
    assert.ok(e.message.startsWith(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("parseLlama2cTokenizer() reads pieces, raw bytes and scores", () => {
  const v = parseLlama2cTokenizer(build(3, [[0, "<unk>"], [-1.5, " é"], [-2, "ab"]]), "t.bin");
  assert.deepEqual(v.maxTokenLength, 3);
  assert.deepEqual(v.pieces, ["<unk>", " é", "ab"]);
  assert.deepEqual(Array.from(v.rawPieces[1]), [0x20, 0xc3, 0xa9]);
  assert.deepEqual(Array.from(v.scores), [0, -1.5, -2]);
});

Deno.test("parseLlama2cTokenizer() rejects a file shorter than the header", () => {
  throwsNaming(
    () => parseLlama2cTokenizer(new Uint8Array(3), "short.bin"),
    "short.bin",
    /too short/,
  );
});

Deno.test("parseLlama2cTokenizer() rejects a header with no entries", () => {
  throwsNaming(
    () => parseLlama2cTokenizer(build(4, []), "empty.bin"),
    "empty.bin",
    /no vocabulary/,
  );
});

Deno.test("parseLlama2cTokenizer() rejects a negative max_token_length", () => {
  throwsNaming(
    () => parseLlama2cTokenizer(build(-1, [[0, "a"]]), "neg.bin"),
    "neg.bin",
    /max_token_length/,
  );
});

Deno.test("parseLlama2cTokenizer() rejects a negative piece length", () => {
  const bytes = build(1, [[0, "a"], [0, "b"]]);
  new DataView(bytes.buffer).setInt32(4 + 9 + 4, -5, true);
  throwsNaming(
    () => parseLlama2cTokenizer(bytes, "len.bin"),
    "len.bin",
    /entry 1 .*invalid piece length -5/,
  );
});

Deno.test("parseLlama2cTokenizer() rejects an absurd piece length", () => {
  const bytes = build(1, [[0, "a"]]);
  new DataView(bytes.buffer).setInt32(8, 0x7fffffff, true);
  throwsNaming(() => parseLlama2cTokenizer(bytes, "huge.bin"), "huge.bin", /invalid piece length/);
});

Deno.test("parseLlama2cTokenizer() rejects a piece cut short by the end of the file", () => {
  const bytes = build(2, [[0, "a"], [0, "bc"]]);
  throwsNaming(
    () => parseLlama2cTokenizer(bytes.subarray(0, bytes.length - 1), "cut.bin"),
    "cut.bin",
    /entry 1 is truncated/,
  );
});

Deno.test("parseLlama2cTokenizer() rejects trailing garbage after the last entry", () => {
  const bytes = build(1, [[0, "a"]]);
  const padded = new Uint8Array(bytes.length + 3);
  padded.set(bytes);
  throwsNaming(
    () => parseLlama2cTokenizer(padded, "trail.bin"),
    "trail.bin",
    /entry 1 is truncated/,
  );
});

Deno.test("parseLlama2cTokenizer() rejects a vocab size that disagrees with the model", () => {
  throwsNaming(
    () =>
      parseLlama2cTokenizer(build(1, [[0, "a"], [0, "b"]]), "size.bin", { expectedVocabSize: 3 }),
    "size.bin",
    /has 2 tokens but the model expects vocab_size 3/,
  );
});

Deno.test("readLlama2cTokenizer() names the file it cannot read", async () => {
  await assert.rejects(
    () => readLlama2cTokenizer("/nonexistent/tok.bin"),
    (e: unknown) => e instanceof FormatError && e.message.startsWith("/nonexistent/tok.bin"),
  );
});

Deno.test({
  name: "readLlama2cTokenizer() reads tok512.bin: 512 pieces with byte tokens at 3..258",
  ignore: !sharedPresent,
  async fn() {
    const v = await readLlama2cTokenizer(
      new URL("models/stories260K/tok512.bin", SHARED).pathname,
      {
        expectedVocabSize: 512,
      },
    );
    assert.deepEqual(v.pieces.length, 512);
    assert.deepEqual(v.pieces.slice(0, 4), ["<unk>", "\n<s>\n", "\n</s>\n", "<0x00>"]);
    assert.deepEqual(v.pieces[258], "<0xFF>");
  },
});

Deno.test({
  name: "readLlama2cTokenizer() reads tok105.bin: 105 pieces, no byte tokens",
  ignore: !sharedPresent,
  async fn() {
    const v = await readLlama2cTokenizer(
      new URL("models/babyllama-tok105/tok105.bin", SHARED).pathname,
    );
    assert.deepEqual(v.pieces.length, 105);
    assert.deepEqual(v.pieces.filter((p) => p.startsWith("<0x")).length, 0);
  },
});
