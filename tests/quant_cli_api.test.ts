// The quantize() API from mod.ts (what the CLI runs): progress callback,
// abort signal (the work directory is kept and a resumed run completes),
// option checks, and the provenance record.
import assert from "node:assert/strict";
import {
  buildProvenance,
  hashModelFiles,
  partialDir,
  provenanceDate,
  quantize,
  type QuantizeProgress,
  RequestError,
  resolveQuantizeOptions,
  sha256Hex,
  TOOL_VERSION,
} from "../mod.ts";
import {
  pathExists,
  SHARED_MISSING,
  sharedPresent,
  STORIES,
  withTempDir,
} from "./support/cli_run.ts";

if (!sharedPresent) console.warn(`skipping quantize() API tests on stories260K: ${SHARED_MISSING}`);

Deno.test("resolveQuantizeOptions() fills AutoAWQ's defaults: awq, w4, g128, zero point, gemm, clip", () => {
  const o = resolveQuantizeOptions({});
  assert.equal(o.method, "awq");
  assert.deepEqual(o.settings, { bits: 4, groupSize: 128, zeroPoint: true });
  assert.equal(o.layout, "gemm");
  assert.equal(o.clip, true);
  assert.equal(o.samples, 128);
  assert.equal(o.seed, 0);
  assert.match(o.calib!, /tinystories-calib\.txt$/);
});

Deno.test("resolveQuantizeOptions() rejects bits, group sizes and layouts it cannot write", () => {
  for (
    const [bad, opt] of [
      [{ bits: 2 }, "--bits"],
      [{ groupSize: 100 }, "--group-size"],
      [{ groupSize: 16 }, "--group-size"],
      [{ layout: "marlin" as "gemm" }, "--layout"],
      [{ method: "gptq" as "awq" }, "--method"],
    ] as const
  ) {
    assert.throws(
      () => resolveQuantizeOptions(bad),
      (e) => e instanceof RequestError && e.message.startsWith(opt),
    );
  }
  assert.equal(resolveQuantizeOptions({ groupSize: 0 }).settings.groupSize, 0);
  assert.equal(resolveQuantizeOptions({ groupSize: 256 }).settings.groupSize, 256);
});

Deno.test("partialDir() is the output path with .partial, trailing slashes dropped", () => {
  assert.equal(partialDir("a/b/"), "a/b.partial");
  assert.equal(partialDir("out"), "out.partial");
});

Deno.test("provenanceDate() pins an ISO date from the option, else AWQ_EDGE_DATE, else now", () => {
  assert.equal(provenanceDate("2024-01-02T03:04:05Z"), "2024-01-02T03:04:05.000Z");
  const old = Deno.env.get("AWQ_EDGE_DATE");
  try {
    Deno.env.set("AWQ_EDGE_DATE", "2023-07-08");
    assert.equal(provenanceDate(), "2023-07-08T00:00:00.000Z");
    Deno.env.delete("AWQ_EDGE_DATE");
    assert.ok(Math.abs(Date.parse(provenanceDate()) - Date.now()) < 60_000);
  } finally {
    if (old === undefined) Deno.env.delete("AWQ_EDGE_DATE");
    else Deno.env.set("AWQ_EDGE_DATE", old);
  }
  assert.throws(() => provenanceDate("yesterday"), RequestError);
});

Deno.test("buildProvenance() is a flat string record with version, hashes, parameters and date", () => {
  const m = buildProvenance({
    source: { path: "/x/model.bin", files: ["model.bin"], sha256: "aa" },
    parameters: { method: "awq", bits: "3", group_size: "64" },
    calibration: { path: "/d/calib.txt", sha256: "bb" },
    date: "2024-01-01",
  });
  assert.deepEqual(m, {
    quantizer: "awq-edge",
    quantizer_version: TOOL_VERSION,
    source_model: "model.bin",
    source_files: "model.bin",
    source_sha256: "aa",
    method: "awq",
    bits: "3",
    group_size: "64",
    calib_file: "calib.txt",
    calib_sha256: "bb",
    date: "2024-01-01T00:00:00.000Z",
  });
  for (const v of Object.values(m)) assert.equal(typeof v, "string");
});

Deno.test("hashModelFiles() hashes an HF directory's config and safetensors as a sorted listing", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/config.json`, "{}");
    await Deno.writeTextFile(`${dir}/model.safetensors`, "xyz");
    await Deno.writeTextFile(`${dir}/README.md`, "not hashed");
    const h = await hashModelFiles(dir);
    assert.deepEqual(h.files, ["config.json", "model.safetensors"]);
    const enc = (s: string) => new TextEncoder().encode(s);
    const listing = `${await sha256Hex(enc("{}"))}  config.json\n` +
      `${await sha256Hex(enc("xyz"))}  model.safetensors\n`;
    assert.equal(h.sha256, await sha256Hex(enc(listing)));
  });
});

Deno.test({
  name: "quantize() reports progress per layer and phase, and returns the report it wrote",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      const seen: QuantizeProgress[] = [];
      const out = `${dir}/rtn`;
      const r = await quantize(STORIES, out, {
        method: "rtn",
        groupSize: 32,
        date: "2024-01-01",
        onProgress: (p) => seen.push(p),
      });
      assert.equal(r.out, out);
      assert.deepEqual([...new Set(seen.map((p) => p.layer))], [0, 1, 2, 3, 4]);
      assert.ok(seen.every((p) => p.layers === 5 && p.fraction >= 0 && p.fraction <= 1));
      const written = JSON.parse(await Deno.readTextFile(`${out}/quant_report.json`));
      assert.deepEqual(written, JSON.parse(JSON.stringify(r)));
    });
  },
});

Deno.test({
  name:
    "quantize() aborted mid-run throws RequestError, writes no output, keeps .partial for resume",
  ignore: !sharedPresent,
  async fn() {
    await withTempDir(async (dir) => {
      const out = `${dir}/q`;
      const ac = new AbortController();
      const opts = { groupSize: 32, samples: 4, seqlen: 64, date: "2024-01-01" };
      await assert.rejects(
        quantize(STORIES, out, {
          ...opts,
          signal: ac.signal,
          onProgress: (p) => {
            if (p.layer === 2) ac.abort();
          },
        }),
        (e) => e instanceof RequestError && /aborted/.test(e.message),
      );
      assert.ok(!pathExists(out), "an output directory was written");
      assert.ok(pathExists(partialDir(out)), "the work directory was removed");
      const resumed = await quantize(STORIES, out, { ...opts, resume: true });
      assert.equal(resumed.layers.length, 5);
      assert.ok(!pathExists(partialDir(out)));
      const fresh = await quantize(STORIES, `${dir}/fresh`, opts);
      const a = await Deno.readFile(`${out}/model.safetensors`);
      const b = await Deno.readFile(`${dir}/fresh/model.safetensors`);
      assert.ok(a.length === b.length && a.every((x, i) => x === b[i]), "resumed != fresh");
      assert.deepEqual(
        resumed.layers.map((l) => l.scaling),
        fresh.layers.map((l) => l.scaling),
      );
    });
  },
});
