/**
 * Reader for llama2.c checkpoints (`stories260K.bin`, ...), converted to
 * Hugging Face layout and semantics: the rows of wq and wk are permuted per
 * head from llama2.c's interleaved RoPE pairs (2i, 2i+1) to HF's
 * `rotate_half` pairs (i, i + headDim/2).
 *
 * @example
 * ```ts ignore
 * import { readLlama2c } from "./llama2c.ts";
 * const w = await readLlama2c("stories260K.bin");
 * console.log(w.config.hiddenSize, w.layers.length); // 64 5
 * ```
 * @module
 */

import { FormatError } from "../errors.ts";
import type { LlamaConfig } from "../model/config.ts";
import type { HostTensor, LayerWeights, LlamaWeights } from "../model/weights.ts";

/** The 7-int32 header of a llama2.c checkpoint, decoded. */
export interface Llama2cHeader {
  /** Model width. */
  dim: number;
  /** FFN width. */
  hiddenDim: number;
  /** Number of layers. */
  nLayers: number;
  /** Number of query heads. */
  nHeads: number;
  /** Number of key/value heads. */
  nKvHeads: number;
  /** Vocabulary size (absolute value of the stored field). */
  vocabSize: number;
  /** Context length. */
  seqLen: number;
  /** Whether the classifier shares the embedding (stored vocab_size was positive). */
  sharedClassifier: boolean;
}

/** Size of the header in bytes. */
const HEADER_BYTES = 28;

/**
 * Decodes and validates the header at the start of `bytes`. `file` names the
 * source in error messages. Throws {@link FormatError} when the bytes are too
 * short, a dimension is not positive, heads do not divide `dim`, kv heads do
 * not divide heads, or the head size is odd.
 *
 * @example
 * ```ts
 * import { readLlama2cHeader } from "./llama2c.ts";
 * const h = readLlama2cHeader(new Uint8Array(new Int32Array([64, 172, 5, 8, 4, 512, 512]).buffer));
 * console.log(h.nKvHeads, h.sharedClassifier); // 4 true
 * ```
 */
export function readLlama2cHeader(bytes: Uint8Array, file = "llama2.c checkpoint"): Llama2cHeader {
  if (bytes.length < HEADER_BYTES) {
    throw new FormatError(
      `${file}: ${bytes.length} bytes is too short for a llama2.c header (${HEADER_BYTES} bytes)`,
    );
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
  const vals = names.map((_, i) => v.getInt32(i * 4, true));
  for (let i = 0; i < names.length; i++) {
    const x = i === 5 ? Math.abs(vals[i]) : vals[i];
    if (x <= 0) {
      throw new FormatError(`${file}: header field ${names[i]} = ${vals[i]} must be positive`);
    }
  }
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = vals;
  if (dim % nHeads !== 0) {
    throw new FormatError(`${file}: dim ${dim} is not divisible by n_heads ${nHeads}`);
  }
  if (nHeads % nKvHeads !== 0) {
    throw new FormatError(`${file}: n_heads ${nHeads} is not divisible by n_kv_heads ${nKvHeads}`);
  }
  if ((dim / nHeads) % 2 !== 0) {
    throw new FormatError(`${file}: head size ${dim / nHeads} is odd (RoPE needs pairs)`);
  }
  return {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocab),
    seqLen,
    sharedClassifier: vocab > 0,
  };
}

/**
 * Number of float32 values after the header, in file order, for a header.
 *
 * @example
 * ```ts
 * import { llama2cFloatCount, readLlama2cHeader } from "./llama2c.ts";
 * const h = readLlama2cHeader(new Uint8Array(new Int32Array([8, 16, 1, 2, 2, 4, 4]).buffer));
 * console.log(llama2cFloatCount(h)); // 712
 * ```
 */
export function llama2cFloatCount(h: Llama2cHeader): number {
  const headSize = h.dim / h.nHeads;
  const kvDim = (h.dim * h.nKvHeads) / h.nHeads;
  const L = h.nLayers;
  return h.vocabSize * h.dim + // token_embedding
    L * h.dim + // rms_att
    L * h.dim * h.dim + // wq
    2 * L * kvDim * h.dim + // wk, wv
    L * h.dim * h.dim + // wo
    L * h.dim + // rms_ffn
    3 * L * h.hiddenDim * h.dim + // w1, w2, w3
    h.dim + // rms_final
    h.seqLen * headSize + // two RoPE tables of seq_len * head_size / 2
    (h.sharedClassifier ? 0 : h.vocabSize * h.dim);
}

/**
 * Permutes the rows of a q or k weight `[nHeads * headSize, cols]` from
 * llama2.c's interleaved RoPE order to HF's rotate_half order: within each
 * head, row 2i goes to row i and row 2i+1 to row i + headSize/2.
 *
 * @example
 * ```ts
 * import { permuteInterleavedToHalf } from "./llama2c.ts";
 * const rows = new Float32Array([0, 1, 2, 3]); // one head of size 4, 1 column
 * console.log(Array.from(permuteInterleavedToHalf(rows, 1, 4, 1))); // [0, 2, 1, 3]
 * ```
 */
export function permuteInterleavedToHalf(
  w: Float32Array,
  nHeads: number,
  headSize: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(w.length);
  const half = headSize / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = h * headSize;
    for (let i = 0; i < half; i++) {
      out.set(w.subarray((base + 2 * i) * cols, (base + 2 * i + 1) * cols), (base + i) * cols);
      out.set(
        w.subarray((base + 2 * i + 1) * cols, (base + 2 * i + 2) * cols),
        (base + half + i) * cols,
      );
    }
  }
  return out;
}

