import assert from "node:assert/strict";
import { RequestError } from "../src/errors.ts";
import { buildTokenStream, splitParagraphs, windows } from "../src/engine/perplexity_stream.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import { SHARED, sharedPresent } from "./support/cli_run.ts";

if (!sharedPresent) {
  console.warn(`skipping real-data tokenizer tests: ${SHARED.pathname} is absent`);
}

const charTokenizer = {
  encode: (t: string) => [1, ...Array.from(t, (c) => c.codePointAt(0)!)],
};

Deno.test("splitParagraphs() splits on blank lines, strips, drops empties, keeps inner newlines", () => {
  assert.deepEqual(splitParagraphs("  One\ntwo \n\n\n\n\t\nThree\n\n   \n\n"), [
    "One\ntwo",
    "Three",
  ]);
});

Deno.test("splitParagraphs() returns nothing for whitespace-only text", () => {
  assert.deepEqual(splitParagraphs(" \n\n\t\n\n"), []);
});

Deno.test("buildTokenStream() concatenates each paragraph's BOS-led encoding", () => {
  assert.deepEqual(Array.from(buildTokenStream("ab\n\n c ", charTokenizer)), [1, 97, 98, 1, 99]);
});

Deno.test("buildTokenStream() rejects text with no paragraphs", () => {
  assert.throws(() => buildTokenStream("\n\n  \n\n", charTokenizer), RequestError);
});

Deno.test("windows() cuts min(context, 256)-token windows and keeps a last window of 2+", () => {
  const stream = Int32Array.from({ length: 600 }, (_, i) => i);
  assert.deepEqual(windows(stream, 2048).map((w) => w.length), [256, 256, 88]);
  assert.deepEqual(windows(stream, 100).map((w) => w.length), [100, 100, 100, 100, 100, 100]);
  assert.equal(windows(stream, 2048)[1][0], 256);
});

Deno.test("windows() drops a last window of a single token", () => {
  assert.deepEqual(windows(new Int32Array(513), 512).map((w) => w.length), [256, 256]);
  assert.deepEqual(windows(new Int32Array(514), 512).map((w) => w.length), [256, 256, 2]);
});

Deno.test("windows() rejects a context length below 2", () => {
  assert.throws(() => windows(new Int32Array(10), 1), RequestError);
});

for (
  const [model, count] of [
    ["models/stories260K/stories260K.bin", 131999],
    ["models/babyllama-tok105/model5000.bin", 271655],
  ] as const
) {
  Deno.test({
    name: `buildTokenStream() gives ${count} tokens for the eval text with ${model}`,
    ignore: !sharedPresent,
    async fn() {
      const tok = await loadTokenizer(new URL(model, SHARED).pathname);
      const text = await Deno.readTextFile(new URL("data/tinystories-eval.txt", SHARED));
      assert.equal(buildTokenStream(text, tok).length, count);
    },
  });
}
