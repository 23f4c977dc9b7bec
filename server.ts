/**
 * The OpenAI-compatible server.
 *
 * ```sh
 * deno run -A server.ts --model PATH [--port 8080] [--host 127.0.0.1] [--api-key-env NAME] [--cors]
 * AWQ_EDGE_MODEL=PATH deno serve -A server.ts   # the default export's fetch handler
 * ```
 *
 * For embedding: {@link createApp} builds the Hono app over an engine (mount
 * it with `outer.route("/llm", app)`), {@link WorkerEngine} runs the model in
 * a Worker, and the default export `{ fetch }` serves the model named by the
 * AWQ_EDGE_MODEL environment variable (API key from AWQ_EDGE_API_KEY, if set;
 * backend from AWQ_EDGE_BACKEND = webgpu | wasm | auto, the default).
 *
 * @module
 */

import { createApp } from "./src/server/app.ts";
import { SERVE_USAGE, serveCommand } from "./src/server/serve_command.ts";
import { WorkerEngine } from "./src/server/worker_engine.ts";
import { AwqEdgeError } from "./src/errors.ts";

export { type AppOptions, createApp } from "./src/server/app.ts";
export type {
  EngineChunk,
  EngineInfo,
  EngineRequest,
  EngineResult,
  InferenceEngine,
} from "./src/server/engine.ts";
export { EngineUnavailableError, QueueFullError } from "./src/server/engine.ts";
export { WorkerEngine, type WorkerEngineOptions } from "./src/server/worker_engine.ts";
export {
  parseServeArgs,
  type RunningServer,
  serveCommand,
  type ServerOptions,
  startServer,
} from "./src/server/serve_command.ts";
export { FALLBACK_CHAT_TEMPLATE, renderChat } from "./src/server/chat_template.ts";

let lazy: ReturnType<typeof createApp> | undefined;

function lazyApp(): ReturnType<typeof createApp> | undefined {
  const model = Deno.env.get("AWQ_EDGE_MODEL");
  if (!lazy && model) {
    const env = Deno.env.get("AWQ_EDGE_BACKEND");
    const backend = env === "webgpu" || env === "wasm" ? env : "auto";
    lazy = createApp(WorkerEngine.start({ model, backend }), {
      apiKey: Deno.env.get("AWQ_EDGE_API_KEY"),
    });
  }
  return lazy;
}

/**
 * A `fetch` handler for `deno serve`: on first use it starts a WorkerEngine
 * for AWQ_EDGE_MODEL (503 from /health until loaded).
 */
export function fetch(request: Request): Response | Promise<Response> {
  const app = lazyApp();
  if (!app) {
    return Response.json({
      error: {
        message: "set AWQ_EDGE_MODEL to the model path",
        type: "server_error",
        param: null,
        code: "no_model",
      },
    }, { status: 503 });
  }
  return app.fetch(request);
}

export default { fetch } satisfies Deno.ServeDefaultExport;

/** True when `deno serve` runs this module (it then calls the default export itself). */
function underDenoServe(): boolean {
  try {
    const argv = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
    return argv[1] === "serve";
  } catch {
    return Deno.args.length === 0;
  }
}

// Under `deno serve`, start loading the model at once (the runtime serves the default export).
if (import.meta.main && underDenoServe()) lazyApp();

if (import.meta.main && !underDenoServe()) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) console.log(SERVE_USAGE);
  else {
    try {
      await serveCommand(Deno.args);
    } catch (e) {
      if (!(e instanceof AwqEdgeError)) throw e;
      console.error(`error: ${e.message}\n\n${SERVE_USAGE}`);
      Deno.exitCode = 1;
    }
  }
}
