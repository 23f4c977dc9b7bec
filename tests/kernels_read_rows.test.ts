// shaders/read_rows.wgsl (the benchmarks' memory-read baseline) against a
// TypeScript wrapping sum per row.

import assert from "node:assert/strict";
import { mulberry32, withKernels } from "./support/seeded.ts";

/** The reference: per row, the u32 sum (mod 2^32) of its 4 * words4 values. */
function rowSums(data: Uint32Array, rows: number, words4: number): Uint32Array {
  const out = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < 4 * words4; i++) s = (s + data[r * 4 * words4 + i]) >>> 0;
    out[r] = s;
  }
  return out;
}

Deno.test("read_rows sums each row with u32 wraparound (one row, rows past a workgroup, max values)", () =>
  withKernels(async (h) => {
    const rng = mulberry32(1);
    for (const [rows, words4] of [[1, 1], [65, 3], [130, 17]]) {
      const data = Uint32Array.from({ length: rows * words4 * 4 }, () => (rng() * 2 ** 32) >>> 0);
      data[0] = 0xffffffff;
      const out = h.u32(new Uint32Array(rows + 1).fill(7));
      h.run(await h.kernels.readRows(h.u32(data), out, rows, words4));
      const got = await h.readU32(out, rows + 1);
      assert.deepEqual(got.subarray(0, rows), rowSums(data, rows, words4), `${rows} x ${words4}`);
      assert.equal(got[rows], 7, "past the last row untouched");
    }
  }));
