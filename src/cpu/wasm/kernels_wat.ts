/**
 * The WebAssembly kernels of the CPU backend, as WebAssembly text generated
 * by small TypeScript functions (the source of truth: `build.ts` assembles
 * it with wabt into `kernels_wasm.ts`). A generator rather than one `.wat`
 * file because the matmul kernels are the same loop unrolled for several
 * tile shapes, block sizes and two instruction sets:
 *
 * - `relaxed`: int4 × int8 dot products with `i16x8.relaxed_dot_i8x16_i7x16_s`
 *   (pmaddubsw on x86), accumulated in i16 within a block of ≤ 128 values
 *   (16 products of ≤ 15·127 per lane: ≤ 30480, no overflow), and fused
 *   multiply-adds with `f32x4.relaxed_madd`.
 * - `plain`: SIMD128 only: int8 activations are stored widened to i16 and
 *   multiplied with `i32x4.dot_i16x8_s`; multiply then add.
 *
 * Every kernel takes byte addresses into the one shared memory. Matmul
 * kernels compute output rows `[r0, r1)` (whole tiles of R rows only; the
 * caller runs the rest with the R = 1 kernel) for T input rows at once, so
 * a weight load is reused T times. See `int4_layout.ts` for the int4 layout.
 *
 * @module
 */

/** Which instruction set a module uses. */
export type SimdVariant = "relaxed" | "plain";

/** Block sizes of the int4 kernels. */
export const INT4_BLOCKS = [32, 64, 128] as const;

/**
 * Tile shapes [R weight rows, T input rows] every matmul kernel is built for:
 * GEMV 4×1; two inputs (a decode batch of 2-3) 4×2; GEMM 2×4; the remainders
 * 1×1 and 1×4.
 */
export const TILES = [[4, 1], [1, 1], [1, 4], [2, 4], [4, 2]] as const;

/**
 * Export name of an int4 matmul kernel.
 *
 * @example
 * ```ts
 * import { int4KernelName } from "./kernels_wat.ts";
 * int4KernelName("int8", 128, 4, 1); // "q4i8_b128_r4_t1"
 * ```
 */
export function int4KernelName(
  activations: "int8" | "f32",
  block: number,
  r: number,
  t: number,
): string {
  return `q4${activations === "int8" ? "i8" : "f"}_b${block}_r${r}_t${t}`;
}

/**
 * Export name of an f16 or f32 matmul kernel.
 *
 * @example
 * ```ts
 * import { denseKernelName } from "./kernels_wat.ts";
 * denseKernelName("f16", 2, 4); // "f16_r2_t4"
 * ```
 */
