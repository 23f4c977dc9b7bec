import assert from "node:assert/strict";
import { FormatError } from "../src/errors.ts";
import { readLlama2cTokenizer } from "../src/formats/llama2c_tokenizer.ts";
import { HfTokenizer } from "../src/tokenizer/hf_tokenizer.ts";
import {
  llama2cTokenizerConfigJson,
  llama2cTokenizerToHfJson,
} from "../src/tokenizer/llama2c_to_hf.ts";
import { splitParagraphs } from "../src/engine/perplexity_stream.ts";
import { SHARED, sharedPresent } from "./support/cli_run.ts";

if (!sharedPresent) {
  console.warn(`skipping real-data tokenizer tests: ${SHARED.pathname} is absent`);
}

const PIECES = ["<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", " a", " ab", "é"];
const SCORES = Float32Array.from([0, 0, 0, -1, -2, -3, -4, -5, -6]);
const tinyJson = () =>
  llama2cTokenizerToHfJson({ maxTokenLength: 3, pieces: PIECES, rawPieces: [], scores: SCORES });

/** The same tiny vocabulary in the form real HF Llama-2 tokenizer.json files use. */
function llamaStyleJson(): Record<string, unknown> {
  const native = tinyJson() as { model: { vocab: Record<string, number>; merges: string[][] } };
  const sp = (s: string) => s.replaceAll(" ", "\u2581");
  return {
    version: "1.0",
    added_tokens: ["<unk>", "<s>", "</s>"].map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "\u2581" },
        { type: "Replace", pattern: { String: " " }, content: "\u2581" },
      ],
    },
    pre_tokenizer: null,
    model: {
      type: "BPE",
      unk_token: "<unk>",
      fuse_unk: true,
      byte_fallback: true,
      vocab: Object.fromEntries(Object.entries(native.model.vocab).map(([k, v]) => [sp(k), v])),
      merges: native.model.merges.map(([a, b]) => `${sp(a)} ${sp(b)}`),
    },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "\u2581" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
  };
}

Deno.test("HfTokenizer.encode() starts with BOS once for a converted llama2.c tokenizer", () => {
  const tok = new HfTokenizer(tinyJson());
  assert.deepEqual(tok.encode("ab"), [1, 7]);
  assert.deepEqual(tok.encode("ab", { bos: false }), [7]);
  assert.deepEqual(tok.encode(""), [1]);
});

Deno.test("HfTokenizer.encode() adds BOS once when the post-processor also adds it (HF Llama)", () => {
  const tok = new HfTokenizer(llamaStyleJson(), { bos_token: "<s>", eos_token: "</s>" });
  assert.deepEqual(tok.encode("ab"), [1, 7]);
  assert.deepEqual(tok.encode("ab", { bos: false }), [7]);
  assert.equal(tok.bosId, 1);
  assert.deepEqual(tok.eosIds, [2]);
});

Deno.test("HfTokenizer finds BOS from the post-processor when there is no tokenizer_config", () => {
  assert.equal(new HfTokenizer(llamaStyleJson()).bosId, 1);
});

Deno.test("HfTokenizer has no BOS when tokenizer_config sets bos_token to null", () => {
  const tok = new HfTokenizer(tinyJson(), { bos_token: null });
  assert.equal(tok.bosId, -1);
  assert.deepEqual(tok.encode("ab"), [7]);
});

Deno.test("HfTokenizer.decode() drops the dummy-prefix space only after BOS", () => {
  for (const tok of [new HfTokenizer(tinyJson()), new HfTokenizer(llamaStyleJson())]) {
    assert.equal(tok.decode([1, 7, 6]), "ab a");
    assert.equal(tok.decode([7, 6]), " ab a");
    assert.equal(tok.decode([]), "");
  }
});

Deno.test("HfTokenizer.decode() skips BOS and EOS unless asked to keep special tokens", () => {
  const tok = new HfTokenizer(tinyJson(), llama2cTokenizerConfigJson({ modelMaxLength: 8 }));
  assert.equal(tok.decode([1, 7, 2]), "ab");
  assert.equal(tok.decode([1, 7, 2], { skipSpecialTokens: false }), "<s>ab</s>");
});

