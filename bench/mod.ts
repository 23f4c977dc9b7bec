/**
 * The benchmark suite: `deno task bench [--quick] [--json] [--only NAME[,NAME]]`.
 *
 * Every figure is reported with the baseline it is measured against in the
 * same run (machines are noisy; absolute numbers from different runs do not
 * compare). With `--json`, exactly one JSON object is printed on stdout and
 * the human-readable text goes to stderr.
 *
 * @module
 */

import { acquireGpu } from "../src/gpu/device.ts";
import type { Benchmark, BenchResult } from "./common.ts";
import { awqBench } from "./awq_bench.ts";
import { cpuDecodeBench } from "./cpu_decode_bench.ts";
import { decodeBench } from "./decode_bench.ts";
import { int4Bench } from "./int4_bench.ts";
import { prefillBench } from "./prefill_bench.ts";
import { serverBench } from "./server_bench.ts";
import { shapeBench } from "./shape_bench.ts";
import { wasmGemvBench } from "./wasm_gemv_bench.ts";

/** Every benchmark, in the order they run. */
export const BENCHMARKS: readonly Benchmark[] = [
  decodeBench,
  prefillBench,
  shapeBench,
  awqBench,
  serverBench,
  wasmGemvBench,
  cpuDecodeBench,
  int4Bench,
];

/** Parsed command line. */
export interface BenchArgs {
  /** Print one JSON object on stdout. */
  json: boolean;
  /** Smaller counts. */
  quick: boolean;
  /** Run only these benchmarks (all when empty). */
  only: string[];
}

const USAGE = `usage: deno task bench [--quick] [--json] [--only NAME[,NAME...]]
benchmarks:
${BENCHMARKS.map((b) => `  ${b.name.padEnd(8)} ${b.description}`).join("\n")}`;

/** Parses `args`; throws with the usage text on a bad argument. */
export function parseBenchArgs(args: readonly string[]): BenchArgs {
  const out: BenchArgs = { json: false, quick: false, only: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--json") out.json = true;
    else if (a === "--quick") out.quick = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const v = a === "--only" ? args[++i] : a.slice("--only=".length);
      if (!v) throw new Error(`--only needs a benchmark name\n${USAGE}`);
      out.only.push(...v.split(",").filter(Boolean));
    } else if (a === "--help" || a === "-h") throw new Error(USAGE);
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  for (const name of out.only) {
    if (!BENCHMARKS.some((b) => b.name === name)) {
      throw new Error(`unknown benchmark ${name}\n${USAGE}`);
    }
  }
  return out;
}

interface BenchEntry extends Partial<BenchResult> {
  seconds: number;
  error?: string;
}

async function main(argv: string[]): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    return argv.includes("--help") || argv.includes("-h") ? 0 : 2;
  }
  const log = args.json ? (s: string) => console.error(s) : (s: string) => console.log(s);
  const selected = BENCHMARKS.filter((b) => !args.only.length || args.only.includes(b.name));
  const gpu = await acquireGpu();
  const start = performance.now();
  const report = {
    adapter: gpu.adapterDescription,
    software: gpu.isSoftware,
    f16: gpu.hasF16,
    cpus: navigator.hardwareConcurrency,
    quick: args.quick,
    seconds: 0,
    benchmarks: {} as Record<string, BenchEntry>,
  };
  log(
    `awq-edge bench on ${gpu.adapterDescription} (${navigator.hardwareConcurrency} CPUs)` +
      `${args.quick ? ", quick" : ""}`,
  );
  let failed = false;
  for (const bench of selected) {
    log(`\n[${bench.name}] ${bench.description}`);
    const t0 = performance.now();
    try {
      const r = await bench.run({ gpu, quick: args.quick, log });
      report.benchmarks[bench.name] = { ...r, seconds: (performance.now() - t0) / 1000 };
    } catch (e) {
      failed = true;
      const msg = e instanceof Error ? e.stack ?? e.message : String(e);
      log(`  FAILED: ${msg}`);
      report.benchmarks[bench.name] = { seconds: (performance.now() - t0) / 1000, error: msg };
    }
    log(`  (${report.benchmarks[bench.name].seconds.toFixed(1)} s)`);
  }
  report.seconds = (performance.now() - start) / 1000;
  log(`\ntotal ${report.seconds.toFixed(1)} s`);
  if (args.json) console.log(JSON.stringify(report));
  gpu.destroy();
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
