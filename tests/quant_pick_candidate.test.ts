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
