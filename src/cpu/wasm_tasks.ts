/**
 * The parallel part of the WebAssembly kernels: the control block in shared
 * memory through which the main thread hands a job to the Workers, and the
 * code every thread (main included) runs for one chunk of a job. Threads
 * claim chunks with a compare-exchange on a counter tagged with the job id
 * (so fast threads take more, and a late thread never takes a chunk of the
 * next job); the thread finishing the last chunk wakes the main thread.
 *
 * Control block (i32 slots at byte 0 of the memory): see the `CTRL_*`
 * constants; job parameters follow at {@link CTRL_PARAMS}.
 *
 * @module
 */

import { denseKernelName, INT4_BLOCKS, int4KernelName } from "./wasm/kernels_wat.ts";

/** Bytes reserved for the control block at the start of the memory. */
export const CTRL_BYTES = 1024;
/** Job id: set (and notified, for jobs of more than one chunk) to post a job. */
export const CTRL_GEN = 0;
/** `(job id & 0x7fff) << 16 | next chunk to take`. */
export const CTRL_NEXT = 1;
/** Chunks of the current job done. */
export const CTRL_DONE = 2;
/** Set to make the Workers exit. */
export const CTRL_EXIT = 3;
/** The job's operation ({@link OP_MATMUL}, {@link OP_ATTENTION}). */
export const CTRL_OP = 4;
/** Chunks in the job. */
export const CTRL_TOTAL = 5;
/** First job parameter. */
export const CTRL_PARAMS = 8;

/** A matmul over 64-row chunks. */
export const OP_MATMUL = 1;
/** Attention over chunks of (row, head) units. */
export const OP_ATTENTION = 2;
/** The read-bandwidth probe: sums of memory chunks. */
export const OP_READ = 3;

/** Rows per matmul chunk. */
export const ROWS_PER_CHUNK = 64;

/** Matmul kinds in the job parameters. */
export const KIND_Q4I8 = 0, KIND_Q4F32 = 1, KIND_F16 = 2, KIND_F32 = 3;

/** Matmul job parameter slots (after CTRL_PARAMS). */
export const M = {
  kind: 0,
  block: 1,
  rows: 2,
  T: 3,
  w: 4,
  s: 5,
  m: 6,
  rowBytes: 7,
  blocksOrN: 8,
  x: 9,
  xStride: 10,
  xd: 11,
  xs: 12,
  y: 13,
  bias: 14,
  acc: 15,
} as const;

/** Attention job parameter slots (after CTRL_PARAMS). */
export const A = {
  q: 0,
  kc: 1,
  vc: 2,
  out: 3,
  pos0: 4,
  nHeads: 5,
  nKv: 6,
  hd: 7,
  scratch: 8,
  scratchStride: 9,
  units: 10,
  perChunk: 11,
} as const;

/** Read-probe job parameter slots (after CTRL_PARAMS). */
export const R = {
  ptr: 0,
  bytes: 1,
  chunkBytes: 2,
} as const;

// deno-lint-ignore no-explicit-any
type Fn = (...args: number[]) => any;

interface Tile {
  r4t1: Fn;
  r1t1: Fn;
  r1t4: Fn;
  r2t4: Fn;
  r4t2: Fn;
}

/**
 * Runs chunks of the posted job on one thread (the main thread or a
 * Worker), calling into its instance of the kernels.
 *
 * @example
 * ```ts ignore
 * const runner = new ChunkRunner(instance.exports, memory, 0);
 * runner.runAll(); // takes chunks until none are left
 * ```
 */
export class ChunkRunner {
  readonly #ctrl: Int32Array;
  readonly #exports: WebAssembly.Exports;
  readonly #thread: number;
  readonly #tiles: Tile[][] = [];

  /** Binds a runner to its thread's instance. */
  constructor(exports: WebAssembly.Exports, memory: WebAssembly.Memory, thread: number) {
    this.#exports = exports;
    this.#ctrl = new Int32Array(memory.buffer, 0, CTRL_BYTES / 4);
    this.#thread = thread;
    const tile = (name: (r: number, t: number) => string): Tile => ({
      r4t1: exports[name(4, 1)] as Fn,
      r1t1: exports[name(1, 1)] as Fn,
      r1t4: exports[name(1, 4)] as Fn,
      r2t4: exports[name(2, 4)] as Fn,
      r4t2: exports[name(4, 2)] as Fn,
    });
    for (const B of INT4_BLOCKS) {
      this.#tiles[KIND_Q4I8 * 256 + B] = [tile((r, t) => int4KernelName("int8", B, r, t))];
      this.#tiles[KIND_Q4F32 * 256 + B] = [tile((r, t) => int4KernelName("f32", B, r, t))];
    }
    this.#tiles[KIND_F16 * 256] = [tile((r, t) => denseKernelName("f16", r, t))];
    this.#tiles[KIND_F32 * 256] = [tile((r, t) => denseKernelName("f32", r, t))];
  }

