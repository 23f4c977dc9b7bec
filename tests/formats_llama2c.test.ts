import assert from "node:assert/strict";
import { FormatError } from "../src/errors.ts";
import {
  llama2cFloatCount,
  parseLlama2c,
  permuteHalfToInterleaved,
  permuteInterleavedToHalf,
  readLlama2c,
  readLlama2cHeader,
} from "../src/formats/llama2c.ts";

const MODELS = [
  {
    name: "stories260K",
    url: new URL("../../shared/models/stories260K/stories260K.bin", import.meta.url),
    dims: { dim: 64, hidden: 172, layers: 5, heads: 8, kv: 4, vocab: 512, seq: 512 },
  },
  {
    name: "babyllama-tok105",
    url: new URL("../../shared/models/babyllama-tok105/model5000.bin", import.meta.url),
    dims: { dim: 128, hidden: 352, layers: 5, heads: 8, kv: 4, vocab: 105, seq: 256 },
  },
];

function present(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

function header(...v: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(v).buffer);
}

/** A valid tiny checkpoint: dim 8, hidden 16, 1 layer, 2 heads, 2 kv heads, vocab 4, seq 4. */
function tinyFile(vocab = 4): Uint8Array {
  const h = readLlama2cHeader(header(8, 16, 1, 2, 2, vocab, 4));
  const n = llama2cFloatCount(h);
  const out = new Uint8Array(28 + 4 * n);
  out.set(header(8, 16, 1, 2, 2, vocab, 4));
  const f = new Float32Array(out.buffer, 28, n);
  for (let i = 0; i < n; i++) f[i] = i;
  return out;
}

for (const m of MODELS) {
  const ignore = !present(m.url);
  if (ignore) console.warn(`skipping ${m.name} tests: ${m.url.pathname} is absent`);

  Deno.test({
    name: `readLlama2c() loads ${m.name} with the shapes from its header`,
    ignore,
    fn: async () => {
      const w = await readLlama2c(m.url.pathname);
      const d = m.dims;
      const hd = d.dim / d.heads;
      assert.deepEqual(w.config, {
        modelType: "llama",
        hiddenSize: d.dim,
        intermediateSize: d.hidden,
        numLayers: d.layers,
        numHeads: d.heads,
        numKvHeads: d.kv,
        headDim: hd,
        vocabSize: d.vocab,
        maxPositionEmbeddings: d.seq,
        rmsNormEps: 1e-5,
        ropeTheta: 10000,
        tieWordEmbeddings: true,
        attentionBias: false,
        bosTokenId: 1,
        eosTokenId: 2,
      });
      assert.deepEqual(w.embed.shape, [d.vocab, d.dim]);
      assert.equal(w.lmHead, w.embed);
      assert.deepEqual(w.norm.shape, [d.dim]);
      assert.equal(w.layers.length, d.layers);
      const l = w.layers[0];
      assert.deepEqual(l.wq.shape, [d.dim, d.dim]);
      assert.deepEqual(l.wk.shape, [d.kv * hd, d.dim]);
      assert.deepEqual(l.wv.shape, [d.kv * hd, d.dim]);
      assert.deepEqual(l.wo.shape, [d.dim, d.dim]);
      assert.deepEqual(l.wGate.shape, [d.hidden, d.dim]);
      assert.deepEqual(l.wUp.shape, [d.hidden, d.dim]);
      assert.deepEqual(l.wDown.shape, [d.dim, d.hidden]);
      assert.equal(l.wq.data.length, d.dim * d.dim);
      for (const t of [w.embed, w.norm, l.wq, l.wDown]) {
        assert.ok(t.data.every(Number.isFinite));
        assert.equal(t.dtype, "F32");
      }
    },
  });

  Deno.test({
    name: `readLlama2c() permutes ${m.name} wq/wk so un-permuting gives back the raw file rows`,
    ignore,
    fn: async () => {
      const w = await readLlama2c(m.url.pathname);
      const bytes = await Deno.readFile(m.url);
      const raw = new Float32Array(bytes.buffer, 28);
      const { dim, layers: L, heads, kv, vocab } = m.dims;
      const hd = dim / heads;
      const kvDim = kv * hd;
      // File offsets (in floats) of wq and wk.
      const wqAt = vocab * dim + L * dim;
      const wkAt = wqAt + L * dim * dim;
      for (let l = 0; l < L; l++) {
        const rawQ = raw.subarray(wqAt + l * dim * dim, wqAt + (l + 1) * dim * dim);
        const rawK = raw.subarray(wkAt + l * kvDim * dim, wkAt + (l + 1) * kvDim * dim);
        const q = w.layers[l].wq.data;
        const k = w.layers[l].wk.data;
        assert.deepEqual(permuteHalfToInterleaved(q, heads, hd, dim), rawQ.slice());
        assert.deepEqual(permuteHalfToInterleaved(k, kv, hd, dim), rawK.slice());
        // And directly: row 2i+1 of head h is HF row h*hd + hd/2 + i.
        const h = heads - 1, i = 1;
        assert.deepEqual(
          q.subarray((h * hd + hd / 2 + i) * dim, (h * hd + hd / 2 + i + 1) * dim),
          rawQ.subarray((h * hd + 2 * i + 1) * dim, (h * hd + 2 * i + 2) * dim),
        );
        assert.notDeepEqual(q, rawQ.slice()); // the permutation is not the identity
      }
      // Unpermuted tensors are copied as is: the first row of wv, layer 0.
      const wvAt = wkAt + L * kvDim * dim;
      assert.deepEqual(w.layers[0].wv.data.subarray(0, dim), raw.subarray(wvAt, wvAt + dim));
    },
  });

  Deno.test({
    name: `readLlama2c() rejects a truncated copy of ${m.name}, naming the file`,
    ignore,
    fn: async () => {
      const bytes = await Deno.readFile(m.url);
      const path = await Deno.makeTempFile({ suffix: ".bin" });
      await Deno.writeFile(path, bytes.subarray(0, bytes.length - 4));
      await assert.rejects(
        readLlama2c(path),
        (e: unknown) =>
          e instanceof FormatError && e.message.includes(path) && e.message.includes("too short"),
      );
      await Deno.remove(path);
    },
  });
}

