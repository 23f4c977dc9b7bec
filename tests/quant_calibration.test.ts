// Calibration windows: deterministic from the seed, plain text and JSONL,
// one-line RequestErrors naming the file.
import assert from "node:assert/strict";
import { RequestError } from "../src/errors.ts";
import {
  calibrationDocuments,
  DEFAULT_CALIBRATION_FILE,
  drawWindows,
  loadCalibration,
  seededRandom,
} from "../src/quant/calibration.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import { SHARED_MISSING, sharedPresent, STORIES, withTempDir } from "./support/cli_run.ts";

/** A toy tokenizer: BOS 1, then one id per character. */
const charTokenizer = {
  encode: (t: string, o: { bos?: boolean } = {}) => [
    ...((o.bos ?? true) ? [1] : []),
    ...Array.from(t, (c) => c.charCodeAt(0)),
  ],
};

const haveCalib = (() => {
  try {
    return Deno.statSync(DEFAULT_CALIBRATION_FILE).isFile;
  } catch {
    return false;
  }
})();

async function withFile<T>(name: string, text: string, fn: (path: string) => Promise<T>) {
  return await withTempDir(async (dir) => {
    const p = `${dir}/${name}`;
    await Deno.writeTextFile(p, text);
    return await fn(p);
  });
}

const PARAGRAPHS = Array.from({ length: 40 }, (_, i) => `Story ${i} is here.`).join("\n\n");

Deno.test("seededRandom() gives the same sequence for the same seed and another for another", () => {
  const a = seededRandom(7), b = seededRandom(7), c = seededRandom(8);
  const xs = [a(), a(), a()], ys = [b(), b(), b()], zs = [c(), c(), c()];
  assert.deepEqual(xs, ys);
  assert.notDeepEqual(xs, zs);
  for (const x of [...xs, ...zs]) assert.ok(x >= 0 && x < 1);
});

Deno.test("drawWindows() picks distinct seqlen blocks of the stream, in stream order", () => {
  const stream = Int32Array.from({ length: 100 }, (_, i) => i);
  const w = drawWindows(stream, 5, 10, 3);
  assert.equal(w.length, 5);
  const starts = w.map((x) => x[0]);
  for (const [i, x] of w.entries()) {
    assert.equal(x.length, 10);
    assert.equal(x[0] % 10, 0, "a window starts on a block boundary");
    assert.deepEqual(Array.from(x), Array.from({ length: 10 }, (_, j) => x[0] + j));
    if (i > 0) assert.ok(starts[i] > starts[i - 1], "distinct, in stream order");
  }
});

Deno.test("loadCalibration() gives the same windows for the same seed, others for another seed", async () => {
  await withFile("calib.txt", PARAGRAPHS, async (p) => {
    const o = { samples: 6, seqlen: 16 };
    const a = await loadCalibration(p, charTokenizer, { ...o, seed: 1 });
    const b = await loadCalibration(p, charTokenizer, { ...o, seed: 1 });
    const c = await loadCalibration(p, charTokenizer, { ...o, seed: 2 });
    assert.deepEqual(a.samples, b.samples);
    assert.notDeepEqual(a.samples, c.samples);
    assert.equal(a.samples.length, 6);
    for (const w of a.samples) assert.equal(w.length, 16);
    assert.equal(a.documents, 40);
    assert.equal(a.fileSha256, c.fileSha256);
    assert.match(a.fileSha256, /^[0-9a-f]{64}$/);
  });
});

Deno.test("loadCalibration() encodes each paragraph with BOS into one stream", async () => {
  await withFile("calib.txt", "ab\n\ncd\n\nef", async (p) => {
    const c = await loadCalibration(p, charTokenizer, { samples: 1, seqlen: 9, seed: 0 });
    assert.deepEqual(Array.from(c.samples[0]), [1, 97, 98, 1, 99, 100, 1, 101, 102]);
    assert.equal(c.streamTokens, 9);
  });
});

