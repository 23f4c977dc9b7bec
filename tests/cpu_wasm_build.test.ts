/** The shipped WebAssembly kernels are exactly what the generator and wabt build. */

import assert from "node:assert/strict";
import { buildKernels, KERNELS_WASM_TS, kernelsModuleSource } from "../src/cpu/wasm/build.ts";
import { kernelsWat } from "../src/cpu/wasm/kernels_wat.ts";
import { kernelBytes } from "../src/cpu/wasm/kernels_module.ts";

Deno.test("kernels_wasm.ts equals a fresh build of kernels_wat.ts (run `deno task build-wasm`)", async () => {
  const built = await buildKernels();
  const shipped = await Deno.readTextFile(KERNELS_WASM_TS);
  assert.ok(
    shipped === kernelsModuleSource(built),
    "src/cpu/wasm/kernels_wasm.ts is stale: run `deno task build-wasm`",
  );
  assert.deepEqual(kernelBytes("relaxed", true), built.relaxed);
  assert.deepEqual(kernelBytes("plain", true), built.plain);
});

Deno.test("only the relaxed variant uses relaxed SIMD; both validate here", () => {
  assert.match(kernelsWat("relaxed"), /relaxed_dot_i8x16_i7x16_s/);
  assert.doesNotMatch(kernelsWat("plain"), /relaxed/);
  for (const v of ["relaxed", "plain"] as const) {
    assert.ok(WebAssembly.validate(kernelBytes(v, true) as Uint8Array<ArrayBuffer>), v);
    assert.ok(
      WebAssembly.validate(kernelBytes(v, false) as Uint8Array<ArrayBuffer>),
      `${v} unshared`,
    );
  }
});
