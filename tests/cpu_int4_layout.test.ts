/** The int4 repacking of the WebAssembly kernels and the int8 activation rounding. */

import assert from "node:assert/strict";
import { quantizeInt8, roundTripInt8 } from "../src/cpu/activation_quant.ts";
import { int4BlockSize, repackInt4 } from "../src/cpu/int4_layout.ts";
import { FormatError } from "../src/errors.ts";
import { randomFloats, randomQuantized, rng } from "./support/cpu_inputs.ts";

Deno.test("int4BlockSize picks the largest of 128/64/32 dividing the group", () => {
  assert.equal(int4BlockSize(4096, 128), 128);
  assert.equal(int4BlockSize(4096, 256), 128);
  assert.equal(int4BlockSize(4096, 64), 64);
  assert.equal(int4BlockSize(4096, 32), 32);
  assert.equal(int4BlockSize(4096, 0), 128);
  assert.equal(int4BlockSize(40, 64), 128);
  assert.equal(int4BlockSize(4096, 48), undefined);
});

Deno.test("repackInt4 keeps every code, nibble for nibble, and expands scales per block", () => {
  for (const [cols, group] of [[100, 32], [256, 128], [70, 0], [200, 64]]) {
    const ql = randomQuantized(rng(cols), 3, cols, group);
    const p = repackInt4(ql, "w");
    const rowBytes = (p.blocks * p.block) / 2;
    const g = group || cols;
    for (let r = 0; r < 3; r++) {
      for (let k = 0; k < p.blocks * p.block; k++) {
        const byte = p.codes[r * rowBytes + (k >> 5) * 16 + (k & 15)];
        const code = (k & 31) < 16 ? byte & 15 : byte >> 4;
        assert.equal(code, k < cols ? ql.q[r * cols + k] : 0, `row ${r} k ${k}`);
      }
      for (let b = 0; b < p.blocks; b++) {
        const gi = r * Math.ceil(cols / g) + Math.floor((b * p.block) / g);
        assert.equal(p.s[r * p.blocks + b], ql.scales[gi]);
        assert.equal(p.m[r * p.blocks + b], Math.fround(-ql.scales[gi] * ql.zeros[gi]));
      }
    }
  }
});

Deno.test("repackInt4 rejects a group size that is not a multiple of 32, naming the tensor", () => {
  const ql = randomQuantized(rng(1), 2, 96, 48);
  assert.throws(
    () => repackInt4(ql, "layers.1.wo"),
    (e: unknown) => e instanceof FormatError && /layers\.1\.wo/.test(e.message),
  );
});

Deno.test("quantizeInt8 rounds ties to even and keeps the error within d/2", () => {
  const { q, d } = quantizeInt8(new Float32Array([127, 0.5, 1.5, -2.5, 0, 0, 0]), 4);
  assert.deepEqual([...q], [127, 0, 2, -2, 0, 0, 0]);
  assert.deepEqual([...d], [1, 0]);
  const x = randomFloats(rng(9), 300, -3, 3);
  const rt = roundTripInt8(x, 128);
  const d2 = quantizeInt8(x, 128).d;
  for (let i = 0; i < x.length; i++) {
    assert.ok(Math.abs(rt[i] - x[i]) <= d2[Math.floor(i / 128)] * 0.5001, `value ${i}`);
  }
});
