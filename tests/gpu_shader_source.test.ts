import assert from "node:assert/strict";
import { loadShaderSource } from "../src/gpu/shader_source.ts";

Deno.test("loadShaderSource() expands //!include lines with the named shader", async () => {
  const text = await loadShaderSource("awq_clip");
  assert.ok(!/^\/\/!include/m.test(text), "the include line is replaced");
  assert.ok(text.includes("fn group_quant("), "the included helper is present");
  assert.equal(text.split("fn group_quant(").length, 2, "included exactly once");
});

Deno.test("loadShaderSource() puts the weight prelude before the kernel", async () => {
  const text = await loadShaderSource("matmul", "f16");
  assert.ok(text.indexOf("fn weight(") < text.indexOf("fn gemv("));
  assert.ok(text.includes("unpack2x16float"));
});