export function denseKernelName(kind: "f16" | "f32", r: number, t: number): string {
  return `${kind}_r${r}_t${t}`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const lines = (xs: string[]) => xs.join("\n");

/** `(a + b)` for i32 expressions, folding zeros. */
function add32(a: string, b: string): string {
  return `(i32.add ${a} ${b})`;
}

/** Fused multiply-add a·b + c in the variant's instructions. */
function madd(v: SimdVariant, a: string, b: string, c: string): string {
  return v === "relaxed"
    ? `(f32x4.relaxed_madd ${a} ${b} ${c})`
    : `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`;
}

/** Horizontal sum of an f32x4 local. */
function hsum(local: string): string {
  return `(f32.add (f32.add (f32x4.extract_lane 0 (local.get ${local})) ` +
    `(f32x4.extract_lane 1 (local.get ${local}))) (f32.add (f32x4.extract_lane 2 ` +
    `(local.get ${local})) (f32x4.extract_lane 3 (local.get ${local}))))`;
}

/**
 * Stores output (row r + i, input row t): value + bias[r + i] when `$bias` is
 * not 0, + the old value when `$acc` is not 0.
 */
function storeOut(i: number, t: number, value: string): string {
  const addr = `(i32.add (i32.add (local.get $y) (i32.mul (i32.const ${t}) (local.get $yStride)))` +
    ` (i32.shl (i32.add (local.get $r) (i32.const ${i})) (i32.const 2)))`;
  return lines([
    `(local.set $o ${value})`,
    `(if (local.get $bias) (then (local.set $o (f32.add (local.get $o) (f32.load ` +
    `(i32.add (local.get $bias) (i32.shl (i32.add (local.get $r) (i32.const ${i})) ` +
    `(i32.const 2))))))))`,
    `(local.set $oa ${addr})`,
    `(if (local.get $acc) (then (local.set $o (f32.add (local.get $o) (f32.load (local.get $oa))))))`,
    `(f32.store (local.get $oa) (local.get $o))`,
  ]);
}

/** The row loop shared by every matmul kernel; `body` computes one R-row tile at `$r`. */
function rowLoop(R: number, body: string): string {
  return lines([
    `(local.set $r (local.get $r0))`,
    `(block $done (loop $rows`,
    `  (br_if $done (i32.gt_u (i32.add (local.get $r) (i32.const ${R})) (local.get $r1)))`,
    body,
    `  (local.set $r (i32.add (local.get $r) (i32.const ${R})))`,
    `  (br $rows)))`,
  ]);
}

const MATMUL_OUT_PARAMS =
  "(param $y i32) (param $yStride i32) (param $bias i32) (param $acc i32) (param $r0 i32) (param $r1 i32)";

/** i8x16.shuffle bytes picking 32-bit lanes (0-3: first operand, 4-7: second). */
function lanes32(ls: number[]): string {
  return ls.flatMap((l) => [0, 1, 2, 3].map((b) => l * 4 + b)).join(" ");
}

/**
 * The 4 horizontal sums of 4 vectors as one vector, lane i = Σ lanes of
 * `vs[i]` (`add` is i32x4.add or f32x4.add).
 */
function transposeSum(add: string, vs: string[]): string {
  const pair = (a: string, b: string) =>
    `(${add} (i8x16.shuffle ${lanes32([0, 2, 4, 6])} ${a} ${b}) ` +
    `(i8x16.shuffle ${lanes32([1, 3, 5, 7])} ${a} ${b}))`;
  return pair(pair(vs[0], vs[1]), pair(vs[2], vs[3]));
}

/**
 * An int4 matmul kernel for a tile of R weight rows × T input rows (R or T
 * is 1).
 *
 * Weights, all interleaved by 4 rows so a 4-row tile reads one stream with
 * constant offsets: codes `[rows/4][blocks][4][B/2]` (`$rowBytes` unused);
 * scales `$s` and `-scale·zero` `$m` `[rows/4][blocks][4]`, so one load
 * gives 4 rows' values for a block.
 *
 * Activations (`act` "int8"): codes `[T][blocks·B]` (i8, or i16 in the plain
 * variant), stride `$xStride`; `$xd`/`$xs` point at the tile's `d` and
 * `d·Σq` of block 0 in a `[T/4][blocks][4]` layout (16 bytes per block).
 * (`act` "f32"): f32 values padded to whole blocks and `$xs` the exact
 * per-block sums, same layouts.
 *
 * Per block, integer products are summed in registers (i16 lanes for relaxed,
 * i32 for plain, f32 for the exact path), then reduced across the tile with
 * one transpose-sum and scaled by 4 scales at once.
 */
function int4Kernel(v: SimdVariant, act: "int8" | "f32", B: number, R: number, T: number): string {
  const chunks = B / 32;
  const int8 = act === "int8";
  const xBytes = int8 ? (v === "relaxed" ? 1 : 2) : 4;
  const acc = (i: number, t: number) => `$a${i}_${t}`;
  const tiles = range(R).flatMap((i) => range(T).map((t) => [i, t] as const));
  const get = (l: string) => `(local.get ${l})`;
  const locals = [
    "(local $r i32) (local $b i32) (local $sp i32) (local $mp i32) (local $dp i32) (local $ep i32)",
    "(local $o f32) (local $oa i32) (local $ms f32)",
    "(local $w v128) (local $lo v128) (local $hi v128) (local $n v128) (local $h0 v128)",
    "(local $h1 v128) (local $mask v128)",
    ...range(R === 4 ? T : T === 4 ? R : 1).map((i) => `(local $F${i} v128) (local $M${i} v128)`),
    ...range(R).map((i) => `(local $lo${i} v128) (local $hi${i} v128)`),
    "(local $wp i32)",
    ...range(T).map((t) => `(local $xp${t} i32)`),
    ...range(4).map((q) => `(local $x${q} v128) (local $v${q} v128)`),
    ...range(R === 4 ? T : 1).slice(1).flatMap((t) =>
      range(4).map((q) => `(local $x${q}_${t} v128)`)
    ),
    ...tiles.map(([i, t]) => `(local ${acc(i, t)} v128)`),
  ];
  // Nibbles of row i into $lo/$hi (4-row tiles: used at once) or $lo{i}/$hi{i}.
  const nib = (i: number) => R === 4 ? "" : String(i);
  const loadNibbles = (i: number, c: number) =>
    lines([
      `(local.set $w (v128.load offset=${i * (B / 2) + c * 16} (local.get $wp)))`,
      `(local.set $lo${nib(i)} (v128.and (local.get $w) (local.get $mask)))`,
      `(local.set $hi${
        nib(i)
      } (v128.and (i16x8.shr_u (local.get $w) (i32.const 4)) (local.get $mask)))`,
    ]);
  // x registers of input row t: its own set in a 4-row tile (loaded once for 4 rows), else shared.
  const xReg = (q: number, t: number) => R === 4 && t > 0 ? `$x${q}_${t}` : `$x${q}`;
  const loadX = (t: number, c: number) =>
    lines(
      range(v === "relaxed" ? 2 : 4).map((q) =>
        `(local.set ${xReg(q, t)} (v128.load offset=${
          c * 32 * xBytes + q * 16
        } (local.get $xp${t})))`
      ),
    );
  const dotInto = (i: number, t: number) => {
    const lo = `(local.get $lo${nib(i)})`, hi = `(local.get $hi${nib(i)})`;
    const x = (q: number) => `(local.get ${xReg(q, t)})`;
    return v === "relaxed"
      ? `(local.set ${acc(i, t)} (i16x8.add (local.get ${acc(i, t)}) (i16x8.add ` +
        `(i16x8.relaxed_dot_i8x16_i7x16_s ${x(0)} ${lo}) ` +
        `(i16x8.relaxed_dot_i8x16_i7x16_s ${x(1)} ${hi}))))`
      : `(local.set ${acc(i, t)} (i32x4.add (local.get ${acc(i, t)}) (i32x4.add ` +
        `(i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u ${lo}) ${x(0)}) ` +
        `(i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u ${lo}) ${x(1)})) ` +
        `(i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u ${hi}) ${x(2)}) ` +
        `(i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u ${hi}) ${x(3)})))))`;
  };
  // Exact path: 16 nibbles in $n -> 4 f32x4 in $v0..$v3.
  const widen = lines([
    `(local.set $h0 (i16x8.extend_low_i8x16_u (local.get $n)))`,
    `(local.set $h1 (i16x8.extend_high_i8x16_u (local.get $n)))`,
    `(local.set $v0 (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_u (local.get $h0))))`,
    `(local.set $v1 (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_u (local.get $h0))))`,
    `(local.set $v2 (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_u (local.get $h1))))`,
    `(local.set $v3 (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_u (local.get $h1))))`,
  ]);
  const fmaInto = (i: number, t: number, off: number) =>
    lines(
      range(4).map((q) =>
        `(local.set ${acc(i, t)} ${
          madd(
            v,
            `(local.get $v${q})`,
            `(v128.load offset=${(off + q * 4) * 4} (local.get $xp${t}))`,
            `(local.get ${acc(i, t)})`,
          )
        })`
      ),
    );
  const chunk = (c: number) => {
    if (!int8) {
      return lines(
        range(R).map((i) =>
          lines([
            `(local.set $w (v128.load offset=${i * (B / 2) + c * 16} (local.get $wp)))`,
            `(local.set $n (v128.and (local.get $w) (local.get $mask)))`,
            widen,
            ...range(T).map((t) => fmaInto(i, t, c * 32)),
            `(local.set $n (v128.and (i16x8.shr_u (local.get $w) (i32.const 4)) (local.get $mask)))`,
            widen,
            ...range(T).map((t) => fmaInto(i, t, c * 32 + 16)),
          ])
        ),
      );
    }
    return R === 4 || T === 1
      ? lines([
        ...range(T).map((t) => loadX(t, c)),
        ...range(R).map((i) => lines([loadNibbles(i, c), ...range(T).map((t) => dotInto(i, t))])),
      ])
      : lines([
        ...range(R).map((i) => loadNibbles(i, c)),
        ...range(T).map((t) => lines([loadX(t, c), ...range(R).map((i) => dotInto(i, t))])),
      ]);
  };
  // The block's sums as i32x4 (int8) or f32x4 (exact) per tile entry.
  const sums = (i: number, t: number) =>
    !int8 || v === "plain" ? get(acc(i, t)) : `(i32x4.extadd_pairwise_i16x8_s ${get(acc(i, t))})`;
  const addOp = int8 ? "i32x4.add" : "f32x4.add";
  const toF = (e: string) => int8 ? `(f32x4.convert_i32x4_s ${e})` : e;
  const sLoad4 = "(v128.load (local.get $sp))";
  const mLoad4 = "(v128.load (local.get $mp))";
  const sSplat = (i = 0) => `(f32x4.splat (f32.load offset=${i * 4} (local.get $sp)))`;
  const mSplat = (i = 0) => `(f32x4.splat (f32.load offset=${i * 4} (local.get $mp)))`;
  let blockEnd: string;
  if (R === 4) {
    blockEnd = lines(
      range(T).map((t) => {
        const scale = int8
          ? `(f32x4.mul ${sLoad4} (f32x4.splat (f32.load offset=${t * 4} (local.get $dp))))`
          : sLoad4;
        return lines([
          `(local.set $F${t} (f32x4.add (local.get $F${t}) (f32x4.mul ${
            toF(transposeSum(addOp, range(4).map((i) => sums(i, t))))
          } ${scale})))`,
          `(local.set $M${t} (f32x4.add (local.get $M${t}) (f32x4.mul ${mLoad4} ` +
          `(f32x4.splat (f32.load offset=${t * 4} (local.get $ep))))))`,
        ]);
      }),
    );
  } else if (T === 4) {
    blockEnd = lines(
      range(R).map((i) => {
        const scale = int8 ? `(f32x4.mul ${sSplat(i)} (v128.load (local.get $dp)))` : sSplat(i);
        return lines([
          `(local.set $F${i} (f32x4.add (local.get $F${i}) (f32x4.mul ${
            toF(transposeSum(addOp, range(4).map((t) => sums(i, t))))
          } ${scale})))`,
          `(local.set $M${i} (f32x4.add (local.get $M${i}) (f32x4.mul ${
            mSplat(i)
          } (v128.load (local.get $ep)))))`,
        ]);
      }),
    );
  } else {
    const scale = int8
      ? "(f32x4.splat (f32.mul (f32.load (local.get $sp)) (f32.load (local.get $dp))))"
      : sSplat();
    blockEnd = lines([
      `(local.set $F0 (f32x4.add (local.get $F0) (f32x4.mul ${toF(sums(0, 0))} ${scale})))`,
      `(local.set $ms (f32.add (local.get $ms) (f32.mul (f32.load (local.get $mp)) ` +
      `(f32.load (local.get $ep)))))`,
    ]);
  }
  const outputs = R * T === 1
    ? [storeOut(0, 0, `(f32.add ${hsum("$F0")} (local.get $ms))`)]
    : R === 4
    ? range(T).flatMap((t) =>
      range(4).map((q) =>
        storeOut(
          q,
          t,
          `(f32x4.extract_lane ${q} (f32x4.add (local.get $F${t}) (local.get $M${t})))`,
        )
      )
    )
    : range(R).flatMap((i) =>
      range(4).map((q) =>
        storeOut(
          i,
          q,
          `(f32x4.extract_lane ${q} (f32x4.add (local.get $F${i}) (local.get $M${i})))`,
        )
      )
    );
  const interleaved = (base: string) =>
    `(i32.add (local.get ${base}) (i32.shl (i32.add (i32.mul (i32.shr_u (local.get $r) (i32.const 2)) ` +
    `(i32.shl (local.get $blocks) (i32.const 2))) (i32.and (local.get $r) (i32.const 3))) (i32.const 2)))`;
  const body = lines([
    // codes of rows 4g..4g+3 are interleaved per block: [rows/4][blocks][4][B/2]
    `(local.set $wp (i32.add (local.get $w0) (i32.add (i32.mul (i32.shr_u (local.get $r) (i32.const 2)) ` +
    `(i32.mul (local.get $blocks) (i32.const ${
      2 * B
    }))) (i32.mul (i32.and (local.get $r) (i32.const 3)) ` +
    `(i32.const ${B / 2})))))`,
    ...range(T).map((t) =>
      `(local.set $xp${t} (i32.add (local.get $x) (i32.mul (local.get $xStride) (i32.const ${t}))))`
    ),
    `(local.set $sp ${interleaved("$s")})`,
    `(local.set $mp ${interleaved("$m")})`,
    int8 ? `(local.set $dp (local.get $xd))` : "",
    `(local.set $ep (local.get $xs))`,
    ...range(R === 4 ? T : T === 4 ? R : 1).map((i) =>
      `(local.set $F${i} (v128.const i32x4 0 0 0 0)) (local.set $M${i} (v128.const i32x4 0 0 0 0))`
    ),
    `(local.set $ms (f32.const 0))`,
    `(local.set $b (i32.const 0))`,
    `(loop $blk`,
    ...tiles.map(([i, t]) => `(local.set ${acc(i, t)} (v128.const i32x4 0 0 0 0))`),
    ...range(chunks).map(chunk),
    blockEnd,
    `  (local.set $wp (i32.add (local.get $wp) (i32.const ${2 * B})))`,
    ...range(T).map((t) =>
      `(local.set $xp${t} (i32.add (local.get $xp${t}) (i32.const ${B * xBytes})))`
    ),
    `  (local.set $sp (i32.add (local.get $sp) (i32.const 16)))`,
    `  (local.set $mp (i32.add (local.get $mp) (i32.const 16)))`,
    int8 ? `  (local.set $dp (i32.add (local.get $dp) (i32.const 16)))` : "",
    `  (local.set $ep (i32.add (local.get $ep) (i32.const 16)))`,
    `  (local.set $b (i32.add (local.get $b) (i32.const 1)))`,
    `  (br_if $blk (i32.lt_u (local.get $b) (local.get $blocks))))`,
    ...outputs,
  ]);
  return lines([
    `(func (export "${int4KernelName(act, B, R, T)}")`,
    `  (param $w0 i32) (param $s i32) (param $m i32) (param $rowBytes i32) (param $blocks i32)`,
    `  (param $x i32) (param $xStride i32) (param $xd i32) (param $xs i32) ${MATMUL_OUT_PARAMS}`,
    ...locals,
    `(local.set $mask (v128.const i8x16 ${range(16).map(() => 15).join(" ")}))`,
    rowLoop(R, body),
    ")",
  ]);
}

/**
 * f16 (`kind` "f16") or f32 weights × f32 activations, `$n` values per row
 * (a multiple of 8), rows interleaved by 4 per 16 bytes
 * (`[rows/4][n/step][4][16 bytes]`, `$rowBytes` = bytes of one row). f16 weights become f32 in SIMD without a table:
 * `(h << 16) >>s 3` masked with 0x8FFFFFFF is the f32 `w · 2^-112` (right for
 * normals, subnormals and zero), so x comes pre-scaled by 2^64 and the sum
 * is multiplied by 2^48.
 */
function denseKernel(v: SimdVariant, kind: "f16" | "f32", R: number, T: number): string {
  const acc = (i: number, t: number) => `$a${i}_${t}`;
  const tiles = range(R).flatMap((i) => range(T).map((t) => [i, t] as const));
  const valsPerStep = kind === "f16" ? 8 : 4;
  const wBytesPerStep = 16;
  const locals = [
    "(local $r i32) (local $k i32) (local $wp i32) (local $xp i32) (local $o f32) (local $oa i32)",
    "(local $w v128) (local $lo v128) (local $hi v128) (local $zero v128) (local $mask v128)",
    ...tiles.map(([i, t]) => `(local ${acc(i, t)} v128)`),
  ];
  const xAddr = (t: number) =>
    t === 0
      ? "(local.get $xp)"
      : add32("(local.get $xp)", `(i32.mul (local.get $xStride) (i32.const ${t}))`);
  const xLoad = (t: number, q: number) => `(v128.load offset=${q * 16} ${xAddr(t)})`;
  const step = lines(
    range(R).map((i) =>
      kind === "f32"
        ? lines([
          `(local.set $w (v128.load offset=${i * 16} (local.get $wp)))`,
          ...range(T).map((t) =>
            `(local.set ${acc(i, t)} ${
              madd(v, "(local.get $w)", xLoad(t, 0), `(local.get ${acc(i, t)})`)
            })`
          ),
        ])
        : lines([
          `(local.set $w (v128.load offset=${i * 16} (local.get $wp)))`,
          `(local.set $lo (v128.and (i32x4.shr_s (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 ` +
          `(local.get $zero) (local.get $w)) (i32.const 3)) (local.get $mask)))`,
          `(local.set $hi (v128.and (i32x4.shr_s (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 ` +
          `(local.get $zero) (local.get $w)) (i32.const 3)) (local.get $mask)))`,
          ...range(T).map((t) =>
            `(local.set ${acc(i, t)} ${
              madd(
                v,
                "(local.get $hi)",
                xLoad(t, 1),
                madd(v, "(local.get $lo)", xLoad(t, 0), `(local.get ${acc(i, t)})`),
              )
            })`
          ),
        ])
    ),
  );
  const finish = (i: number, t: number) =>
    kind === "f16" ? `(f32.mul ${hsum(acc(i, t))} (f32.const 0x1p48))` : hsum(acc(i, t));
  const body = lines([
    // rows 4g..4g+3 interleaved per 16 bytes: [rows/4][n/step][4][16 bytes]
    `(local.set $wp (i32.add (local.get $w0) (i32.add (i32.mul (i32.shr_u (local.get $r) (i32.const 2)) ` +
    `(i32.shl (local.get $rowBytes) (i32.const 2))) (i32.shl (i32.and (local.get $r) (i32.const 3)) ` +
    `(i32.const 4)))))`,
    `(local.set $xp (local.get $x))`,
    ...tiles.map(([i, t]) => `(local.set ${acc(i, t)} (v128.const i32x4 0 0 0 0))`),
    `(local.set $k (i32.const 0))`,
    `(block $kdone (loop $kl`,
    `  (br_if $kdone (i32.ge_u (local.get $k) (local.get $n)))`,
    step,
    `  (local.set $wp (i32.add (local.get $wp) (i32.const ${4 * wBytesPerStep})))`,
    `  (local.set $xp (i32.add (local.get $xp) (i32.const ${valsPerStep * 4})))`,
    `  (local.set $k (i32.add (local.get $k) (i32.const ${valsPerStep})))`,
    `  (br $kl)))`,
    ...tiles.map(([i, t]) => storeOut(i, t, finish(i, t))),
  ]);
  return lines([
    `(func (export "${denseKernelName(kind, R, T)}")`,
    `  (param $w0 i32) (param $rowBytes i32) (param $n i32) (param $x i32) (param $xStride i32)`,
    `  ${MATMUL_OUT_PARAMS}`,
    ...locals,
    `(local.set $zero (v128.const i32x4 0 0 0 0))`,
    `(local.set $mask (v128.const i32x4 0x8fffffff 0x8fffffff 0x8fffffff 0x8fffffff))`,
    rowLoop(R, body),
    ")",
  ]);
}

/**
 * Activation preparation, the elementwise kernels and the sampler's passes
 * (all variants share them except `quant_i8`, whose plain form stores i16).
 */
function otherKernels(v: SimdVariant): string {
  const xBytes = v === "relaxed" ? 1 : 2;
  const storeQ = v === "relaxed"
    ? "(i32.store8 (local.get $qp) (local.get $q))"
    : "(i32.store16 (local.get $qp) (local.get $q))";
  return `
  ;; exp(x) for 4 lanes (Cephes expf polynomial; inputs clamped to [-87.3, 88.7]).
  (func $exp4 (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.max (f32x4.min (local.get $x) (f32x4.splat (f32.const 88.7)))
                   (f32x4.splat (f32.const -87.3))))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (f32x4.splat (f32.const 1.44269504088896341)))))
    (local.set $r (f32x4.sub (f32x4.sub (local.get $x)
        (f32x4.mul (local.get $n) (f32x4.splat (f32.const 0.693359375))))
        (f32x4.mul (local.get $n) (f32x4.splat (f32.const -2.12194440e-4)))))
    (local.set $p (f32x4.splat (f32.const 1.9875691500e-4)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1.3981999507e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 8.3334519073e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 4.1665795894e-2))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1.6666665459e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 5.0000001201e-1))))
    (local.set $p (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $p) (local.get $r)) (local.get $r))
                   (local.get $r)) (f32x4.splat (f32.const 1))))
    ;; times 2^n, built in the exponent bits
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (i32x4.splat (i32.const 127)))
                 (i32.const 23))))

  ;; Quantizes f32 x[n] to int8 per block of B (${
    v === "relaxed" ? "stored as i8" : "stored widened to i16"
  }), padded
  ;; with zeros to blocks*B; xd[b] = amax/127, xs[b] = xd[b] * sum of the codes
  ;; (xd, xs: one f32 per 16 bytes, the [T/4][blocks][4] layout of the int4 kernels).
  (func (export "quant_i8") (param $x i32) (param $n i32) (param $B i32) (param $blocks i32)
        (param $xq i32) (param $xd i32) (param $xs i32)
    (local $b i32) (local $k i32) (local $end i32) (local $amax f32) (local $inv f32) (local $d f32)
    (local $q i32) (local $sum i32) (local $qp i32) (local $p i32) (local $pe i32) (local $mv v128)
    (local $iv v128) (local $sv v128) (local $q0 v128) (local $q1 v128) (local $q2 v128) (local $q3 v128)
    (local.set $qp (local.get $xq))
    (block $bd (loop $bl
      (br_if $bd (i32.ge_u (local.get $b) (local.get $blocks)))
      (local.set $k (i32.mul (local.get $b) (local.get $B)))
      (local.set $end (i32.add (local.get $k) (local.get $B)))
      (if (i32.gt_u (local.get $end) (local.get $n)) (then (local.set $end (local.get $n))))
      (if (i32.eq (i32.sub (local.get $end) (local.get $k)) (local.get $B))
        (then
          ;; a whole block: SIMD (the same f32 operations as the scalar path)
          (local.set $p (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2))))
          (local.set $pe (i32.add (local.get $p) (i32.shl (local.get $B) (i32.const 2))))
          (local.set $mv (v128.const i32x4 0 0 0 0))
          (block $sd (loop $sl
            (br_if $sd (i32.ge_u (local.get $p) (local.get $pe)))
            (local.set $mv (f32x4.max (local.get $mv) (f32x4.abs (v128.load (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $sl)))
          (local.set $amax (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mv))
            (f32x4.extract_lane 1 (local.get $mv))) (f32.max (f32x4.extract_lane 2 (local.get $mv))
            (f32x4.extract_lane 3 (local.get $mv)))))
          (local.set $inv (select (f32.const 0) (f32.div (f32.const 127) (local.get $amax))
                                  (f32.eq (local.get $amax) (f32.const 0))))
          (local.set $d (f32.div (local.get $amax) (f32.const 127)))
          (local.set $iv (f32x4.splat (local.get $inv)))
          (local.set $sv (v128.const i32x4 0 0 0 0))
          (local.set $p (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2))))
          (block $qd2 (loop $ql2
            (br_if $qd2 (i32.ge_u (local.get $p) (local.get $pe)))
            (local.set $q0 (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $iv)
              (v128.load (local.get $p))))))
            (local.set $q1 (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $iv)
              (v128.load offset=16 (local.get $p))))))
            (local.set $q2 (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $iv)
              (v128.load offset=32 (local.get $p))))))
            (local.set $q3 (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $iv)
              (v128.load offset=48 (local.get $p))))))
            (local.set $sv (i32x4.add (local.get $sv) (i32x4.add (i32x4.add (local.get $q0)
              (local.get $q1)) (i32x4.add (local.get $q2) (local.get $q3)))))
            ${
    v === "relaxed"
      ? `(v128.store (local.get $qp) (i8x16.narrow_i16x8_s
              (i16x8.narrow_i32x4_s (local.get $q0) (local.get $q1))
              (i16x8.narrow_i32x4_s (local.get $q2) (local.get $q3))))
            (local.set $qp (i32.add (local.get $qp) (i32.const 16)))`
      : `(v128.store (local.get $qp) (i16x8.narrow_i32x4_s (local.get $q0) (local.get $q1)))
            (v128.store offset=16 (local.get $qp) (i16x8.narrow_i32x4_s (local.get $q2) (local.get $q3)))
            (local.set $qp (i32.add (local.get $qp) (i32.const 32)))`
  }
            (local.set $p (i32.add (local.get $p) (i32.const 64)))
            (br $ql2)))
          (local.set $sum (i32.add (i32.add (i32x4.extract_lane 0 (local.get $sv))
            (i32x4.extract_lane 1 (local.get $sv))) (i32.add (i32x4.extract_lane 2 (local.get $sv))
            (i32x4.extract_lane 3 (local.get $sv))))))
        (else
      (local.set $amax (f32.const 0))
      (block $ad (loop $al
        (br_if $ad (i32.ge_s (local.get $k) (local.get $end)))
        (local.set $amax (f32.max (local.get $amax)
          (f32.abs (f32.load (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2)))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $al)))
      (local.set $inv (select (f32.const 0) (f32.div (f32.const 127) (local.get $amax))
                              (f32.eq (local.get $amax) (f32.const 0))))
      (local.set $d (f32.div (local.get $amax) (f32.const 127)))
      (local.set $sum (i32.const 0))
      (local.set $k (i32.mul (local.get $b) (local.get $B)))
      (local.set $end (i32.add (local.get $k) (local.get $B)))
      (block $qd (loop $ql
        (br_if $qd (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $q (i32.const 0))
        (if (i32.lt_u (local.get $k) (local.get $n)) (then
          (local.set $q (i32.trunc_sat_f32_s (f32.nearest (f32.mul (local.get $inv)
            (f32.load (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2))))))))
          (if (i32.gt_s (local.get $q) (i32.const 127)) (then (local.set $q (i32.const 127))))
          (if (i32.lt_s (local.get $q) (i32.const -127)) (then (local.set $q (i32.const -127))))))
        ${storeQ}
        (local.set $sum (i32.add (local.get $sum) (local.get $q)))
        (local.set $qp (i32.add (local.get $qp) (i32.const ${xBytes})))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $ql)))))
      (f32.store (i32.add (local.get $xd) (i32.shl (local.get $b) (i32.const 4))) (local.get $d))
      (f32.store (i32.add (local.get $xs) (i32.shl (local.get $b) (i32.const 4)))
                 (f32.mul (local.get $d) (f32.convert_i32_s (local.get $sum))))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bl))))

  ;; out[0..npad) = x[0..n) * scale, zero-padded; when B > 0 also
  ;; xs[b] = exact sum of x over block b (unscaled), one f32 per 16 bytes.
  (func (export "prep_f32") (param $x i32) (param $n i32) (param $npad i32) (param $scale f32)
        (param $out i32) (param $B i32) (param $xs i32)
    (local $k i32) (local $v f32) (local $sum f32)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $k) (local.get $npad)))
      (local.set $v (f32.const 0))
      (if (i32.lt_u (local.get $k) (local.get $n)) (then
        (local.set $v (f32.load (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 2)))))))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $k) (i32.const 2)))
                 (f32.mul (local.get $v) (local.get $scale)))
      (local.set $sum (f32.add (local.get $sum) (local.get $v)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (if (local.get $B) (then (if (i32.eqz (i32.rem_u (local.get $k) (local.get $B))) (then
        (f32.store (i32.add (local.get $xs) (i32.shl (i32.sub (i32.div_u (local.get $k) (local.get $B))
                   (i32.const 1)) (i32.const 4))) (local.get $sum))
        (local.set $sum (f32.const 0))))))
      (br $l))))

  ;; out[t] = x[t] / rms(x[t]) * w for T rows of dim values (out may alias x).
  (func (export "rmsnorm") (param $x i32) (param $w i32) (param $out i32) (param $T i32)
        (param $dim i32) (param $eps f32)
    (local $t i32) (local $k i32) (local $ss v128) (local $s f32) (local $v f32) (local $xr i32)
    (local $or i32) (local $vec i32)
    (local.set $vec (i32.and (local.get $dim) (i32.const -4)))
    (block $td (loop $tl
      (br_if $td (i32.ge_u (local.get $t) (local.get $T)))
      (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $t) (local.get $dim)) (i32.const 2))))
      (local.set $or (i32.add (local.get $out) (i32.shl (i32.mul (local.get $t) (local.get $dim)) (i32.const 2))))
      (local.set $ss (v128.const i32x4 0 0 0 0))
      (local.set $k (i32.const 0))
      (block $d (loop $l
        (br_if $d (i32.ge_u (local.get $k) (local.get $vec)))
        (local.set $ss ${
    madd(
      v,
      "(v128.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2))))",
      "(v128.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2))))",
      "(local.get $ss)",
    )
  })
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l)))
      (local.set $s ${hsum("$ss")})
      (block $d2 (loop $l2
        (br_if $d2 (i32.ge_u (local.get $k) (local.get $dim)))
        (local.set $v (f32.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2)))))
        (local.set $s (f32.add (local.get $s) (f32.mul (local.get $v) (local.get $v))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $l2)))
      (local.set $s (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div (local.get $s)
        (f32.convert_i32_u (local.get $dim))) (local.get $eps)))))
      (local.set $k (i32.const 0))
      (block $d3 (loop $l3
        (br_if $d3 (i32.ge_u (local.get $k) (local.get $dim)))
        (f32.store (i32.add (local.get $or) (i32.shl (local.get $k) (i32.const 2)))
          (f32.mul (f32.mul (f32.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2))))
            (local.get $s)) (f32.load (i32.add (local.get $w) (i32.shl (local.get $k) (i32.const 2))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $l3)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $tl))))

;; RoPE (rotate_half) in place on x [T][heads*hd]: row t uses the angle
  ;; tables cos/sin [T][hd/2] (f32, the rows of its position).
  (func (export "rope") (param $x i32) (param $T i32) (param $heads i32) (param $hd i32)
        (param $cos i32) (param $sin i32)
    (local $t i32) (local $h i32) (local $i i32) (local $half i32) (local $half4 i32) (local $o i32)
    (local $cr i32) (local $sr i32) (local $a v128) (local $b v128) (local $c v128) (local $s v128)
    (local $fa f32) (local $fb f32) (local $fc f32) (local $fs f32) (local $hb i32)
    (local.set $half (i32.shr_u (local.get $hd) (i32.const 1)))
    (local.set $half4 (i32.and (local.get $half) (i32.const -4)))
    (local.set $hb (i32.shl (local.get $half) (i32.const 2)))
    (local.set $o (local.get $x))
    (block $td (loop $tl
      (br_if $td (i32.ge_u (local.get $t) (local.get $T)))
      (local.set $cr (i32.add (local.get $cos) (i32.mul (local.get $t) (local.get $hb))))
      (local.set $sr (i32.add (local.get $sin) (i32.mul (local.get $t) (local.get $hb))))
      (local.set $h (i32.const 0))
      (block $hd0 (loop $hl
        (br_if $hd0 (i32.ge_u (local.get $h) (local.get $heads)))
        (local.set $i (i32.const 0))
        (block $vd (loop $vl
          (br_if $vd (i32.ge_u (local.get $i) (local.get $half4)))
          (local.set $a (v128.load (i32.add (local.get $o) (i32.shl (local.get $i) (i32.const 2)))))
          (local.set $b (v128.load (i32.add (i32.add (local.get $o) (local.get $hb))
                                            (i32.shl (local.get $i) (i32.const 2)))))
          (local.set $c (v128.load (i32.add (local.get $cr) (i32.shl (local.get $i) (i32.const 2)))))
          (local.set $s (v128.load (i32.add (local.get $sr) (i32.shl (local.get $i) (i32.const 2)))))
          (v128.store (i32.add (local.get $o) (i32.shl (local.get $i) (i32.const 2)))
            (f32x4.sub (f32x4.mul (local.get $a) (local.get $c)) (f32x4.mul (local.get $b) (local.get $s))))
          (v128.store (i32.add (i32.add (local.get $o) (local.get $hb)) (i32.shl (local.get $i) (i32.const 2)))
            (f32x4.add (f32x4.mul (local.get $a) (local.get $s)) (f32x4.mul (local.get $b) (local.get $c))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $vl)))
        (block $sd (loop $sl
          (br_if $sd (i32.ge_u (local.get $i) (local.get $half)))
          (local.set $fa (f32.load (i32.add (local.get $o) (i32.shl (local.get $i) (i32.const 2)))))
          (local.set $fb (f32.load (i32.add (i32.add (local.get $o) (local.get $hb))
                                            (i32.shl (local.get $i) (i32.const 2)))))
          (local.set $fc (f32.load (i32.add (local.get $cr) (i32.shl (local.get $i) (i32.const 2)))))
          (local.set $fs (f32.load (i32.add (local.get $sr) (i32.shl (local.get $i) (i32.const 2)))))
          (f32.store (i32.add (local.get $o) (i32.shl (local.get $i) (i32.const 2)))
            (f32.sub (f32.mul (local.get $fa) (local.get $fc)) (f32.mul (local.get $fb) (local.get $fs))))
          (f32.store (i32.add (i32.add (local.get $o) (local.get $hb)) (i32.shl (local.get $i) (i32.const 2)))
            (f32.add (f32.mul (local.get $fa) (local.get $fs)) (f32.mul (local.get $fb) (local.get $fc))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $sl)))
        (local.set $o (i32.add (local.get $o) (i32.shl (local.get $hd) (i32.const 2))))
        (local.set $h (i32.add (local.get $h) (i32.const 1)))
        (br $hl)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $tl))))

  ;; g[i] = silu(g[i]) * u[i] for i in [i0, i1) (both multiples of 4, or i1 = n).
  (func (export "silu_mul") (param $g i32) (param $u i32) (param $i0 i32) (param $i1 i32)
    (local $i i32) (local $a i32) (local $v v128) (local $end4 i32)
    (local.set $i (local.get $i0))
    (local.set $end4 (i32.and (local.get $i1) (i32.const -4)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (local.get $end4)))
      (local.set $a (i32.shl (local.get $i) (i32.const 2)))
      (local.set $v (v128.load (i32.add (local.get $g) (local.get $a))))
      (v128.store (i32.add (local.get $g) (local.get $a))
        (f32x4.mul (f32x4.div (local.get $v) (f32x4.add (f32x4.splat (f32.const 1))
          (call $exp4 (f32x4.neg (local.get $v)))))
          (v128.load (i32.add (local.get $u) (local.get $a)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l)))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $i) (local.get $i1)))
      (local.set $a (i32.shl (local.get $i) (i32.const 2)))
      (local.set $v (call $exp4 (f32x4.splat (f32.neg (f32.load (i32.add (local.get $g) (local.get $a)))))))
      (f32.store (i32.add (local.get $g) (local.get $a))
        (f32.mul (f32.div (f32.load (i32.add (local.get $g) (local.get $a)))
          (f32.add (f32.const 1) (f32x4.extract_lane 0 (local.get $v))))
          (f32.load (i32.add (local.get $u) (local.get $a)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l2))))

  ;; Causal GQA for the (row t, head h) units u in [u0, u1), u = t*nHeads + h.
  ;; q, out: [T][nHeads*hd]; kc, vc: [seq][nKv*hd]; row t is at position pos0 + t.
  ;; scratch: room for pos0 + T + 4 f32 scores. hd is a multiple of 4.
  ;; Scores 4 positions at a time (one q load feeds 4 keys, one transpose-sum
  ;; gives 4 scores); the weighted sum of values 16 dimensions at a time.
  (func (export "attention") (param $q i32) (param $kc i32) (param $vc i32) (param $out i32)
        (param $pos0 i32) (param $nHeads i32) (param $nKv i32) (param $hd i32) (param $scratch i32)
        (param $u0 i32) (param $u1 i32)
    (local $u i32) (local $t i32) (local $h i32) (local $n i32) (local $j i32) (local $i i32)
    (local $qr i32) (local $kvOff i32) (local $kvStride i32) (local $scale f32) (local $dot v128)
    (local $max f32) (local $sum f32) (local $s f32) (local $p i32) (local $acc v128) (local $e v128)
    (local $group i32) (local $or i32) (local $qv v128) (local $d0 v128) (local $d1 v128)
    (local $d2 v128) (local $d3 v128) (local $mx v128) (local $sp v128) (local $a1 v128) (local $a2 v128)
    (local $a3 v128) (local $hd16 i32)
    (local.set $kvStride (i32.shl (i32.mul (local.get $nKv) (local.get $hd)) (i32.const 2)))
    (local.set $scale (f32.div (f32.const 1) (f32.sqrt (f32.convert_i32_u (local.get $hd)))))
    (local.set $group (i32.div_u (local.get $nHeads) (local.get $nKv)))
    (local.set $hd16 (i32.and (local.get $hd) (i32.const -16)))
    (local.set $u (local.get $u0))
    (block $ud (loop $ul
      (br_if $ud (i32.ge_u (local.get $u) (local.get $u1)))
      (local.set $t (i32.div_u (local.get $u) (local.get $nHeads)))
      (local.set $h (i32.rem_u (local.get $u) (local.get $nHeads)))
      (local.set $n (i32.add (i32.add (local.get $pos0) (local.get $t)) (i32.const 1)))
      (local.set $qr (i32.add (local.get $q) (i32.shl (i32.mul (local.get $u) (local.get $hd)) (i32.const 2))))
      (local.set $or (i32.add (local.get $out) (i32.shl (i32.mul (local.get $u) (local.get $hd)) (i32.const 2))))
      (local.set $kvOff (i32.shl (i32.mul (i32.div_u (local.get $h) (local.get $group)) (local.get $hd))
                         (i32.const 2)))
      ;; scores and their max, 4 positions at a time
      (local.set $mx (f32x4.splat (f32.const -inf)))
      (local.set $j (i32.const 0))
      (block $sd (loop $sl
        (br_if $sd (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
        (local.set $p (i32.add (i32.add (local.get $kc) (i32.mul (local.get $j) (local.get $kvStride)))
                       (local.get $kvOff)))
        (local.set $d0 (v128.const i32x4 0 0 0 0)) (local.set $d1 (v128.const i32x4 0 0 0 0))
        (local.set $d2 (v128.const i32x4 0 0 0 0)) (local.set $d3 (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $dd (loop $dl
          (br_if $dd (i32.ge_u (local.get $i) (i32.shl (local.get $hd) (i32.const 2))))
          (local.set $qv (v128.load (i32.add (local.get $qr) (local.get $i))))
          (local.set $d0 ${
    madd(v, "(local.get $qv)", "(v128.load (local.get $p))", "(local.get $d0)")
  })
          (local.set $d1 ${
    madd(
      v,
      "(local.get $qv)",
      "(v128.load (i32.add (local.get $p) (local.get $kvStride)))",
      "(local.get $d1)",
    )
  })
          (local.set $d2 ${
    madd(
      v,
      "(local.get $qv)",
      "(v128.load (i32.add (local.get $p) (i32.shl (local.get $kvStride) (i32.const 1))))",
      "(local.get $d2)",
    )
  })
          (local.set $d3 ${
    madd(
      v,
      "(local.get $qv)",
      "(v128.load (i32.add (local.get $p) (i32.mul (local.get $kvStride) (i32.const 3))))",
      "(local.get $d3)",
    )
  })
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br $dl)))
        (local.set $e (f32x4.mul ${
    transposeSum("f32x4.add", [
      "(local.get $d0)",
      "(local.get $d1)",
      "(local.get $d2)",
      "(local.get $d3)",
    ])
  } (f32x4.splat (local.get $scale))))
        (v128.store (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2))) (local.get $e))
        (local.set $mx (f32x4.max (local.get $mx) (local.get $e)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $sl)))
      (local.set $max (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx))
        (f32x4.extract_lane 1 (local.get $mx))) (f32.max (f32x4.extract_lane 2 (local.get $mx))
        (f32x4.extract_lane 3 (local.get $mx)))))
      (block $sd1 (loop $sl1
        (br_if $sd1 (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $p (i32.add (i32.add (local.get $kc) (i32.mul (local.get $j) (local.get $kvStride)))
                       (local.get $kvOff)))
        (local.set $dot (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $dd1 (loop $dl1
          (br_if $dd1 (i32.ge_u (local.get $i) (local.get $hd)))
          (local.set $dot ${
    madd(
      v,
      "(v128.load (i32.add (local.get $qr) (i32.shl (local.get $i) (i32.const 2))))",
      "(v128.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))",
      "(local.get $dot)",
    )
  })
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $dl1)))
        (local.set $s (f32.mul ${hsum("$dot")} (local.get $scale)))
        (f32.store (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2))) (local.get $s))
        (local.set $max (f32.max (local.get $max) (local.get $s)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $sl1)))
      ;; exp(score - max), summed (4 at a time; the tail one at a time)
      (local.set $sum (f32.const 0))
      (local.set $j (i32.const 0))
      (block $ed (loop $el
        (br_if $ed (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
        (local.set $p (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $e (call $exp4 (f32x4.sub (v128.load (local.get $p)) (f32x4.splat (local.get $max)))))
        (v128.store (local.get $p) (local.get $e))
        (local.set $sum (f32.add (local.get $sum) ${hsum("$e")}))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $el)))
      (block $ed2 (loop $el2
        (br_if $ed2 (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $p (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $s (f32x4.extract_lane 0 (call $exp4 (f32x4.splat
          (f32.sub (f32.load (local.get $p)) (local.get $max))))))
        (f32.store (local.get $p) (local.get $s))
        (local.set $sum (f32.add (local.get $sum) (local.get $s)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $el2)))
      (local.set $sp (f32x4.splat (f32.div (f32.const 1) (local.get $sum))))
      ;; out = sum_j p_j v_j / sum: 16 dims at a time, then 4
      (local.set $i (i32.const 0))
      (block $od (loop $ol
        (br_if $od (i32.ge_u (local.get $i) (local.get $hd16)))
        (local.set $acc (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (i32.add (local.get $vc) (local.get $kvOff)) (i32.shl (local.get $i) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $vd (loop $vl
          (br_if $vd (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $e (f32x4.splat (f32.load (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2))))))
          (local.set $acc ${
    madd(v, "(local.get $e)", "(v128.load (local.get $p))", "(local.get $acc)")
  })
          (local.set $a1 ${
    madd(v, "(local.get $e)", "(v128.load offset=16 (local.get $p))", "(local.get $a1)")
  })
          (local.set $a2 ${
    madd(v, "(local.get $e)", "(v128.load offset=32 (local.get $p))", "(local.get $a2)")
  })
          (local.set $a3 ${
    madd(v, "(local.get $e)", "(v128.load offset=48 (local.get $p))", "(local.get $a3)")
  })
          (local.set $p (i32.add (local.get $p) (local.get $kvStride)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $vl)))
        (local.set $p (i32.add (local.get $or) (i32.shl (local.get $i) (i32.const 2))))
        (v128.store (local.get $p) (f32x4.mul (local.get $acc) (local.get $sp)))
        (v128.store offset=16 (local.get $p) (f32x4.mul (local.get $a1) (local.get $sp)))
        (v128.store offset=32 (local.get $p) (f32x4.mul (local.get $a2) (local.get $sp)))
        (v128.store offset=48 (local.get $p) (f32x4.mul (local.get $a3) (local.get $sp)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $ol)))
      (block $od4 (loop $ol4
        (br_if $od4 (i32.ge_u (local.get $i) (local.get $hd)))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (i32.add (local.get $vc) (local.get $kvOff)) (i32.shl (local.get $i) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $vd4 (loop $vl4
          (br_if $vd4 (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $acc ${
    madd(
      v,
      "(f32x4.splat (f32.load (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2)))))",
      "(v128.load (local.get $p))",
      "(local.get $acc)",
    )
  })
          (local.set $p (i32.add (local.get $p) (local.get $kvStride)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $vl4)))
        (v128.store (i32.add (local.get $or) (i32.shl (local.get $i) (i32.const 2)))
          (f32x4.mul (local.get $acc) (local.get $sp)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $ol4)))
      (local.set $u (i32.add (local.get $u) (i32.const 1)))
      (br $ul))))

  ;; Sum of n bytes at p (a multiple of 64), read as f32x4: the bandwidth probe.
  (func (export "read_sum") (param $p i32) (param $n i32) (result f32)
    (local $end i32) (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $d0 (loop $l
      (br_if $d0 (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $a (f32x4.add (local.get $a) (v128.load (local.get $p))))
      (local.set $b (f32x4.add (local.get $b) (v128.load offset=16 (local.get $p))))
      (local.set $c (f32x4.add (local.get $c) (v128.load offset=32 (local.get $p))))
      (local.set $d (f32x4.add (local.get $d) (v128.load offset=48 (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 64)))
      (br $l)))
    (local.set $a (f32x4.add (f32x4.add (local.get $a) (local.get $b)) (f32x4.add (local.get $c) (local.get $d))))
    ${hsum("$a")})

  ;; The sampler's passes over f32 logits l[0..n) (n a multiple of 8; the padding is
  ;; NaN, which no comparison keeps). Thresholds compare l >= t, so ties stay together.

  ;; The index of the largest non-NaN value, the lowest index on ties (-1 when every
  ;; value is NaN or -inf); stores at out the number of NaNs.
  (func (export "sample_argmax") (param $l i32) (param $n i32) (param $out i32) (result i32)
    (local $p i32) (local $end i32) (local $v v128) (local $gt v128) (local $bv v128) (local $bi v128)
    (local $iv v128) (local $nan v128) (local $best f32) (local $idx i32) (local $lv f32) (local $li i32)
    (local.set $bv (f32x4.splat (f32.const -inf)))
    (local.set $bi (i32x4.splat (i32.const -1)))
    (local.set $iv (v128.const i32x4 0 1 2 3))
    (local.set $p (local.get $l))
    (local.set $end (i32.add (local.get $l) (i32.shl (local.get $n) (i32.const 2))))
    (block $d (loop $lp
      (br_if $d (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $v (v128.load (local.get $p)))
      (local.set $gt (f32x4.gt (local.get $v) (local.get $bv)))
      (local.set $bv (v128.bitselect (local.get $v) (local.get $bv) (local.get $gt)))
      (local.set $bi (v128.bitselect (local.get $iv) (local.get $bi) (local.get $gt)))
      (local.set $nan (i32x4.sub (local.get $nan) (f32x4.ne (local.get $v) (local.get $v))))
      (local.set $iv (i32x4.add (local.get $iv) (i32x4.splat (i32.const 4))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $lp)))
    (i32.store (local.get $out) (i32.add (i32.add (i32x4.extract_lane 0 (local.get $nan))
      (i32x4.extract_lane 1 (local.get $nan))) (i32.add (i32x4.extract_lane 2 (local.get $nan))
      (i32x4.extract_lane 3 (local.get $nan)))))
    ;; each lane holds its first maximum: the largest lane wins, the lowest index on ties
    (local.set $best (f32.const -inf))
    (local.set $idx (i32.const -1))
    ${
    [0, 1, 2, 3].map((k) =>
      `(local.set $lv (f32x4.extract_lane ${k} (local.get $bv)))
    (local.set $li (i32x4.extract_lane ${k} (local.get $bi)))
    (if (i32.or (f32.gt (local.get $lv) (local.get $best)) (i32.and (f32.eq (local.get $lv) (local.get $best))
          (i32.and (i32.ge_s (local.get $li) (i32.const 0)) (i32.lt_u (local.get $li) (local.get $idx)))))
      (then (local.set $best (local.get $lv)) (local.set $idx (local.get $li))))`
    ).join("\n    ")
  }
    (local.get $idx))

  ;; e[i] = exp((l[i] - mx) * invT) where l[i] >= t, else 0 (also where the exponent
  ;; is below -87.3); 4 values none of which reach t cost no exp.
  (func (export "sample_exp") (param $l i32) (param $e i32) (param $n i32) (param $mx f32) (param $invT f32)
        (param $t f32)
    (local $i i32) (local $end i32) (local $v v128) (local $z v128) (local $ge v128) (local $mv v128)
    (local $iv v128) (local $tv v128)
    (local.set $mv (f32x4.splat (local.get $mx)))
    (local.set $iv (f32x4.splat (local.get $invT)))
    (local.set $tv (f32x4.splat (local.get $t)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $d (loop $lp
      (br_if $d (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $v (v128.load (i32.add (local.get $l) (local.get $i))))
      (local.set $ge (f32x4.ge (local.get $v) (local.get $tv)))
      (if (v128.any_true (local.get $ge))
        (then
          (local.set $z (f32x4.mul (f32x4.sub (local.get $v) (local.get $mv)) (local.get $iv)))
          (v128.store (i32.add (local.get $e) (local.get $i)) (v128.and (v128.and (call $exp4 (local.get $z))
            (f32x4.ge (local.get $z) (f32x4.splat (f32.const -87.3)))) (local.get $ge))))
        (else (v128.store (i32.add (local.get $e) (local.get $i)) (v128.const i32x4 0 0 0 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $lp))))

  ;; How many l[i] >= t; stores at out the smallest of them (+inf if none) and at
  ;; out + 4 the largest l[i] < t (-inf if none), the neighbours a bisection snaps to.
  (func (export "sample_count") (param $l i32) (param $n i32) (param $t f32) (param $out i32) (result i32)
    (local $p i32) (local $end i32) (local $v v128) (local $w v128) (local $ge v128) (local $gw v128)
    (local $tv v128) (local $c v128) (local $mn v128) (local $mx v128) (local $inf v128) (local $ninf v128)
    (local.set $tv (f32x4.splat (local.get $t)))
    (local.set $inf (f32x4.splat (f32.const inf)))
    (local.set $ninf (f32x4.splat (f32.const -inf)))
    (local.set $mn (local.get $inf))
    (local.set $mx (local.get $ninf))
    (local.set $p (local.get $l))
    (local.set $end (i32.add (local.get $l) (i32.shl (local.get $n) (i32.const 2))))
    (block $d (loop $lp
      (br_if $d (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $v (v128.load (local.get $p)))
      (local.set $w (v128.load offset=16 (local.get $p)))
      ${samplerCompare()}
      (local.set $p (i32.add (local.get $p) (i32.const 32)))
      (br $lp)))
    ${samplerNeighbours()}
    (i32.add (i32.add (i32x4.extract_lane 0 (local.get $c)) (i32x4.extract_lane 1 (local.get $c)))
      (i32.add (i32x4.extract_lane 2 (local.get $c)) (i32x4.extract_lane 3 (local.get $c)))))

  ;; The sum (in f64) of e[i] over l[i] >= t; stores the same neighbours of t as
  ;; sample_count, and at out + 8 the count.
  (func (export "sample_mass") (param $l i32) (param $e i32) (param $n i32) (param $t f32) (param $out i32)
        (result f64)
    (local $i i32) (local $end i32) (local $v v128) (local $w v128) (local $ge v128) (local $gw v128)
    (local $x v128) (local $y v128) (local $tv v128) (local $mn v128) (local $mx v128) (local $inf v128)
    (local $ninf v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $c v128)
    (local.set $tv (f32x4.splat (local.get $t)))
    (local.set $inf (f32x4.splat (f32.const inf)))
    (local.set $ninf (f32x4.splat (f32.const -inf)))
    (local.set $mn (local.get $inf))
    (local.set $mx (local.get $ninf))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $d (loop $lp
      (br_if $d (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $v (v128.load (i32.add (local.get $l) (local.get $i))))
      (local.set $w (v128.load offset=16 (i32.add (local.get $l) (local.get $i))))
      ${samplerCompare()}
      (local.set $x (v128.and (v128.load (i32.add (local.get $e) (local.get $i))) (local.get $ge)))
      (local.set $y (v128.and (v128.load offset=16 (i32.add (local.get $e) (local.get $i))) (local.get $gw)))
      (local.set $a0 (f64x2.add (local.get $a0) (f64x2.promote_low_f32x4 (local.get $x))))
      (local.set $a1 (f64x2.add (local.get $a1) (f64x2.promote_low_f32x4
        (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x)))))
      (local.set $a2 (f64x2.add (local.get $a2) (f64x2.promote_low_f32x4 (local.get $y))))
      (local.set $a3 (f64x2.add (local.get $a3) (f64x2.promote_low_f32x4
        (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $y) (local.get $y)))))
      (local.set $i (i32.add (local.get $i) (i32.const 32)))
      (br $lp)))
    ${samplerNeighbours()}
    (i32.store offset=8 (local.get $out) (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $c)) (i32x4.extract_lane 1 (local.get $c)))
      (i32.add (i32x4.extract_lane 2 (local.get $c)) (i32x4.extract_lane 3 (local.get $c)))))
    (local.set $a0 (f64x2.add (f64x2.add (local.get $a0) (local.get $a1))
      (f64x2.add (local.get $a2) (local.get $a3))))
    (f64.add (f64x2.extract_lane 0 (local.get $a0)) (f64x2.extract_lane 1 (local.get $a0))))

  ;; Copies the pairs (l[i], e[i]) with lo <= l[i] < hi, in order, to dl and de
  ;; (which may be l and e: it copies forward), pads them to a multiple of 8 with
  ;; (NaN, 0) and returns how many it copied: the bisection's remaining candidates.
  (func (export "sample_compact") (param $l i32) (param $e i32) (param $n i32) (param $lo f32)
        (param $hi f32) (param $dl i32) (param $de i32) (result i32)
    (local $i i32) (local $end i32) (local $k i32) (local $m i32) (local $v v128) (local $x f32)
    (local $lov v128) (local $hiv v128)
    (local.set $lov (f32x4.splat (local.get $lo)))
    (local.set $hiv (f32x4.splat (local.get $hi)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $d (loop $lp
      (br_if $d (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $v (v128.load (i32.add (local.get $l) (local.get $i))))
      (if (v128.any_true (v128.and (f32x4.ge (local.get $v) (local.get $lov))
                                   (f32x4.lt (local.get $v) (local.get $hiv))))
        (then
          (local.set $k (i32.const 0))
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (i32.const 16)))
            (local.set $x (f32.load (i32.add (i32.add (local.get $l) (local.get $i)) (local.get $k))))
            (if (i32.and (f32.ge (local.get $x) (local.get $lo)) (f32.lt (local.get $x) (local.get $hi)))
              (then
                (f32.store (i32.add (local.get $dl) (i32.shl (local.get $m) (i32.const 2))) (local.get $x))
                (f32.store (i32.add (local.get $de) (i32.shl (local.get $m) (i32.const 2)))
                  (f32.load (i32.add (i32.add (local.get $e) (local.get $i)) (local.get $k))))
                (local.set $m (i32.add (local.get $m) (i32.const 1)))))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $kl)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $lp)))
    (local.set $k (local.get $m))
    (block $pd (loop $pl
      (br_if $pd (i32.eqz (i32.and (local.get $k) (i32.const 7))))
      (f32.store (i32.add (local.get $dl) (i32.shl (local.get $k) (i32.const 2))) (f32.const nan))
      (f32.store (i32.add (local.get $de) (i32.shl (local.get $k) (i32.const 2))) (f32.const 0))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $pl)))
    (local.get $m))

  ;; The draw: the first i with l[i] >= t at which the running sum of those e[i]
  ;; (in f64, in index order) exceeds u; when rounding leaves u at or past the end,
  ;; the last such i with e[i] > 0; -1 when there is none.
  (func (export "sample_scan") (param $l i32) (param $e i32) (param $n i32) (param $t f32) (param $u f64)
        (result i32)
    (local $i i32) (local $end i32) (local $k i32) (local $x v128) (local $tv v128) (local $s f64)
    (local $run f64) (local $last i32)
    (local.set $tv (f32x4.splat (local.get $t)))
    (local.set $last (i32.const -1))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $d (loop $lp
      (br_if $d (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $x (v128.and (v128.load (i32.add (local.get $e) (local.get $i)))
        (f32x4.ge (v128.load (i32.add (local.get $l) (local.get $i))) (local.get $tv))))
      (local.set $s (f64.add
        (f64.add (f64.promote_f32 (f32x4.extract_lane 0 (local.get $x)))
          (f64.promote_f32 (f32x4.extract_lane 1 (local.get $x))))
        (f64.add (f64.promote_f32 (f32x4.extract_lane 2 (local.get $x)))
          (f64.promote_f32 (f32x4.extract_lane 3 (local.get $x))))))
      (if (f64.gt (f64.add (local.get $run) (local.get $s)) (local.get $u))
        (then
          ;; the draw ends in these 4: add them one by one
          (local.set $k (i32.const 0))
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (i32.const 16)))
            (if (f32.ge (f32.load (i32.add (i32.add (local.get $l) (local.get $i)) (local.get $k)))
                        (local.get $t))
              (then
                (local.set $run (f64.add (local.get $run) (f64.promote_f32
                  (f32.load (i32.add (i32.add (local.get $e) (local.get $i)) (local.get $k))))))
                (if (f64.gt (local.get $run) (local.get $u))
                  (then (return (i32.shr_u (i32.add (local.get $i) (local.get $k)) (i32.const 2)))))))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $kl))))
        (else (local.set $run (f64.add (local.get $run) (local.get $s)))))
      (if (f64.gt (local.get $s) (f64.const 0)) (then (local.set $last (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $lp)))
    (if (i32.lt_s (local.get $last) (i32.const 0)) (then (return (i32.const -1))))
    ;; the last positive term of the last chunk that had one
    (local.set $k (i32.const 12))
    (block $bd (loop $bl
      (br_if $bd (i32.eqz (local.get $k)))
      (br_if $bd (i32.and
        (f32.ge (f32.load (i32.add (i32.add (local.get $l) (local.get $last)) (local.get $k))) (local.get $t))
        (f32.gt (f32.load (i32.add (i32.add (local.get $e) (local.get $last)) (local.get $k))) (f32.const 0))))
      (local.set $k (i32.sub (local.get $k) (i32.const 4)))
      (br $bl)))
    (i32.shr_u (i32.add (local.get $last) (local.get $k)) (i32.const 2)))
`;
}

/**
 * For the 8 logits in `$v`, `$w` against the threshold splat in `$tv`:
 * `$ge`/`$gw` = (l >= t) masks, `$c` counts them (per lane), `$mn` keeps the
 * smallest value >= t and `$mx` the largest below it (per lane).
 */
function samplerCompare(): string {
  return `(local.set $ge (f32x4.ge (local.get $v) (local.get $tv)))
      (local.set $gw (f32x4.ge (local.get $w) (local.get $tv)))
      (local.set $c (i32x4.sub (i32x4.sub (local.get $c) (local.get $ge)) (local.get $gw)))
      (local.set $mn (f32x4.pmin (f32x4.pmin (local.get $mn)
        (v128.bitselect (local.get $v) (local.get $inf) (local.get $ge)))
        (v128.bitselect (local.get $w) (local.get $inf) (local.get $gw))))
      (local.set $mx (f32x4.pmax (f32x4.pmax (local.get $mx)
        (v128.bitselect (local.get $v) (local.get $ninf) (f32x4.lt (local.get $v) (local.get $tv))))
        (v128.bitselect (local.get $w) (local.get $ninf) (f32x4.lt (local.get $w) (local.get $tv)))))`;
}

/** Stores the lane minimum of `$mn` at `$out` and the lane maximum of `$mx` at `$out + 4`. */
function samplerNeighbours(): string {
  const lanes = (op: string, v: string) =>
    `(${op} (${op} (f32x4.extract_lane 0 (local.get ${v})) (f32x4.extract_lane 1 (local.get ${v}))) ` +
    `(${op} (f32x4.extract_lane 2 (local.get ${v})) (f32x4.extract_lane 3 (local.get ${v}))))`;
  return `(f32.store (local.get $out) ${lanes("f32.min", "$mn")})
    (f32.store offset=4 (local.get $out) ${lanes("f32.max", "$mx")})`;
}

/**
 * The whole module for one variant: it imports its memory as
 * `env.memory` (shared, up to 4 GiB).
 *
 * @example
 * ```ts
 * import { kernelsWat } from "./kernels_wat.ts";
 * const wat = kernelsWat("plain");
 * wat.includes("i32x4.dot_i16x8_s"); // true
 * ```
 */
export function kernelsWat(v: SimdVariant): string {
  const parts = [
    `;; awq-edge CPU kernels (${v} SIMD). Generated by src/cpu/wasm/kernels_wat.ts.`,
    "(module",
    '(memory (import "env" "memory") 1 65536 shared)',
    otherKernels(v),
  ];
  for (const B of INT4_BLOCKS) {
    for (const [R, T] of TILES) {
      parts.push(int4Kernel(v, "int8", B, R, T), int4Kernel(v, "f32", B, R, T));
    }
  }
  for (const kind of ["f16", "f32"] as const) {
    for (const [R, T] of TILES) parts.push(denseKernel(v, kind, R, T));
  }
  parts.push(")");
  return parts.join("\n");
}
