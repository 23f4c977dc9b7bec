import assert from "node:assert/strict";
import { Tokenizer } from "@huggingface/tokenizers";
import { readLlama2cTokenizer } from "../src/formats/llama2c_tokenizer.ts";
import { HfTokenizer } from "../src/tokenizer/hf_tokenizer.ts";
import {
  llama2cTokenizerConfigJson,
  llama2cTokenizerToHfJson,
} from "../src/tokenizer/llama2c_to_hf.ts";
import { splitParagraphs } from "../src/engine/perplexity_stream.ts";
import { Llama2cEncoder } from "./support/llama2c_encode.ts";
import { SHARED, sharedPresent } from "./support/cli_run.ts";

if (!sharedPresent) {
  console.warn(`skipping real-data tokenizer tests: ${SHARED.pathname} is absent`);
}

const VOCABS = {
  tok512: "models/stories260K/tok512.bin",
  tok105: "models/babyllama-tok105/tok105.bin",
} as const;

async function load(name: keyof typeof VOCABS) {
  const vocab = await readLlama2cTokenizer(new URL(VOCABS[name], SHARED).pathname);
  return {
    vocab,
    hf: new HfTokenizer(
      llama2cTokenizerToHfJson(vocab),
      llama2cTokenizerConfigJson({
        modelMaxLength: 512,
      }),
    ),
    ref: new Llama2cEncoder(vocab),
  };
}

const TRICKY = [
  "",
  " ",
  "   leading spaces",
  "trailing spaces   ",
  "\u2581",
  "\u2581Once \u2581",
  "<s>",
  "<s> and </s> inside",
  "<unk>",
  "<0x41>",
  "Emoji 😀 and café, naïve, 中文, ™ €",
  "tab\tnew\nline\r\n",
  "\u00a0non-breaking\u3000ideographic",
  "a",
  "Once upon a time",
];

/** Deterministic random strings over the vocabulary's characters and a few absent ones. */
function randomStrings(pieces: readonly string[], count: number): string[] {
  const chars = [...new Set(pieces.slice(3).flatMap((p) => Array.from(p)))];
  chars.push(" ", " ", " ", "😀", "é", "\u2581", "\n", "<", ">");
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: count }, () => {
    const n = Math.floor(next() * 40);
    return Array.from({ length: n }, () => chars[Math.floor(next() * chars.length)]).join("");
  });
}

for (const name of Object.keys(VOCABS) as (keyof typeof VOCABS)[]) {
  Deno.test({
    name: `converted ${name} encodes every eval paragraph exactly as llama2.c run.c`,
    ignore: !sharedPresent,
    async fn() {
      const { hf, ref } = await load(name);
      const text = await Deno.readTextFile(new URL("data/tinystories-eval.txt", SHARED));
      const paragraphs = splitParagraphs(text);
      assert.ok(paragraphs.length > 1000);
      for (const p of paragraphs) assert.deepEqual(hf.encode(p), ref.encode(p), p);
    },
  });

  Deno.test({
    name: `converted ${name} encodes tricky strings exactly as llama2.c run.c`,
    ignore: !sharedPresent,
    async fn() {
      const { hf, ref } = await load(name);
      for (const s of TRICKY) assert.deepEqual(hf.encode(s), ref.encode(s), JSON.stringify(s));
    },
  });

  Deno.test({
    name: `converted ${name} encodes random strings exactly as llama2.c run.c`,
    ignore: !sharedPresent,
    async fn() {
      const { vocab, hf, ref } = await load(name);
      for (const s of randomStrings(vocab.pieces, 500)) {
        assert.deepEqual(hf.encode(s), ref.encode(s), JSON.stringify(s));
      }
    },
  });

  Deno.test({
    name: `converted ${name} decodes eval paragraphs exactly as llama2.c run.c`,
    ignore: !sharedPresent,
    async fn() {
      const { hf, ref } = await load(name);
      const text = await Deno.readTextFile(new URL("data/tinystories-eval.txt", SHARED));
      for (const p of splitParagraphs(text).slice(0, 300)) {
        const ids = ref.encode(p);
        assert.equal(hf.decode(ids), ref.decode(ids));
      }
    },
  });
}

Deno.test({
  name: 'converted tok512 encodes "Once upon a time" as 1 403 407 261 378',
  ignore: !sharedPresent,
  async fn() {
    const { hf } = await load("tok512");
    assert.deepEqual(hf.encode("Once upon a time"), [1, 403, 407, 261, 378]);
  },
});

Deno.test({
  name: "converted tok105 turns each character absent from the vocabulary into one <unk>",
  ignore: !sharedPresent,
  async fn() {
    const { hf } = await load("tok105");
    const ids = hf.encode("😀😀", { bos: false });
    assert.deepEqual(ids, [3, 0, 0]);
  },
});

Deno.test({
  name: "converted tok512 falls back to byte tokens for characters absent from the vocabulary",
  ignore: !sharedPresent,
  async fn() {
    const { hf } = await load("tok512");
    // 😀 = F0 9F 98 80 -> ids byte + 3.
    assert.deepEqual(hf.encode("😀", { bos: false }), [
      410,
      0xf0 + 3,
      0x9f + 3,
      0x98 + 3,
      0x80 + 3,
    ]);
  },
});

Deno.test({
  name: "the converted tokenizer.json loads directly in @huggingface/tokenizers with BOS added",
  ignore: !sharedPresent,
  async fn() {
    const vocab = await readLlama2cTokenizer(new URL(VOCABS.tok512, SHARED).pathname);
    const json = JSON.parse(JSON.stringify(llama2cTokenizerToHfJson(vocab)));
    const tok = new Tokenizer(json, llama2cTokenizerConfigJson({ modelMaxLength: 512 }));
    assert.deepEqual(tok.encode("Once upon a time").ids, [1, 403, 407, 261, 378]);
  },
});

Deno.test("llama2cTokenizerToHfJson() orders merges by the merged token's score", () => {
  const pieces = ["<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", "ab", " a", "ba"];
  const scores = Float32Array.from([0, 0, 0, -1, -2, -3, -6, -4, -5]);
  const json = llama2cTokenizerToHfJson({ maxTokenLength: 2, pieces, rawPieces: [], scores });
  const model = json.model as { merges: string[][]; byte_fallback: boolean };
  assert.deepEqual(model.merges, [[" ", "a"], ["b", "a"], ["a", "b"]]);
  assert.equal(model.byte_fallback, false);
});

Deno.test("llama2cTokenizerConfigJson() declares Llama special tokens and BOS only", () => {
  const config = llama2cTokenizerConfigJson({ modelMaxLength: 256 });
  assert.equal(config.bos_token, "<s>");
  assert.equal(config.eos_token, "</s>");
  assert.equal(config.unk_token, "<unk>");
  assert.equal(config.add_bos_token, true);
  assert.equal(config.add_eos_token, false);
  assert.equal(config.tokenizer_class, "LlamaTokenizerFast");
  assert.equal(config.model_max_length, 256);
});
