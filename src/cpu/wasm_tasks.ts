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

/** Matmuls of up to {@link MAX_PARTS} linears sharing one input, over row chunks. */
export const OP_MATMUL = 1;
/** Attention over chunks of (row, head) units. */
export const OP_ATTENTION = 2;
/** The read-bandwidth probe: sums of memory chunks. */
export const OP_READ = 3;
/**
 * The SwiGLU of a feed-forward block: linears 0 (gate) and 1 (up) over the
 * same row chunks, then `gate = silu(gate) · up` on the chunk's rows.
 */
export const OP_SWIGLU = 4;

/** Most linears one matmul job takes. */
export const MAX_PARTS = 3;

/** Matmul kinds in the job parameters. */
export const KIND_Q4I8 = 0, KIND_Q4F32 = 1, KIND_F16 = 2, KIND_F32 = 3;

/**
 * Matmul job parameter slots (after CTRL_PARAMS) shared by its linears,
 * which have the same kind, block and input width.
 */
export const M = {
  kind: 0,
  block: 1,
  T: 2,
  blocksOrN: 3,
  x: 4,
  xStride: 5,
  xd: 6,
  xs: 7,
  acc: 8,
  parts: 9,
} as const;

/** Slots of linear i of a matmul job start at `PART_BASE + i * PART_SLOTS`. */
export const PART_BASE = 10, PART_SLOTS = 8;

/** Per-linear slots of a matmul job (offsets from the linear's base). */
export const P = {
  w: 0,
  s: 1,
  m: 2,
  rowBytes: 3,
  rows: 4,
  y: 5,
  bias: 6,
  rowsPerChunk: 7,
} as const;

/**
 * Bytes of weights one matmul chunk aims at: larger chunks mean fewer
 * claims and longer sequential reads (64-row chunks of a 2048-wide int4
 * matrix, 72 KiB, decoded 5% slower on the 2-core box).
 */
export const CHUNK_BYTES = 160 * 1024;

/**
 * Rows per chunk for a linear of `rows` rows of `rowBytes` bytes: about
 * {@link CHUNK_BYTES}, a multiple of 4 (the kernels' row tile), and small
 * enough that every thread gets at least two chunks.
 *
 * @example
 * ```ts
 * import { rowsPerChunk } from "./wasm_tasks.ts";
 * rowsPerChunk(5632, 1152, 2); // 140: 41 chunks of ~158 KiB
 * rowsPerChunk(256, 1152, 2); // 64: 4 chunks, two per thread
 * ```
 */
export function rowsPerChunk(rows: number, rowBytes: number, threads: number): number {
  const bySize = Math.max(4, Math.floor(CHUNK_BYTES / rowBytes / 4) * 4);
  const byThreads = Math.max(4, Math.ceil(rows / (2 * threads) / 4) * 4);
  return Math.min(bySize, byThreads);
}

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

/**
 * The control block of `memory` as i32 slots. Take it again after the
 * memory grows when it is not shared (growing detaches the old buffer).
 *
 * @example
 * ```ts
 * import { controlBlock, CTRL_GEN } from "./wasm_tasks.ts";
 * const ctrl = controlBlock(new WebAssembly.Memory({ initial: 1 }));
 * ctrl[CTRL_GEN]; // 0
 * ```
 */
