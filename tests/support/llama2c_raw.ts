/**
 * A minimal reader of llama2.c checkpoints into raw flat arrays, for the
 * llama2.c port in `llama2c_forward.ts`. Deliberately independent of
 * `src/formats/`, so the two can check each other.
 *
 * @module
 */

import type { Llama2cWeights } from "./llama2c_forward.ts";

/**
 * Reads a llama2.c `.bin` checkpoint: 7 int32 header fields, then float32
 * arrays in run.c's order (the two RoPE tables are skipped; a negative vocab
 * size means an unshared classifier follows them).
 *
 * @example
 * ```ts ignore
 * import { readLlama2cRaw } from "./llama2c_raw.ts";
 * const raw = await readLlama2cRaw("../shared/models/stories260K/stories260K.bin");
 * raw.config.dim; // 64
 * ```
 */
export async function readLlama2cRaw(path: string | URL): Promise<Llama2cWeights> {
  const bytes = await Deno.readFile(path);
  const header = new DataView(bytes.buffer, bytes.byteOffset, 28);
  const h = Array.from({ length: 7 }, (_, i) => header.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = h;
  const vocabSize = Math.abs(signedVocab);
  const shared = signedVocab > 0;
  const headSize = dim / nHeads;
  const kvDim = (dim * nKvHeads) / nHeads;
  // Copy so the floats are 4-byte aligned whatever the file buffer's offset.
  const floats = new Float32Array(bytes.slice(28).buffer);
  let off = 0;
  const take = (n: number): Float32Array => {
    if (off + n > floats.length) throw new Error(`${path}: file too short`);
    const a = floats.subarray(off, off + n);
    off += n;
    return a;
  };
  const tokenEmbeddingTable = take(vocabSize * dim);
  const rmsAttWeight = take(nLayers * dim);
  const wq = take(nLayers * dim * dim);
  const wk = take(nLayers * kvDim * dim);
  const wv = take(nLayers * kvDim * dim);
  const wo = take(nLayers * dim * dim);
  const rmsFfnWeight = take(nLayers * dim);
  const w1 = take(nLayers * hiddenDim * dim);
  const w2 = take(nLayers * dim * hiddenDim);
  const w3 = take(nLayers * hiddenDim * dim);
  const rmsFinalWeight = take(dim);
  take(seqLen * headSize); // freq_cis_real and freq_cis_imag (unused)
  const wcls = shared ? tokenEmbeddingTable : take(vocabSize * dim);
  return {
    config: {
      dim,
      hiddenDim,
      nLayers,
      nHeads,
      nKvHeads,
      vocabSize,
      seqLen,
      ropeTheta: 10000,
      rmsEps: 1e-5,
    },
    tokenEmbeddingTable,
    rmsAttWeight,
    wq,
    wk,
    wv,
    wo,
    rmsFfnWeight,
    w1,
    w2,
    w3,
    rmsFinalWeight,
    wcls,
  };
}
