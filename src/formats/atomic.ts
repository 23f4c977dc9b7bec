/**
 * Atomic file and directory replacement: write into a temporary file (or
 * directory) beside the target, then rename it into place, so a reader never
 * sees a half-written checkpoint and a failure leaves nothing behind.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/config.json`, "{}\n");
 * ```
 * @module
 */

import { basename, dirname, join } from "node:path";

function tempName(path: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(2));
  return join(
    dirname(path),
    `.${basename(path)}.tmp-${rand[0].toString(36)}${rand[1].toString(36)}`,
  );
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Opens a temporary file beside `path`, lets `write` fill it, flushes it and
 * renames it onto `path`. On any error the temporary file is removed and the
 * error rethrown; `path` is untouched.
 *
 * @example
 * ```ts
 * import { withAtomicFile } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await withAtomicFile(`${dir}/a.bin`, async (f) => {
 *   await f.write(new Uint8Array([1, 2, 3]));
 * });
 * ```
 */
export async function withAtomicFile(
  path: string,
  write: (file: Deno.FsFile) => Promise<void>,
): Promise<void> {
  const tmp = tempName(path);
  const file = await Deno.open(tmp, { write: true, createNew: true });
  let closed = false;
  try {
    await write(file);
    await file.sync();
    file.close();
    closed = true;
    await Deno.rename(tmp, path);
  } catch (e) {
    if (!closed) file.close();
    await removeQuietly(tmp);
    throw e;
  }
}

/**
 * Writes all of `data` to an open file (looping over partial writes).
 *
 * @example
 * ```ts
 * import { writeAll } from "./atomic.ts";
 * const path = await Deno.makeTempFile();
 * using f = await Deno.open(path, { write: true });
 * await writeAll(f, new Uint8Array([1, 2]));
 * ```
 */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await file.write(data.subarray(off));
}

/**
 * Writes bytes or a UTF-8 string to `path` atomically (temp file + rename).
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/x.txt`, "hello");
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  await withAtomicFile(path, (f) => writeAll(f, bytes));
}

/**
 * Creates an empty temporary directory beside `finalDir` (same file system, so
 * a later {@link replaceDirAtomic} is a plain rename).
 *
 * @example
 * ```ts
 * import { makeTempDirBeside } from "./atomic.ts";
 * const parent = await Deno.makeTempDir();
 * const tmp = await makeTempDirBeside(`${parent}/out`);
 * ```
 */
export async function makeTempDirBeside(finalDir: string): Promise<string> {
  const dir = await Deno.makeTempDir({
    dir: dirname(finalDir),
    prefix: `.${basename(finalDir)}.tmp-`,
  });
  // makeTempDir creates 0700; the finished directory should read like any other (0755 less umask).
  await Deno.chmod(dir, 0o755).catch(() => {});
  return dir;
}

/**
 * Moves the finished directory `tmpDir` to `finalDir`. If `finalDir` exists it
 * is first moved aside, then removed once the new one is in place; if the
 * final rename fails, the old directory is put back.
 *
 * @example
 * ```ts
 * import { makeTempDirBeside, replaceDirAtomic } from "./atomic.ts";
 * const parent = await Deno.makeTempDir();
 * const tmp = await makeTempDirBeside(`${parent}/out`);
 * await Deno.writeTextFile(`${tmp}/a.txt`, "a");
 * await replaceDirAtomic(tmp, `${parent}/out`);
 * ```
 */
export async function replaceDirAtomic(tmpDir: string, finalDir: string): Promise<void> {
  let backup: string | undefined;
  try {
    await Deno.lstat(finalDir);
    backup = tempName(finalDir) + ".old";
    await Deno.rename(finalDir, backup);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  try {
    await Deno.rename(tmpDir, finalDir);
  } catch (e) {
    if (backup) await Deno.rename(backup, finalDir);
    throw e;
  }
  if (backup) await removeQuietly(backup);
}

/**
 * Removes a file or directory tree, ignoring one that does not exist.
 *
 * @example
 * ```ts
 * import { removeIfExists } from "./atomic.ts";
 * await removeIfExists("/tmp/does-not-exist-awq-edge");
 * ```
 */
export async function removeIfExists(path: string): Promise<void> {
  await removeQuietly(path);
}
