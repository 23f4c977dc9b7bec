/**
 * Existence checks that treat "not found" and "a parent is not a directory"
 * as absence and let every other error (permissions, I/O) through.
 *
 * @example
 * ```ts
 * import { pathExists, statOrNull } from "./path_exists.ts";
 * console.log(await pathExists("/no/such/path")); // false
 * console.log((await statOrNull("/"))?.isDirectory); // true
 * ```
 * @module
 */

function isAbsence(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory;
}

/** Whether anything (a file, a directory, a link) exists at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (isAbsence(e)) return false;
    throw e;
  }
}

/** `Deno.stat(path)`, or null when nothing is there. */
export async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (isAbsence(e)) return null;
    throw e;
  }
}
