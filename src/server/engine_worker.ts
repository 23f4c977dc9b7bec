/**
 * The engine Worker: loads the model on the chosen backend (WebGPU or the
 * WebAssembly CPU backend) and serves generate / cancel messages with a
 * {@link BatchRunner} (batched decode over KV slots), so model work and
 * readbacks never block the HTTP event loop. Spawned by {@link WorkerEngine}.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { AwqEdgeError, RequestError } from "../errors.ts";
import type { InferenceModel } from "../engine/inference_model.ts";
import { openInferenceModel } from "../engine/open_inference_model.ts";
import { loadModel } from "../model/load_model.ts";
import { BatchRunner } from "./batch_runner.ts";
import type { FromWorker, ToWorker, WorkerLoadOptions } from "./worker_protocol.ts";

let runner: BatchRunner | undefined;
let model: InferenceModel | undefined;

function post(m: FromWorker): void {
  self.postMessage(m);
}

async function load(o: WorkerLoadOptions): Promise<void> {
  const { weights, tokenizer } = await loadModel(o.model, o.tokenizer);
  const opened = await openInferenceModel(weights, {
    backend: o.backend ?? "auto",
    context: o.context,
    dtype: o.dtype ?? "auto",
    threads: o.threads,
    activations: o.activations,
    kernels: o.kernels,
    sequences: o.slots,
  });
  model = opened.model;
  runner = await BatchRunner.create(model, tokenizer, o.slots, o.tokensPerTurn);
  post({
    type: "ready",
    contextLength: model.maxSeq,
    slots: runner.size,
    adapter: model.description,
    backend: opened.decision.backend,
    reason: opened.decision.reason,
    notes: opened.notes,
  });
}

async function generate(m: Extract<ToWorker, { type: "generate" }>): Promise<void> {
  try {
    if (!runner) throw new Error("the model is not loaded");
    const result = await runner.run(m.id, m.promptIds, m.request, (c) => {
      post({ type: "chunk", id: m.id, text: c.text, tokenIds: c.tokenIds });
    });
    post({ type: "done", id: m.id, result });
  } catch (e) {
    post({
      type: "error",
      id: m.id,
      message: e instanceof Error ? e.message : String(e),
      requestError: e instanceof RequestError,
    });
  }
}

async function close(): Promise<void> {
  const r = runner;
  runner = undefined;
  if (r) {
    r.cancelAll();
    // Let running generations reach their next readback before freeing buffers.
    for (let i = 0; i < 200 && r.busy > 0; i++) await new Promise((res) => setTimeout(res, 10));
    r.destroy();
  }
  model?.destroy();
  model = undefined;
  post({ type: "closed" });
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "load":
      load(m.options).catch((err) => {
        const msg = err instanceof AwqEdgeError ? err.message : String(err?.stack ?? err);
        post({ type: "fatal", message: msg });
      });
      break;
    case "generate":
      void generate(m);
      break;
    case "cancel":
      runner?.cancel(m.id, m.reason);
      break;
    case "close":
      void close();
      break;
  }
};
