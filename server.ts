/**
 * The OpenAI-compatible server. Not yet implemented (see the server issue).
 *
 * @module
 */

if (import.meta.main) {
  console.error("server.ts: the OpenAI-compatible server is not implemented yet");
  Deno.exitCode = 1;
}