Deno.test("HfTokenizer.decodeToken() gives one token's text after the previous id", () => {
  const tok = new HfTokenizer(tinyJson());
  assert.equal(tok.decodeToken(1, 7), "ab");
  assert.equal(tok.decodeToken(4, 7), " ab");
  assert.equal(tok.decodeToken(7, 1), "");
});

Deno.test("HfTokenizer reports the vocabulary size including special tokens", () => {
  assert.equal(new HfTokenizer(tinyJson()).vocabSize, PIECES.length);
});

Deno.test("HfTokenizer rejects an object that is not a tokenizer.json, naming the source", () => {
  assert.throws(
    () => new HfTokenizer({ hello: 1 }, {}, { source: "x/tokenizer.json" }),
    (e: unknown) => e instanceof FormatError && e.message.startsWith("x/tokenizer.json"),
  );
});

Deno.test("HfTokenizer.fromDirectory() names tokenizer.json when it is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => HfTokenizer.fromDirectory(dir),
      (e: unknown) => e instanceof FormatError && e.message.includes(`${dir}/tokenizer.json`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HfTokenizer.fromDirectory() names tokenizer.json when it is not JSON", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, "{not json");
    await assert.rejects(
      () => HfTokenizer.fromDirectory(dir),
      (e: unknown) =>
        e instanceof FormatError && e.message.startsWith(`${dir}/tokenizer.json: not valid JSON`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HfTokenizer.fromDirectory() reads tokenizer_config and generation_config EOS ids", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(llamaStyleJson()));
    await Deno.writeTextFile(
      `${dir}/tokenizer_config.json`,
      JSON.stringify({ bos_token: { content: "<s>" }, eos_token: "</s>" }),
    );
    await Deno.writeTextFile(
      `${dir}/generation_config.json`,
      JSON.stringify({ eos_token_id: [2, 5] }),
    );
    const tok = await HfTokenizer.fromDirectory(dir);
    assert.equal(tok.bosId, 1);
    assert.deepEqual(tok.eosIds, [2, 5]);
    assert.deepEqual(tok.encode("ab"), [1, 7]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "HfTokenizer.decode(encode(x)) returns every eval paragraph unchanged (tok512)",
  ignore: !sharedPresent,
  async fn() {
    const vocab = await readLlama2cTokenizer(
      new URL("models/stories260K/tok512.bin", SHARED).pathname,
    );
    const tok = new HfTokenizer(llama2cTokenizerToHfJson(vocab));
    const text = await Deno.readTextFile(new URL("data/tinystories-eval.txt", SHARED));
    for (const p of splitParagraphs(text)) assert.equal(tok.decode(tok.encode(p)), p);
    const odd = "Emoji 😀 and café ™";
    assert.equal(tok.decode(tok.encode(odd)), odd);
  },
});

Deno.test({
  name: "HfTokenizer.decode(encode(x)) returns eval paragraphs unchanged (tok105)",
  ignore: !sharedPresent,
  async fn() {
    const vocab = await readLlama2cTokenizer(
      new URL("models/babyllama-tok105/tok105.bin", SHARED).pathname,
    );
    const tok = new HfTokenizer(llama2cTokenizerToHfJson(vocab));
    const text = await Deno.readTextFile(new URL("data/tinystories-eval.txt", SHARED));
    const ref = new Set(vocab.pieces);
    for (const p of splitParagraphs(text)) {
      if (Array.from(p).every((c) => ref.has(c))) assert.equal(tok.decode(tok.encode(p)), p);
    }
  },
});

Deno.test("HfTokenizer keeps the tokenizer.json and tokenizer_config objects it was built from", () => {
  const json = tinyJson();
  const config = llama2cTokenizerConfigJson({ modelMaxLength: 8 });
  const tok = new HfTokenizer(json, config);
  assert.equal(tok.tokenizerJson, json);
  assert.equal(tok.tokenizerConfig, config);
  assert.deepEqual(new HfTokenizer(JSON.parse(JSON.stringify(json)), config).encode("ab"), [1, 7]);
});