  /**
   * Takes and runs chunks of job `gen` (the low 15 bits of the job id) until
   * none are left. A claim is a compare-exchange on CTRL_NEXT, which holds
   * `gen << 16 | next chunk`, so a thread that wakes late for a finished job
   * claims nothing of the next one.
   */
  runAll(gen: number): void {
    const ctrl = this.#ctrl;
    const total = ctrl[CTRL_TOTAL];
    const op = ctrl[CTRL_OP];
    for (;;) {
      const v = Atomics.load(ctrl, CTRL_NEXT);
      const c = v & 0xffff;
      if (v >>> 16 !== (gen & 0x7fff) || c >= total) return;
      if (Atomics.compareExchange(ctrl, CTRL_NEXT, v, v + 1) !== v) continue;
      if (op === OP_MATMUL) this.#matmul(c);
      else if (op === OP_ATTENTION) this.#attention(c);
      else if (op === OP_READ) this.#read(c);
      // The thread finishing the last chunk wakes the main thread if it sleeps.
      if (Atomics.add(ctrl, CTRL_DONE, 1) + 1 === total) Atomics.notify(ctrl, CTRL_DONE);
    }
  }

  #read(c: number): void {
    const p = this.#ctrl.subarray(CTRL_PARAMS);
    const off = c * p[R.chunkBytes];
    (this.#exports.read_sum as Fn)(p[R.ptr] + off, Math.min(p[R.chunkBytes], p[R.bytes] - off));
  }

  #matmul(c: number): void {
    const p = this.#ctrl.subarray(CTRL_PARAMS);
    const kind = p[M.kind];
    const tile = this.#tiles[kind * 256 + (kind <= KIND_Q4F32 ? p[M.block] : 0)][0];
    const rows = p[M.rows], T = p[M.T];
    const r0 = c * ROWS_PER_CHUNK;
    const r1 = Math.min(rows, r0 + ROWS_PER_CHUNK);
    const r4 = r0 + ((r1 - r0) & ~3);
    const xStride = p[M.xStride], yStride = rows * 4;
    const bias = p[M.bias], acc = p[M.acc];
    const blocksOrN = p[M.blocksOrN];
    // xd/xs are [T/4][blocks][4]: the base of input row t.
    const dBase = (t: number) => ((t >> 2) * blocksOrN * 4 + (t & 3)) * 4;
    // Input rows 4 at a time, then 2, then 1 (tile bases stay in one group of 4).
    for (let t0 = 0; t0 < T;) {
      const n = T - t0 >= 4 ? 4 : T - t0 >= 2 ? 2 : 1;
      const x = p[M.x] + t0 * xStride;
      const y = p[M.y] + t0 * yStride;
      const run = (f: Fn, a: number, b: number, dt = 0) => {
        if (a >= b) return;
        if (kind === KIND_Q4I8 || kind === KIND_Q4F32) {
          f(
            p[M.w],
            p[M.s],
            p[M.m],
            p[M.rowBytes],
            blocksOrN,
            x + dt * xStride,
            xStride,
            p[M.xd] + dBase(t0 + dt),
            p[M.xs] + dBase(t0 + dt),
            y + dt * yStride,
            yStride,
            bias,
            acc,
            a,
            b,
          );
        } else {
          f(
            p[M.w],
            p[M.rowBytes],
            blocksOrN,
            x + dt * xStride,
            xStride,
            y + dt * yStride,
            yStride,
            bias,
            acc,
            a,
            b,
          );
        }
      };
      if (n === 4) {
        const r2 = r0 + ((r1 - r0) & ~1);
        run(tile.r2t4, r0, r2);
        run(tile.r1t4, r2, r1);
      } else if (n === 2) {
        run(tile.r4t2, r0, r4);
        run(tile.r1t1, r4, r1);
        run(tile.r1t1, r4, r1, 1);
      } else {
        run(tile.r4t1, r0, r4);
        run(tile.r1t1, r4, r1);
      }
      t0 += n;
    }
  }

  #attention(c: number): void {
    const p = this.#ctrl.subarray(CTRL_PARAMS);
    const u0 = c * p[A.perChunk];
    const u1 = Math.min(p[A.units], u0 + p[A.perChunk]);
    (this.#exports.attention as Fn)(
      p[A.q],
      p[A.kc],
      p[A.vc],
      p[A.out],
      p[A.pos0],
      p[A.nHeads],
      p[A.nKv],
      p[A.hd],
      p[A.scratch] + this.#thread * p[A.scratchStride],
      u0,
      u1,
    );
  }
}