/**
 * Inverse of {@link permuteInterleavedToHalf} (HF rotate_half order back to
 * llama2.c's interleaved order).
 *
 * @example
 * ```ts
 * import { permuteHalfToInterleaved } from "./llama2c.ts";
 * console.log(Array.from(permuteHalfToInterleaved(new Float32Array([0, 2, 1, 3]), 1, 4, 1))); // [0, 1, 2, 3]
 * ```
 */
export function permuteHalfToInterleaved(
  w: Float32Array,
  nHeads: number,
  headSize: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(w.length);
  const half = headSize / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = h * headSize;
    for (let i = 0; i < half; i++) {
      out.set(w.subarray((base + i) * cols, (base + i + 1) * cols), (base + 2 * i) * cols);
      out.set(
        w.subarray((base + half + i) * cols, (base + half + i + 1) * cols),
        (base + 2 * i + 1) * cols,
      );
    }
  }
  return out;
}

/**
 * Converts llama2.c checkpoint bytes (header included) to {@link LlamaWeights}
 * in HF layout. `file` names the source in error messages. Throws
 * {@link FormatError} when the header is bad or the byte count differs from
 * what the header implies (too short or too long).
 *
 * @example
 * ```ts
 * import { parseLlama2c } from "./llama2c.ts";
 * const header = new Int32Array([8, 16, 1, 2, 2, 4, 4]);
 * const bytes = new Uint8Array(28 + 712 * 4);
 * bytes.set(new Uint8Array(header.buffer));
 * console.log(parseLlama2c(bytes, "tiny.bin").config.headDim); // 4
 * ```
 */
export function parseLlama2c(bytes: Uint8Array, file: string): LlamaWeights {
  const h = readLlama2cHeader(bytes, file);
  const expected = HEADER_BYTES + 4 * llama2cFloatCount(h);
  if (bytes.length !== expected) {
    throw new FormatError(
      `${file}: file is too ${bytes.length < expected ? "short" : "long"} ` +
        `(${bytes.length} bytes, header implies ${expected})`,
    );
  }
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const floats = new Float32Array(
    aligned.buffer,
    aligned.byteOffset + HEADER_BYTES,
    (expected - HEADER_BYTES) / 4,
  );
  let pos = 0;
  // Takes `count` consecutive arrays of `shape`, copying each.
  const take = (count: number, shape: number[]): HostTensor[] => {
    const n = shape.reduce((a, b) => a * b, 1);
    const out: HostTensor[] = [];
    for (let i = 0; i < count; i++) {
      out.push({ data: floats.slice(pos, pos + n), shape: [...shape], dtype: "F32" });
      pos += n;
    }
    return out;
  };
  const { dim, hiddenDim, nLayers: L, nHeads, nKvHeads, vocabSize } = h;
  const headSize = dim / nHeads;
  const kvDim = nKvHeads * headSize;
  const [embed] = take(1, [vocabSize, dim]);
  const rmsAtt = take(L, [dim]);
  const wq = take(L, [dim, dim]);
  const wk = take(L, [kvDim, dim]);
  const wv = take(L, [kvDim, dim]);
  const wo = take(L, [dim, dim]);
  const rmsFfn = take(L, [dim]);
  const w1 = take(L, [hiddenDim, dim]);
  const w2 = take(L, [dim, hiddenDim]);
  const w3 = take(L, [hiddenDim, dim]);
  const [norm] = take(1, [dim]);
  pos += h.seqLen * headSize; // RoPE tables, unused
  const lmHead = h.sharedClassifier ? embed : take(1, [vocabSize, dim])[0];

  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    layers.push({
      attnNorm: rmsAtt[l],
      wq: { ...wq[l], data: permuteInterleavedToHalf(wq[l].data, nHeads, headSize, dim) },
      wk: { ...wk[l], data: permuteInterleavedToHalf(wk[l].data, nKvHeads, headSize, dim) },
      wv: wv[l],
      wo: wo[l],
      ffnNorm: rmsFfn[l],
      wGate: w1[l],
      wUp: w3[l],
      wDown: w2[l],
    });
  }
  const config: LlamaConfig = {
    modelType: "llama",
    hiddenSize: dim,
    intermediateSize: hiddenDim,
    numLayers: L,
    numHeads: nHeads,
    numKvHeads: nKvHeads,
    headDim: headSize,
    vocabSize,
    maxPositionEmbeddings: h.seqLen,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: h.sharedClassifier,
    attentionBias: false,
    bosTokenId: 1,
    eosTokenId: 2,
  };
  return { config, embed, layers, norm, lmHead };
}

/**
 * Reads a llama2.c checkpoint file into {@link LlamaWeights} in HF layout
 * (see {@link parseLlama2c}).
 *
 * @example
 * ```ts ignore
 * import { readLlama2c } from "./llama2c.ts";
 * const w = await readLlama2c("stories260K.bin");
 * console.log(w.lmHead === w.embed); // true (shared classifier)
 * ```
 */
export async function readLlama2c(path: string): Promise<LlamaWeights> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FormatError(`${path}: llama2.c checkpoint not found`, { cause: e });
    }
    throw e;
  }
  return parseLlama2c(bytes, path);
}
