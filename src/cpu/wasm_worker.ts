/**
 * A Worker of the WebAssembly kernels: instantiates the kernels module on
 * the shared memory it is sent, then waits for jobs in the control block
 * (`wasm_tasks.ts`), spinning briefly after each job and then sleeping in
 * `Atomics.wait`, so an idle backend burns no CPU.
 *
 * Message in: `{ module, memory, thread, spinMs }`; message out: `"ready"`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { ChunkRunner, controlBlock, CTRL_EXIT, CTRL_GEN } from "./wasm_tasks.ts";

self.onmessage = (e: MessageEvent) => {
  const { module, memory, thread, spinMs } = e.data as {
    module: WebAssembly.Module;
    memory: WebAssembly.Memory;
    thread: number;
    spinMs: number;
  };
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const runner = new ChunkRunner(instance.exports, memory, thread);
  const ctrl = controlBlock(memory); // shared: never detached
  // Read the generation before saying "ready": the main thread may post a job
  // or the exit signal as soon as it hears from us, and must not be missed.
  let seen = Atomics.load(ctrl, CTRL_GEN);
  self.postMessage("ready");
  for (;;) {
    const t0 = performance.now();
    let spins = 0;
    while (Atomics.load(ctrl, CTRL_GEN) === seen) {
      if ((++spins & 1023) === 0 && performance.now() - t0 > spinMs) {
        Atomics.wait(ctrl, CTRL_GEN, seen);
      }
    }
    seen = Atomics.load(ctrl, CTRL_GEN);
    if (Atomics.load(ctrl, CTRL_EXIT)) break;
    runner.runAll(seen);
  }
  self.close();
};
