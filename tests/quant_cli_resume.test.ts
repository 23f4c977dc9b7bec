// End-to-end: `cli.ts quantize --resume` after the process is killed (SIGKILL)
// once the first layer's checkpoint is in `<out>.partial` produces the same
// files as an uninterrupted run with the same arguments (the provenance date
// is pinned with --date so the safetensors are byte-equal).
import assert from "node:assert/strict";
import {
  pathExists,
  REPO_ROOT,
  runCli,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
  withTempDir,
} from "./support/cli_run.ts";

if (!sharedPresent) console.warn(`skipping quantize --resume test: ${SHARED_MISSING}`);

const DATE = "2024-05-01T12:00:00.000Z";
/** The job manifest quantize writes into `<out>.partial` (not a layer checkpoint). */
const MANIFEST = "awq_edge_job.json";

/** Layer checkpoint files in `dir` (anything but the manifest and temp files). */
function layerFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name)
      .filter((n) => n !== MANIFEST && !n.startsWith("."));
  } catch {
    return [];
  }
}

function quantizeArgs(out: string): string[] {
  return [
    "quantize",
    "--model",
    STORIES,
    "--out",
    out,
    "--group-size",
    "32",
    "--samples",
    "16",
    "--seqlen",
    "128",
    "--seed",
    "1",
    "--date",
    DATE,
  ];
}

Deno.test({
  name: "cli quantize --resume after a SIGKILL gives the same files as an uninterrupted run",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      // Interrupted run: kill as soon as the first layer is checkpointed.
      const out = `${dir}/resumed`;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "cli.ts", ...quantizeArgs(out)],
        cwd: REPO_ROOT,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const deadline = Date.now() + 300_000;
      let killed = false;
      try {
        while (Date.now() < deadline) {
          if (layerFiles(`${out}.partial`).length > 0) {
            child.kill("SIGKILL");
            killed = true;
            break;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        if (!killed) child.kill("SIGKILL");
        await child.status;
      }
      assert.ok(killed, "no layer checkpoint appeared in time");
      assert.ok(!pathExists(out), "the run finished before it was killed; make it longer");
      assert.ok(pathExists(`${out}.partial`), "the .partial directory is gone after the kill");

      // Without --resume the leftover is refused; with it the run completes.
      const refused = await runCli(quantizeArgs(out));
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /--resume/);
      const resumed = await runCli([...quantizeArgs(out), "--resume"]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.ok(!pathExists(`${out}.partial`));

      // Uninterrupted run with the same arguments.
      const ref = `${dir}/reference`;
      const r = await runCli(quantizeArgs(ref));
      assert.equal(r.code, 0, r.stderr);

      const names = (d: string) => [...Deno.readDirSync(d)].map((e) => e.name).sort();
      assert.deepEqual(names(out), names(ref));
      for (const f of names(ref)) {
        if (f === "quant_report.json") continue; // holds timings and the out path
        const a = await Deno.readFile(`${out}/${f}`);
        const b = await Deno.readFile(`${ref}/${f}`);
        assert.ok(
          a.length === b.length && a.every((x, i) => x === b[i]),
          `${f} differs between the resumed and the uninterrupted run`,
        );
      }
      // The reports agree on every decision (ratios, clip, errors), not on timings.
      const strip = (rep: { layers: { seconds: unknown }[] }) =>
        rep.layers.map((l) => ({ ...l, seconds: undefined }));
      const ra = JSON.parse(await Deno.readTextFile(`${out}/quant_report.json`));
      const rb = JSON.parse(await Deno.readTextFile(`${ref}/quant_report.json`));
      assert.deepEqual(strip(ra), strip(rb));
      assert.deepEqual(ra.provenance, rb.provenance);
    });
  },
});
