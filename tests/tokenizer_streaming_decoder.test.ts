import assert from "node:assert/strict";
import { readLlama2cTokenizer } from "../src/formats/llama2c_tokenizer.ts";
import { HfTokenizer } from "../src/tokenizer/hf_tokenizer.ts";
import { llama2cTokenizerToHfJson } from "../src/tokenizer/llama2c_to_hf.ts";
import { StreamingDecoder } from "../src/tokenizer/streaming_decoder.ts";
import { splitParagraphs } from "../src/engine/perplexity_stream.ts";
import { SHARED, sharedPresent } from "./support/cli_run.ts";

if (!sharedPresent) {
  console.warn(`skipping real-data tokenizer tests: ${SHARED.pathname} is absent`);
}

/** A byte source where id n is the n-th entry of `tokens`. */
function source(tokens: number[][]) {
  return { tokenBytes: (_prev: number, id: number) => Uint8Array.from(tokens[id]) };
}

Deno.test("StreamingDecoder holds back a character split across byte tokens until complete", () => {
  // "😀" = F0 9F 98 80, one byte per token, then "!".
  const stream = new StreamingDecoder(source([[0xf0], [0x9f], [0x98], [0x80], [0x21]]));
  assert.deepEqual([0, 1, 2, 3, 4].map((id) => stream.push(id)), ["", "", "", "😀", "!"]);
  assert.equal(stream.flush(), "");
});

Deno.test("StreamingDecoder emits complete text before an incomplete trailing sequence", () => {
  // "a" + first two bytes of "€" (E2 82 AC) in one token, then the last byte.
  const stream = new StreamingDecoder(source([[0x61, 0xe2, 0x82], [0xac]]));
  assert.equal(stream.push(0), "a");
  assert.equal(stream.push(1), "€");
});

Deno.test("StreamingDecoder.flush() turns an unfinished sequence into U+FFFD", () => {
  const stream = new StreamingDecoder(source([[0xe2, 0x82]]));
  assert.equal(stream.push(0), "");
  assert.equal(stream.flush(), "\uFFFD");
});

Deno.test({
  name: "StreamingDecoder output joined equals HfTokenizer.decode() on eval paragraphs (tok512)",
  ignore: !sharedPresent,
  async fn() {
    const vocab = await readLlama2cTokenizer(
      new URL("models/stories260K/tok512.bin", SHARED).pathname,
    );
    const tok = new HfTokenizer(llama2cTokenizerToHfJson(vocab));
    const text = await Deno.readTextFile(new URL("data/tinystories-eval.txt", SHARED));
    const samples = [...splitParagraphs(text).slice(0, 100), "Emoji 😀, café, 中文 ™"];
    for (const p of samples) {
      const ids = tok.encode(p);
      const stream = new StreamingDecoder(tok);
      const out = ids.map((id) => stream.push(id)).join("") + stream.flush();
      assert.equal(out, tok.decode(ids));
      assert.equal(out, p);
    }
  },
});

Deno.test({
  name: "StreamingDecoder started after a prompt keeps the space of the first generated token",
  ignore: !sharedPresent,
  async fn() {
    const vocab = await readLlama2cTokenizer(
      new URL("models/stories260K/tok512.bin", SHARED).pathname,
    );
    const tok = new HfTokenizer(llama2cTokenizerToHfJson(vocab));
    const prompt = tok.encode("Once upon a time");
    const continuation = tok.encode(" there was", { bos: false }).slice(1); // drop dummy prefix
    const stream = new StreamingDecoder(tok, prompt[prompt.length - 1]);
    const out = continuation.map((id) => stream.push(id)).join("");
    assert.equal(out, " there was");
  },
});
