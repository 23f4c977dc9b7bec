import assert from "node:assert/strict";
import { pickCandidate } from "../src/quant/awq_layer.ts";

Deno.test("pickCandidate() takes the least loss, the earlier one on ties", () => {
  assert.equal(pickCandidate([3, 1, 2, 1, 5]), 1);
});

Deno.test("pickCandidate() chooses no scaling (the last candidate) when it beats the grid", () => {
  assert.equal(pickCandidate([3, 4, 2.5, 2]), 3);
});

Deno.test("pickCandidate() skips NaN and infinite losses, and gives -1 when none is finite", () => {
  assert.equal(pickCandidate([NaN, Infinity, 7, NaN]), 2);
  assert.equal(pickCandidate([NaN, Infinity]), -1);
});

Deno.test("candidateScales() without duo scaling is x^r, so ratio 0 means no scaling", async () => {
  const { candidateScales } = await import("../src/quant/awq_layer.ts");
  const x = new Float32Array([0.5, 2, 8]);
  const w = new Float32Array([1, 1, 1]);
  assert.deepEqual(Array.from(candidateScales(x, w, 0, false)), [1, 1, 1]);
  // r = 0.5: sqrt(x) = [0.707, 1.414, 2.828], normalised by sqrt(max * min) = sqrt(2) -> [0.5, 1, 2]
  const s = candidateScales(x, w, 0.5, false);
  [0.5, 1, 2].forEach((v, i) => assert.ok(Math.abs(s[i] - v) < 1e-6, `${s[i]} vs ${v}`));
});