Deno.test("permuteInterleavedToHalf() sends row 2i to i and 2i+1 to i + headSize/2 in each head", () => {
  const w = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]); // 2 heads of 4 rows, 1 column
  assert.deepEqual(Array.from(permuteInterleavedToHalf(w, 2, 4, 1)), [0, 2, 1, 3, 4, 6, 5, 7]);
  assert.deepEqual(permuteHalfToInterleaved(permuteInterleavedToHalf(w, 2, 4, 1), 2, 4, 1), w);
});

Deno.test("parseLlama2c() reads a separate classifier when vocab_size is negative", () => {
  const bytes = tinyFile(-4);
  const w = parseLlama2c(bytes, "neg.bin");
  assert.equal(w.config.tieWordEmbeddings, false);
  assert.notEqual(w.lmHead, w.embed);
  assert.deepEqual(w.lmHead.shape, [4, 8]);
  const f = new Float32Array(bytes.buffer, 28);
  assert.deepEqual(w.lmHead.data, f.slice(f.length - 32)); // wcls is last
});

Deno.test("parseLlama2c() rejects a file with trailing bytes", () => {
  const good = tinyFile();
  const long = new Uint8Array(good.length + 4);
  long.set(good);
  assert.throws(
    () => parseLlama2c(long, "long.bin"),
    (e: unknown) => e instanceof FormatError && /long\.bin.*too long/.test(e.message),
  );
});

Deno.test("parseLlama2c() rejects a file shorter than its header", () => {
  assert.throws(
    () => parseLlama2c(new Uint8Array(10), "short.bin"),
    (e: unknown) => e instanceof FormatError && /short\.bin.*too short/.test(e.message),
  );
});

Deno.test("readLlama2cHeader() rejects non-positive dimensions, naming the field", () => {
  assert.throws(
    () => readLlama2cHeader(header(8, 16, 0, 2, 2, 4, 4), "z.bin"),
    (e: unknown) => e instanceof FormatError && /z\.bin.*n_layers = 0/.test(e.message),
  );
  assert.throws(
    () => readLlama2cHeader(header(8, -16, 1, 2, 2, 4, 4), "z.bin"),
    (e: unknown) => e instanceof FormatError && e.message.includes("hidden_dim"),
  );
});

Deno.test("readLlama2cHeader() rejects dim not divisible by n_heads", () => {
  assert.throws(
    () => readLlama2cHeader(header(10, 16, 1, 4, 4, 4, 4), "d.bin"),
    (e: unknown) => e instanceof FormatError && /d\.bin.*dim 10.*n_heads 4/.test(e.message),
  );
});

Deno.test("readLlama2cHeader() rejects n_heads not divisible by n_kv_heads", () => {
  assert.throws(
    () => readLlama2cHeader(header(12, 16, 1, 3, 2, 4, 4), "k.bin"),
    (e: unknown) => e instanceof FormatError && e.message.includes("n_kv_heads 2"),
  );
});

/** y = W x for a row-major [rows, cols] matrix. */
function matVec(w: Float32Array, x: Float64Array, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

/** RoPE on one head vector: pairs (a(i), b(i)) rotated by pos * theta^(-2i/hs). */
function rope(v: Float64Array, pos: number, interleaved: boolean): Float64Array {
  const hs = v.length, out = new Float64Array(hs);
  for (let i = 0; i < hs / 2; i++) {
    const a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + hs / 2;
    const ang = pos * 10000 ** (-(2 * i) / hs);
    out[a] = v[a] * Math.cos(ang) - v[b] * Math.sin(ang);
    out[b] = v[a] * Math.sin(ang) + v[b] * Math.cos(ang);
  }
  return out;
}

Deno.test({
  name:
    "readLlama2c() gives the same attention scores under rotate_half as the raw file under interleaved RoPE",
  ignore: !present(MODELS[0].url),
  fn: async () => {
    const w = await readLlama2c(MODELS[0].url.pathname);
    const raw = new Float32Array((await Deno.readFile(MODELS[0].url)).buffer, 28);
    const { dim, layers: L, heads, kv, vocab } = MODELS[0].dims;
    const hs = dim / heads;
    const wqAt = vocab * dim + L * dim, wkAt = wqAt + L * dim * dim;
    const x = new Float64Array(dim).map((_, i) => Math.sin(i * 1.7) + 0.1);
    const qRaw = matVec(raw.subarray(wqAt, wqAt + dim * dim), x, dim, dim);
    const kRaw = matVec(raw.subarray(wkAt, wkAt + kv * hs * dim), x, kv * hs, dim);
    const qHf = matVec(w.layers[0].wq.data, x, dim, dim);
    const kHf = matVec(w.layers[0].wk.data, x, kv * hs, dim);
    const head = (v: Float64Array, h: number) => v.slice(h * hs, (h + 1) * hs);
    const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, ai, i) => s + ai * b[i], 0);
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / (heads / kv));
      const want = dot(rope(head(qRaw, h), 7, true), rope(head(kRaw, kh), 3, true));
      const got = dot(rope(head(qHf, h), 7, false), rope(head(kHf, kh), 3, false));
      assert.ok(
        Math.abs(got - want) <= 1e-9 * (1 + Math.abs(want)),
        `head ${h}: ${got} vs ${want}`,
      );
    }
  },
});