export function controlBlock(memory: WebAssembly.Memory): Int32Array {
  return new Int32Array(memory.buffer, 0, CTRL_BYTES / 4);
}

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
  readonly #memory: WebAssembly.Memory;
  #ctrl: Int32Array;
  readonly #exports: WebAssembly.Exports;
  readonly #thread: number;
  readonly #tiles: Tile[][] = [];
  /** The current matmul job's parameters, copied once per job. */
  readonly #job = new Int32Array(PART_BASE + MAX_PARTS * PART_SLOTS);
  /** First chunk of each linear of the current matmul job (and the total). */
  readonly #starts = new Int32Array(MAX_PARTS + 1);

  /** Binds a runner to its thread's instance. */
  constructor(exports: WebAssembly.Exports, memory: WebAssembly.Memory, thread: number) {
    this.#exports = exports;
    this.#memory = memory;
    this.#ctrl = controlBlock(memory);
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
   * claims nothing of the next one (and ignores the parameters it read).
   */
  runAll(gen: number): void {
    // An unshared memory detaches its old buffer when it grows: view it anew.
    if (this.#ctrl.buffer !== this.#memory.buffer) this.#ctrl = controlBlock(this.#memory);
    const ctrl = this.#ctrl;
    const total = ctrl[CTRL_TOTAL];
    const op = ctrl[CTRL_OP];
    if (op === OP_MATMUL || op === OP_SWIGLU) this.#loadMatmul(op);
    for (;;) {
      const v = Atomics.load(ctrl, CTRL_NEXT);
      const c = v & 0xffff;
      if (v >>> 16 !== (gen & 0x7fff) || c >= total) return;
      if (Atomics.compareExchange(ctrl, CTRL_NEXT, v, v + 1) !== v) continue;
      if (op === OP_MATMUL || op === OP_SWIGLU) this.#matmul(op, c);
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

  /** Copies the matmul job's parameters and numbers its linears' chunks. */
  #loadMatmul(op: number): void {
    const j = this.#job;
    for (let i = 0; i < j.length; i++) j[i] = this.#ctrl[CTRL_PARAMS + i];
    const parts = op === OP_SWIGLU ? 1 : j[M.parts]; // SwiGLU chunks run both linears
    this.#starts[0] = 0;
    for (let i = 0; i < MAX_PARTS; i++) {
      const b = PART_BASE + i * PART_SLOTS;
      const chunks = i < parts ? Math.ceil(j[b + P.rows] / j[b + P.rowsPerChunk]) : 0;
      this.#starts[i + 1] = this.#starts[i] + chunks;
    }
  }

  /** Chunk `c` of a matmul job: its rows of one linear (both, then SiLU, for SwiGLU). */
  #matmul(op: number, c: number): void {
    const j = this.#job;
    let part = 0;
    while (c >= this.#starts[part + 1]) part++;
    const b = PART_BASE + part * PART_SLOTS;
    const rows = j[b + P.rows];
    const r0 = (c - this.#starts[part]) * j[b + P.rowsPerChunk];
    const r1 = Math.min(rows, r0 + j[b + P.rowsPerChunk]);
    this.#rows(b, r0, r1);
    if (op !== OP_SWIGLU) return;
    const u = PART_BASE + PART_SLOTS;
    this.#rows(u, r0, r1);
    const silu = this.#exports.silu_mul as Fn;
    for (let t = 0; t < j[M.T]; t++) {
      silu(j[b + P.y] + t * rows * 4, j[u + P.y] + t * rows * 4, r0, r1);
    }
  }

  /** Output rows [r0, r1) of the linear whose slots start at `b`, for every input row. */
  #rows(b: number, r0: number, r1: number): void {
    const j = this.#job;
    const kind = j[M.kind];
    const tile = this.#tiles[kind * 256 + (kind <= KIND_Q4F32 ? j[M.block] : 0)][0];
    const T = j[M.T];
    const r4 = r0 + ((r1 - r0) & ~3);
    const r2 = r0 + ((r1 - r0) & ~1);
    // Input rows 4 at a time, then 2, then 1 (tile bases stay in one group of 4).
    for (let t0 = 0; t0 < T;) {
      const n = T - t0 >= 4 ? 4 : T - t0 >= 2 ? 2 : 1;
      if (n === 4) {
        this.#tile(tile.r2t4, b, t0, r0, r2);
        this.#tile(tile.r1t4, b, t0, r2, r1);
      } else if (n === 2) {
        this.#tile(tile.r4t2, b, t0, r0, r4);
        this.#tile(tile.r1t1, b, t0, r4, r1);
        this.#tile(tile.r1t1, b, t0 + 1, r4, r1);
      } else {
        this.#tile(tile.r4t1, b, t0, r0, r4);
        this.#tile(tile.r1t1, b, t0, r4, r1);
      }
      t0 += n;
    }
  }

  /** One kernel call: rows [r0, r1) of the linear at `b` for the tile at input row t. */
  #tile(f: Fn, b: number, t: number, r0: number, r1: number): void {
    if (r0 >= r1) return;
    const j = this.#job;
    const kind = j[M.kind];
    const xStride = j[M.xStride], yStride = j[b + P.rows] * 4;
    const x = j[M.x] + t * xStride, y = j[b + P.y] + t * yStride;
    if (kind === KIND_Q4I8 || kind === KIND_Q4F32) {
      // xd/xs are [T/4][blocks][4]: the base of input row t.
      const d = ((t >> 2) * j[M.blocksOrN] * 4 + (t & 3)) * 4;
      f(
        j[b + P.w],
        j[b + P.s],
        j[b + P.m],
        j[b + P.rowBytes],
        j[M.blocksOrN],
        x,
        xStride,
        j[M.xd] + d,
        j[M.xs] + d,
        y,
        yStride,
        j[b + P.bias],
        j[M.acc],
        r0,
        r1,
      );
    } else {
      f(
        j[b + P.w],
        j[b + P.rowBytes],
        j[M.blocksOrN],
        x,
        xStride,
        y,
        yStride,
        j[b + P.bias],
        j[M.acc],
        r0,
        r1,
      );
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
