/**
 * Chooses and compiles the kernels' WebAssembly module for this runtime:
 * relaxed SIMD when `WebAssembly.validate` accepts it, else plain SIMD;
 * shared memory when the runtime has SharedArrayBuffer (else a copy of the
 * module that imports an unshared memory, for one thread).
 *
 * @module
 */

import { AwqEdgeError } from "../../errors.ts";
import type { SimdVariant } from "./kernels_wat.ts";
import { KERNELS_PLAIN_BASE64, KERNELS_RELAXED_BASE64 } from "./kernels_wasm.ts";

/** What the runtime supports. */
export interface WasmFeatures {
  /** 128-bit SIMD. */
  simd: boolean;
  /** Relaxed SIMD (integer dot products, fused multiply-add). */
  relaxed: boolean;
  /** SharedArrayBuffer and shared WebAssembly memory (Workers can share it). */
  sharedMemory: boolean;
}

const cache = new Map<string, Uint8Array>();

function decode(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * The module bytes of a variant; with `shared: false`, the memory import is
 * rewritten to an unshared memory (the limits flag after `"memory"`, kind 2,
 * goes from 3 — shared with a maximum — to 1).
 *
 * @example
 * ```ts
 * import { kernelBytes } from "./kernels_module.ts";
 * kernelBytes("plain", true).length; // about 70 kB, valid where SIMD and threads exist
 * ```
 */
export function kernelBytes(variant: SimdVariant, shared: boolean): Uint8Array {
  const key = `${variant}/${shared}`;
  let bytes = cache.get(key);
  if (!bytes) {
    bytes = decode(variant === "relaxed" ? KERNELS_RELAXED_BASE64 : KERNELS_PLAIN_BASE64);
    if (!shared) {
      const at = findMemoryImportFlag(bytes);
      bytes[at] = 0x01;
    }
    cache.set(key, bytes);
  }
  return bytes;
}

function findMemoryImportFlag(bytes: Uint8Array): number {
  const needle = [0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x03]; // "memory", kind 2, flag 3
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i + needle.length - 1;
  }
  throw new Error("kernels module: no shared memory import found");
}

/**
 * Detects what this runtime supports, by validating the kernels themselves.
 *
 * @example
 * ```ts
 * import { detectWasmFeatures } from "./kernels_module.ts";
 * const f = detectWasmFeatures(); // { simd: true, relaxed: true, sharedMemory: true } in Deno 2.9
 * ```
 */
export function detectWasmFeatures(): WasmFeatures {
  const sharedMemory = typeof SharedArrayBuffer !== "undefined" && (() => {
    try {
      return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof
        SharedArrayBuffer;
    } catch {
      return false;
    }
  })();
  const valid = (v: SimdVariant) => {
    try {
      return WebAssembly.validate(kernelBytes(v, sharedMemory) as Uint8Array<ArrayBuffer>);
    } catch {
      return false;
    }
  };
  const simd = valid("plain");
  return { simd, relaxed: simd && valid("relaxed"), sharedMemory };
}

/**
 * The error raised when the runtime cannot run the WebAssembly kernels at all.
 *
 * @example
 * ```ts
 * import { detectWasmFeatures, noSimdError } from "./kernels_module.ts";
 * if (!detectWasmFeatures().simd) throw noSimdError();
 * ```
 */
export function noSimdError(): AwqEdgeError {
  return new AwqEdgeError(
    "this runtime has no WebAssembly SIMD: the WebAssembly CPU kernels cannot run " +
      "(use the TypeScript kernels)",
  );
}
