// shaders/attention.wgsl (workgroup online softmax) and
// attention_rows.wgsl (one invocation per (head, row)) over rows of several slots, against
// tests/support/reference_batched.ts: rows of several slots at different
// positions, each attending to its own slot's keys 0..position. Cache rows
// past each row's window and the other slots hold large random values, so a
// kernel that reads the wrong slot or looks past its window fails.
// Tolerance: |gpu - ref| <= 2e-6 + 1e-4·|ref|.

import assert from "node:assert/strict";
import { GpuError } from "../src/errors.ts";
import type { AttentionKernel, AttentionShape } from "../src/gpu/kernels.ts";
import { attentionBatchedRef, type BatchRow, rowPositions } from "./support/reference_batched.ts";
import { roundKv, uploadCache } from "./support/kv_cache.ts";
import { assertClose, mulberry32, randomFloats, withKernels } from "./support/seeded.ts";

type Entry = AttentionKernel["shader"];
const ENTRIES: Entry[] = ["attention", "attention_rows"];
const TOL = { abs: 2e-6, rel: 1e-4 };

interface Case {
  shape: AttentionShape;
  slots: number;
  slotPos: number[];
  rows: BatchRow[];
  qScale: number;
}

async function check(entry: Entry | undefined, c: Case, seed: number) {
  await withKernels(async (h) => {
    const { nHeads, nKv, headDim, maxSeq } = c.shape;
    const rng = mulberry32(seed);
    const kvDim = nKv * headDim;
    const T = c.rows.length;
    const q = randomFloats(rng, T * nHeads * headDim, -c.qScale, c.qScale);
    const k = randomFloats(rng, c.slots * maxSeq * kvDim, 20, 40);
    const v = randomFloats(rng, c.slots * maxSeq * kvDim, 1000, 1001);
    // Only the rows some query may see get O(1) values.
    const pos = rowPositions(c.rows, c.slotPos);
    c.rows.forEach(([s], t) => {
      const base = s * maxSeq * kvDim;
      for (let i = base; i < base + Math.min(pos[t] + 1, maxSeq) * kvDim; i++) {
        k[i] = 2 * rng() - 1;
        v[i] = 2 * rng() - 1;
      }
    });
    const kv = c.shape.kv ?? "f32";
    const out = h.f32(new Float32Array(q.length).fill(NaN));
    const d = await h.kernels.attentionBatched(
      h.f32(q),
      uploadCache(h, k, kv),
      uploadCache(h, v, kv),
      out,
      h.u32(c.slotPos.flatMap((p) => [p, 1, 0, 0])),
      h.u32(c.rows.flat()),
      T,
      c.shape,
      { entry },
    );
    h.run(d);
    const ref = attentionBatchedRef(q, roundKv(k, kv), roundKv(v, kv), c.rows, c.slotPos, c.shape);
    assertClose(await h.readF32(out, q.length), ref, TOL, entry ?? "table");
  });
}

const CASES: [string, Case][] = [
  [
    "decode rows of 4 slots at positions 70, 3, 0, 64 (GQA 4/2, head 8)",
    {
      shape: { nHeads: 4, nKv: 2, headDim: 8, maxSeq: 96 },
      slots: 4,
      slotPos: [70, 3, 0, 64],
      rows: [[3, 0], [0, 0], [2, 0], [1, 0]],
      qScale: 3,
    },
  ],
  [
    "a prompt chunk of slot 1 from position 62 (straddling 64 keys) beside a decode row",
    {
      shape: { nHeads: 6, nKv: 2, headDim: 8, maxSeq: 96 },
      slots: 2,
      slotPos: [10, 62],
      rows: [[1, 0], [1, 1], [1, 2], [1, 3], [0, 0]],
      qScale: 2,
    },
  ],
  [
    "head size 128, two slots at 128 and 5 (several 64-key chunks)",
    {
      shape: { nHeads: 4, nKv: 1, headDim: 128, maxSeq: 140 },
      slots: 2,
      slotPos: [128, 5],
      rows: [[0, 0], [1, 0]],
      qScale: 0.4,
    },
  ],
  [
    "large scores stay finite (max subtracted before exp)",
    {
      shape: { nHeads: 2, nKv: 2, headDim: 8, maxSeq: 72 },
      slots: 3,
      slotPos: [66, 1, 40],
      rows: [[2, 0], [0, 0], [0, 1], [1, 0]],
      qScale: 60,
    },
  ],
];

for (const entry of ENTRIES) {
  for (const [label, c] of CASES) {
    Deno.test(`${entry} matches the reference: ${label}`, () => check(entry, c, 1));
    Deno.test(`${entry} with an f16 KV cache matches the reference: ${label}`, () =>
      check(entry, { ...c, shape: { ...c.shape, kv: "f16" } }, 2));
  }
}

Deno.test("attentionBatched without an entry override uses the kernel table and matches the reference", () =>
  check(undefined, CASES[0][1], 2));

Deno.test("batched attention handles a head size that is not a multiple of 4", () =>
  check("attention", {
    shape: { nHeads: 6, nKv: 2, headDim: 10, maxSeq: 72 },
    slots: 2,
    slotPos: [64, 9],
    rows: [[0, 0], [1, 0], [0, 1]],
    qScale: 2,
  }, 3));

Deno.test("batched attention_rows rejects a head size that is not a multiple of 4", () =>
  withKernels(async (h) => {
    const shape = { nHeads: 2, nKv: 1, headDim: 10, maxSeq: 8 };
    const b = h.u32([0, 0, 0, 0]);
    await assert.rejects(
      () =>
        h.kernels.attentionBatched(b, b, b, b, b, b, 1, shape, {
          entry: "attention_rows",
        }),
      GpuError,
    );
  }));
