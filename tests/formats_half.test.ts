import assert from "node:assert/strict";
import {
  bf16ToF32,
  f16BitsToF32Bits,
  f16ToF32,
  f32BitsToF16Bits,
  f32ToBf16,
  f32ToF16,
} from "../src/formats/half.ts";

function bitsOf(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

Deno.test("f32ToF16() converts exactly representable values exactly", () => {
  const xs = [
    0,
    1,
    -1,
    0.5,
    2,
    65504,
    -65504,
    6.103515625e-5,
    5.960464477539063e-8,
    0.333251953125,
  ];
  const back = f16ToF32(f32ToF16(new Float32Array(xs)));
  assert.deepEqual(Array.from(back), xs);
});

Deno.test("f32ToF16() keeps the sign of zero", () => {
  assert.equal(f32BitsToF16Bits(bitsOf(-0)), 0x8000);
  assert.equal(f32BitsToF16Bits(bitsOf(0)), 0x0000);
});

Deno.test("f32ToF16() rounds ties to even for normals", () => {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: rounds down to even (1).
  assert.equal(f32BitsToF16Bits(bitsOf(1 + 2 ** -11)), 0x3c00);
  // 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
  assert.equal(f32BitsToF16Bits(bitsOf(1 + 3 * 2 ** -11)), 0x3c02);
  // Just above halfway rounds up.
  assert.equal(f32BitsToF16Bits(bitsOf(1 + 2 ** -11 + 2 ** -20)), 0x3c01);
});

Deno.test("f32ToF16() rounds subnormals to nearest even", () => {
  const tiny = 2 ** -24; // smallest f16 subnormal
  assert.equal(f32BitsToF16Bits(bitsOf(tiny)), 0x0001);
  assert.equal(f32BitsToF16Bits(bitsOf(tiny / 2)), 0x0000); // tie -> even (0)
  assert.equal(f32BitsToF16Bits(bitsOf(tiny * 1.5)), 0x0002); // tie -> even (2)
  assert.equal(f32BitsToF16Bits(bitsOf(tiny * 0.75)), 0x0001);
  assert.equal(f32BitsToF16Bits(bitsOf(tiny * 0.25)), 0x0000);
  assert.equal(f32BitsToF16Bits(bitsOf(-tiny * 3)), 0x8003);
  // Largest subnormal rounding up into the smallest normal.
  assert.equal(f32BitsToF16Bits(bitsOf(2 ** -14 - 2 ** -26)), 0x0400);
});

Deno.test("f32ToF16() overflows to infinity and keeps inf and NaN", () => {
  assert.equal(f32BitsToF16Bits(bitsOf(65520)), 0x7c00); // halfway past max rounds to inf
  assert.equal(f32BitsToF16Bits(bitsOf(65519)), 0x7bff);
  assert.equal(f32BitsToF16Bits(bitsOf(1e10)), 0x7c00);
  assert.equal(f32BitsToF16Bits(bitsOf(-Infinity)), 0xfc00);
  const nan = f32BitsToF16Bits(bitsOf(NaN));
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
});

Deno.test("f16ToF32() decodes every f16 bit pattern to the same value as a reference formula", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const got = f16ToF32(all);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    const want = e === 0
      ? s * m * 2 ** -24
      : e === 31
      ? (m ? NaN : s * Infinity)
      : s * (1 + m / 1024) * 2 ** (e - 15);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got[h]), `h=${h}`);
    else assert.equal(got[h], want, `h=${h.toString(16)}`);
  }
});

Deno.test("f32ToF16() inverts f16ToF32() on every non-NaN f16", () => {
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
    assert.equal(f32BitsToF16Bits(f16BitsToF32Bits(h)), h);
  }
});

Deno.test("bf16ToF32() and f32ToBf16() round-trip and round to nearest even", () => {
  assert.deepEqual(Array.from(bf16ToF32(new Uint16Array([0x3f80, 0xc000, 0x7f80]))), [
    1,
    -2,
    Infinity,
  ]);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
  assert.equal(f32ToBf16(new Float32Array([1 + 2 ** -8]))[0], 0x3f80);
  assert.equal(f32ToBf16(new Float32Array([1 + 3 * 2 ** -8]))[0], 0x3f82);
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(new Float32Array([NaN])))[0]));
});
