/**
 * Starting the server from the command line (`server.ts` and `cli.ts serve`):
 * options, the engine Worker, Deno.serve on 127.0.0.1 by default, and a
 * graceful shutdown on SIGINT / SIGTERM (stop accepting, cancel running
 * generations, release the GPU).
 *
 * @example
 * ```ts ignore
 * const s = await startServer({ model: "stories260K.bin", port: 0 });
 * console.log(s.url);
 * await s.shutdown();
 * ```
 * @module
 */

import { RequestError } from "../errors.ts";
import { numberOption, parseCommandArgs, requiredString } from "../cli/args.ts";
import { BACKEND_OPTIONS, BACKEND_USAGE, parseBackendOptions } from "../cli/backend_options.ts";
import { type AppOptions, createApp } from "./app.ts";
import { WorkerEngine, type WorkerEngineOptions } from "./worker_engine.ts";

/** Usage of `server.ts` / `cli.ts serve`. */
export const SERVE_USAGE = `usage: deno run -A server.ts --model PATH [options]
       deno run -A cli.ts serve --model PATH [options]

OpenAI-compatible server: /v1/models, /v1/completions, /v1/chat/completions,
/health, /metrics and a chat page at /.

options:
  --model PATH          HF directory or llama2.c .bin (required)
  --tokenizer PATH      tokenizer override
  --model-id NAME       model id in the API (default: the file name)
  --host HOST           bind address (default 127.0.0.1)
  --port N              port (default 8080; 0 picks a free one)
  --api-key-env NAME    require "Authorization: Bearer <key>" with the key from
                        environment variable NAME
  --cors                allow cross-origin requests (off by default)
  --slots N             sequences decoding at once (default 4)
  --max-queue N         requests waiting for a slot before 429 (default 64)
  --context N           KV cache length per slot (default: the model's, <= 2048)
  --tokens-per-turn N   decode steps per slot turn (default 8)
  --timeout SECONDS     per-request time limit (default 300)
  --max-body BYTES      request body limit, larger is 413 (default 1048576)
${BACKEND_USAGE}`;

/** Everything needed to start a server. */
export interface ServerOptions extends WorkerEngineOptions, AppOptions {
  /** Bind address (default 127.0.0.1). */
  host?: string;
  /** Port (default 8080). */
  port?: number;
  /** Log lines (default: stderr). */
  log?: (line: string) => void;
}

/** A running server. */
export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  /** The engine (await engine.ready for the model). */
  engine: WorkerEngine;
  /** Stops accepting, cancels generations, stops the worker. */
  shutdown(): Promise<void>;
  /** Resolves when the server has shut down. */
  finished: Promise<void>;
}

/** Parses `server.ts` / `serve` arguments. */
export function parseServeArgs(args: string[]): ServerOptions {
  const { values } = parseCommandArgs(args, {
    model: { type: "string" },
    tokenizer: { type: "string" },
    "model-id": { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    "api-key-env": { type: "string" },
    cors: { type: "boolean" },
    slots: { type: "string" },
    "max-queue": { type: "string" },
    context: { type: "string" },
    "tokens-per-turn": { type: "string" },
    timeout: { type: "string" },
    "max-body": { type: "string" },
    ...BACKEND_OPTIONS,
  });
  const int = (name: string, fallback: number | undefined, min: number) => {
    const v = numberOption(values, name, fallback);
    if (v !== undefined && (!Number.isInteger(v) || v < min)) {
      throw new RequestError(`--${name} must be an integer >= ${min} (got ${v})`);
    }
    return v;
  };
  let apiKey: string | undefined;
  const keyEnv = values["api-key-env"];
  if (typeof keyEnv === "string") {
    apiKey = Deno.env.get(keyEnv);
    if (!apiKey) {
      throw new RequestError(`--api-key-env ${keyEnv}: the variable is not set or empty`);
    }
  }
  const timeout = numberOption(values, "timeout", 300);
  if (!(timeout > 0)) throw new RequestError(`--timeout must be > 0 (got ${timeout})`);
  return {
    ...parseBackendOptions(values),
    model: requiredString(values, "model"),
    tokenizer: values.tokenizer as string | undefined,
    modelId: values["model-id"] as string | undefined,
    host: (values.host as string | undefined) ?? "127.0.0.1",
    port: int("port", 8080, 0),
    apiKey,
    cors: values.cors === true,
    slots: int("slots", 4, 1),
    maxQueue: int("max-queue", 64, 0),
    context: int("context", undefined, 2),
    tokensPerTurn: int("tokens-per-turn", 8, 1),
    requestTimeoutMs: timeout * 1000,
    maxBodyBytes: int("max-body", 1 << 20, 1),
  };
}

/** Starts the engine and the HTTP server; the socket is open before the model is loaded. */
export function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? ((l: string) => console.error(l));
  const engine = WorkerEngine.start(options);
  const app = createApp(engine, options);
  const t0 = performance.now();
  let url = "";
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.host ?? "127.0.0.1",
      port: options.port ?? 8080,
      onListen: (addr) => {
        url = `http://${addr.hostname}:${addr.port}`;
        log(`awq-edge server listening on ${url} (loading ${options.model})`);
      },
    }, app.fetch);
  } catch (e) {
    void engine.close();
    return Promise.reject(e);
  }
  engine.ready.then(
    () => {
      const i = engine.info!;
      log(`backend ${i.backend} (${i.backendReason}) on ${i.device}`);
      log(
        `model "${i.modelId}" ready: context ${i.contextLength}, ${i.slots} slots, ` +
          `${((performance.now() - t0) / 1000).toFixed(2)} s`,
      );
    },
    (e) => log(`error: the model failed to load: ${(e as Error).message}`),
  );
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      // Cancel generations (open streams then end) and stop accepting; wait for open responses.
      const closing = engine.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        server.shutdown(),
        new Promise((r) => timer = setTimeout(r, 5000)),
      ]);
      clearTimeout(timer);
      await closing;
    })();
    return stopping;
  };
  url ||= `http://${server.addr.hostname}:${server.addr.port}`;
  return Promise.resolve({ url, engine, shutdown, finished: server.finished });
}

/** Runs the server until SIGINT / SIGTERM. */
export async function serveCommand(args: string[]): Promise<void> {
  const options = parseServeArgs(args);
  const s = await startServer(options);
  const stop = () => {
    console.error("shutting down…");
    void s.shutdown();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const sig of signals) Deno.addSignalListener(sig, stop);
  await s.finished;
  for (const sig of signals) Deno.removeSignalListener(sig, stop);
  console.error("stopped");
}