Deno.test('loadCalibration() reads JSONL "text" records like the same paragraphs in plain text', async () => {
  const docs = PARAGRAPHS.split("\n\n");
  const jsonl = docs.map((t, i) => JSON.stringify({ id: i, text: t })).join("\n") + "\n\n";
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/c.jsonl`, jsonl);
    await Deno.writeTextFile(`${dir}/c.txt`, PARAGRAPHS);
    const o = { samples: 4, seqlen: 20, seed: 5 };
    const a = await loadCalibration(`${dir}/c.jsonl`, charTokenizer, o);
    const b = await loadCalibration(`${dir}/c.txt`, charTokenizer, o);
    assert.deepEqual(a.samples, b.samples);
    assert.equal(a.documents, docs.length);
    assert.match(a.description, /records/);
  });
});

Deno.test("calibrationDocuments() names file and line of a bad JSONL record", () => {
  assert.throws(
    () => calibrationDocuments('{"text":"a"}\nnot json\n', "c.jsonl", true),
    (e) => e instanceof RequestError && /c\.jsonl:2: .*not JSON/.test(e.message),
  );
  assert.throws(
    () => calibrationDocuments('{"text":"a"}\n\n{"body":"b"}\n', "c.jsonl", true),
    (e) => e instanceof RequestError && /c\.jsonl:3: .*"text"/.test(e.message),
  );
});

Deno.test("loadCalibration() rejects a missing file, naming it", async () => {
  await withTempDir(async (dir) => {
    const p = `${dir}/nope.txt`;
    await assert.rejects(
      loadCalibration(p, charTokenizer, { samples: 1, seqlen: 4, seed: 0 }),
      (e) => e instanceof RequestError && e.message.includes(p) && /not found/.test(e.message),
    );
  });
});

Deno.test("loadCalibration() rejects an empty (whitespace-only) file, naming it", async () => {
  await withFile("empty.txt", " \n\n \n", async (p) => {
    await assert.rejects(
      loadCalibration(p, charTokenizer, { samples: 1, seqlen: 4, seed: 0 }),
      (e) => e instanceof RequestError && e.message.includes(p) && /empty/.test(e.message),
    );
  });
});

Deno.test("loadCalibration() rejects a file too short, with its token count and the count needed", async () => {
  await withFile("short.txt", "abc\n\ndef", async (p) => {
    await assert.rejects(
      loadCalibration(p, charTokenizer, { samples: 2, seqlen: 8, seed: 0 }),
      (e) =>
        e instanceof RequestError && e.message.includes(p) && /8 tokens/.test(e.message) &&
        /16 needed/.test(e.message) && !e.message.includes("\n"),
    );
  });
});

Deno.test("loadCalibration() rejects non-integer or out-of-range samples, seqlen and seed", async () => {
  await withFile("c.txt", PARAGRAPHS, async (p) => {
    for (
      const [o, opt] of [
        [{ samples: 0, seqlen: 4, seed: 0 }, "--samples"],
        [{ samples: 1.5, seqlen: 4, seed: 0 }, "--samples"],
        [{ samples: 1, seqlen: 1, seed: 0 }, "--seqlen"],
        [{ samples: 1, seqlen: 4, seed: -1 }, "--seed"],
      ] as const
    ) {
      await assert.rejects(
        loadCalibration(p, charTokenizer, o),
        (e) => e instanceof RequestError && e.message.includes(opt),
      );
    }
  });
});

Deno.test("loadCalibration() notes in its description when fewer than the paper's 128 x 512", async () => {
  await withFile("c.txt", PARAGRAPHS, async (p) => {
    const c = await loadCalibration(p, charTokenizer, { samples: 2, seqlen: 8, seed: 0 });
    assert.match(
      c.description,
      /^2 x 8 tokens from c\.txt \(seed 0.*fewer than the paper's 128 x 512/,
    );
  });
});

Deno.test({
  name:
    "loadCalibration() on the shared calibration text with the stories260K tokenizer is deterministic",
  ignore: !sharedPresent || !haveCalib,
  async fn() {
    const tok = await loadTokenizer(STORIES);
    const o = { samples: 8, seqlen: 128 };
    const a = await loadCalibration(DEFAULT_CALIBRATION_FILE, tok, { ...o, seed: 0 });
    const b = await loadCalibration(DEFAULT_CALIBRATION_FILE, tok, { ...o, seed: 0 });
    const c = await loadCalibration(DEFAULT_CALIBRATION_FILE, tok, { ...o, seed: 1 });
    assert.deepEqual(a.samples, b.samples);
    assert.notDeepEqual(a.samples, c.samples);
    // Enough text for the paper's default 128 x 512 on this tokenizer.
    assert.ok(a.streamTokens >= 128 * 512, `${a.streamTokens} tokens`);
    for (const w of a.samples) for (const id of w) assert.ok(id >= 0 && id < 512);
  },
});

if (!sharedPresent) console.warn(`skipping shared-text calibration test: ${SHARED_MISSING}`);
