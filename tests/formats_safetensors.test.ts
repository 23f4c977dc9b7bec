import assert from "node:assert/strict";
import { FormatError } from "../src/errors.ts";
import { openSafetensors } from "../src/formats/safetensors_read.ts";
import { openSafetensorsModel } from "../src/formats/safetensors_model.ts";
import { writeSafetensors, writeSafetensorsSharded } from "../src/formats/safetensors_write.ts";

/** Builds safetensors bytes from a header (object or raw text) and a data section. */
function fileBytes(header: unknown, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint) {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

async function tmpFile(bytes: Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  await Deno.writeFile(path, bytes);
  return path;
}

async function rejects(bytes: Uint8Array, ...parts: (string | RegExp)[]) {
  const path = await tmpFile(bytes);
  try {
    await assert.rejects(openSafetensors(path), (e: unknown) => {
      assert.ok(e instanceof FormatError, `expected FormatError, got ${e}`);
      assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
      for (const p of parts) {
        if (typeof p === "string") assert.ok(e.message.includes(p), `"${p}" in: ${e.message}`);
        else assert.match(e.message, p);
      }
      return true;
    });
  } finally {
    await Deno.remove(path);
  }
}

const f32x2 = { dtype: "F32", shape: [2], data_offsets: [0, 8] };

Deno.test("openSafetensors() reads a valid file's header and tensors", async () => {
  const data = new Uint8Array(new Float32Array([1.5, -2]).buffer);
  const path = await tmpFile(fileBytes({ __metadata__: { format: "pt" }, w: f32x2 }, data));
  const st = await openSafetensors(path);
  try {
    assert.deepEqual(st.metadata, { format: "pt" });
    assert.deepEqual(st.tensors.get("w"), { dtype: "F32", shape: [2], begin: 0, end: 8 });
    const t = await st.readF32("w");
    assert.deepEqual(Array.from(t.data), [1.5, -2]);
    assert.equal(t.dtype, "F32");
  } finally {
    st.close();
    await Deno.remove(path);
  }
});

Deno.test("openSafetensors() rejects a file shorter than 8 bytes", async () => {
  await rejects(new Uint8Array([1, 0, 0]), "too short");
});

Deno.test("openSafetensors() rejects a header length larger than the file", async () => {
  await rejects(fileBytes({ w: f32x2 }, new Uint8Array(8), 1000n), "header length 1000");
});

Deno.test("openSafetensors() rejects a header that is not JSON", async () => {
  await rejects(fileBytes("{not json"), "not JSON");
});

Deno.test("openSafetensors() rejects a JSON header that is not an object", async () => {
  await rejects(fileBytes("[1, 2]"), "not a JSON object");
});

Deno.test("openSafetensors() rejects an unknown dtype, naming the tensor", async () => {
  await rejects(
    fileBytes({ w: { dtype: "F64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
    '"w"',
    "F64",
  );
});

Deno.test("openSafetensors() rejects a shape that is not a list of non-negative integers", async () => {
  await rejects(
    fileBytes({ w: { dtype: "F32", shape: [2, -1], data_offsets: [0, 8] } }, new Uint8Array(8)),
    '"w"',
    "shape",
  );
  await rejects(
    fileBytes({ w: { dtype: "F32", shape: "2", data_offsets: [0, 8] } }, new Uint8Array(8)),
    "shape",
  );
});

Deno.test("openSafetensors() rejects data_offsets that are not two integers", async () => {
  await rejects(
    fileBytes({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8, 9] } }, new Uint8Array(9)),
    '"w"',
    "data_offsets",
  );
  await rejects(
    fileBytes({ w: { dtype: "F32", shape: [2], data_offsets: [0, 7.5] } }, new Uint8Array(8)),
    "data_offsets",
  );
});

Deno.test("openSafetensors() rejects data_offsets whose end is before begin", async () => {
  await rejects(
    fileBytes({ w: { dtype: "F32", shape: [0], data_offsets: [8, 0] } }, new Uint8Array(8)),
    '"w"',
    "end 0 < begin 8",
  );
});

Deno.test("openSafetensors() rejects data_offsets past the end of the file", async () => {
  await rejects(fileBytes({ w: f32x2 }, new Uint8Array(4)), '"w"', "out of range");
});

Deno.test("openSafetensors() rejects a size that disagrees with shape x dtype", async () => {
  await rejects(
    fileBytes({ w: { dtype: "F16", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)),
    '"w"',
    "needs 4",
  );
});

Deno.test("openSafetensors() rejects overlapping tensors, naming both", async () => {
  await rejects(
    fileBytes(
      { a: f32x2, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } },
      new Uint8Array(12),
    ),
    '"a"',
    '"b"',
    "overlaps",
  );
});

Deno.test("openSafetensors() rejects __metadata__ with a non-string value", async () => {
  await rejects(fileBytes({ __metadata__: { n: 1 } }), "__metadata__");
});

Deno.test("SafetensorsFile.readF32() rejects an integer tensor, naming it", async () => {
  const path = await tmpFile(
    fileBytes({ ids: { dtype: "I32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)),
  );
  const st = await openSafetensors(path);
  try {
    await assert.rejects(
      st.readF32("ids"),
      (e: unknown) => e instanceof FormatError && /"ids".*I32/.test(e.message),
    );
    await assert.rejects(
      st.read("nope"),
      (e: unknown) => e instanceof FormatError && e.message.includes('"nope"'),
    );
  } finally {
    st.close();
    await Deno.remove(path);
  }
});

Deno.test("writeSafetensors() then openSafetensors() round-trips every dtype", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/all.safetensors`;
  const f = new Float32Array([1, -0.5, 3.25, 65504, 2 ** -24, 0]);
  await writeSafetensors(path, [
    { name: "f32", dtype: "F32", shape: [2, 3], data: f },
    { name: "f16", dtype: "F16", shape: [6], data: f },
    {
      name: "bf16",
      dtype: "BF16",
      shape: [3, 2],
      data: new Float32Array([1, -2, 0.5, 256, -0.125, 0]),
    },
    { name: "f16bits", dtype: "F16", shape: [1], data: new Uint16Array([0x3c00]) },
    { name: "i32", dtype: "I32", shape: [3], data: new Int32Array([-1, 0, 2147483647]) },
    { name: "i8", dtype: "I8", shape: [3], data: new Uint8Array([0xff, 0, 7]) },
    { name: "u8", dtype: "U8", shape: [1, 1, 3], data: new Uint8Array([255, 0, 7]) },
    { name: "scalar", dtype: "F32", shape: [], data: new Float32Array([7]) },
  ], { format: "pt" });
  const st = await openSafetensors(path);
  try {
    assert.deepEqual(st.metadata, { format: "pt" });
    assert.deepEqual(Array.from((await st.readF32("f32")).data), Array.from(f));
    const h = await st.readF32("f16");
    assert.equal(h.dtype, "F16");
    assert.deepEqual(Array.from(h.data), Array.from(f));
    const b = await st.readF32("bf16");
    assert.equal(b.dtype, "BF16");
    assert.deepEqual(b.shape, [3, 2]);
    assert.deepEqual(Array.from(b.data), [1, -2, 0.5, 256, -0.125, 0]);
    assert.deepEqual(Array.from((await st.readF32("f16bits")).data), [1]);
    const i = await st.read("i32");
    assert.deepEqual(Array.from(new Int32Array(i.bytes.buffer)), [-1, 0, 2147483647]);
    assert.deepEqual(Array.from(new Int8Array((await st.read("i8")).bytes.buffer)), [-1, 0, 7]);
    const u = await st.read("u8");
    assert.deepEqual(u.shape, [1, 1, 3]);
    assert.deepEqual(Array.from(u.bytes), [255, 0, 7]);
    assert.deepEqual(Array.from((await st.readF32("scalar")).data), [7]);
  } finally {
    st.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeSafetensors() pads the header to 8 bytes with spaces and orders tensors like the reference", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/o.safetensors`;
  await writeSafetensors(path, [
    { name: "b", dtype: "U8", shape: [1], data: new Uint8Array([1]) },
    { name: "z", dtype: "F32", shape: [1], data: new Float32Array([1]) },
    { name: "a", dtype: "F32", shape: [1], data: new Float32Array([2]) },
  ]);
  const bytes = await Deno.readFile(path);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(text, /^\{.*\} *$/);
  const h = JSON.parse(text);
  assert.deepEqual(Object.keys(h), ["a", "z", "b"]);
  assert.deepEqual(h.a.data_offsets, [0, 4]);
  assert.deepEqual(h.b.data_offsets, [8, 9]);
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["o.safetensors"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeSafetensors() rejects data whose size disagrees with the shape and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    writeSafetensors(`${dir}/bad.safetensors`, [
      { name: "w", dtype: "F32", shape: [3], data: new Float32Array(2) },
    ]),
    (e: unknown) => e instanceof FormatError && e.message.includes('"w"'),
  );
  assert.deepEqual([...Deno.readDirSync(dir)], []);
  await Deno.remove(dir);
});

Deno.test("writeSafetensorsSharded() round-trips through openSafetensorsModel()", async () => {
  const dir = await Deno.makeTempDir();
  const tensors = Array.from({ length: 5 }, (_, i) => ({
    name: `t${i}`,
    dtype: "F32" as const,
    shape: [4],
    data: new Float32Array([i, i + 0.5, -i, 1 / (i + 1)]),
  }));
  const files = await writeSafetensorsSharded(dir, tensors, { maxShardBytes: 40 });
  assert.deepEqual(files, [
    "model-00001-of-00003.safetensors",
    "model-00002-of-00003.safetensors",
    "model-00003-of-00003.safetensors",
    "model.safetensors.index.json",
  ]);
  const index = JSON.parse(await Deno.readTextFile(`${dir}/model.safetensors.index.json`));
  assert.equal(index.metadata.total_size, 80);
  assert.equal(index.weight_map.t4, "model-00003-of-00003.safetensors");
  const m = await openSafetensorsModel(dir);
  try {
    assert.deepEqual(m.names().sort(), ["t0", "t1", "t2", "t3", "t4"]);
    assert.ok(m.has("t3") && !m.has("t9"));
    for (const t of tensors) assert.deepEqual((await m.readF32(t.name)).data, t.data);
  } finally {
    m.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeSafetensorsSharded() writes a single model.safetensors when everything fits", async () => {
  const dir = await Deno.makeTempDir();
  const files = await writeSafetensorsSharded(dir, [
    { name: "a", dtype: "F32", shape: [1], data: new Float32Array([1]) },
  ], { maxShardBytes: 1 << 20 });
  assert.deepEqual(files, ["model.safetensors"]);
  const m = await openSafetensorsModel(dir);
  assert.deepEqual(Array.from((await m.readF32("a")).data), [1]);
  m.close();
  await Deno.remove(dir, { recursive: true });
});

async function shardedDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await writeSafetensorsSharded(dir, [
    { name: "a", dtype: "F32", shape: [1], data: new Float32Array([1]) },
    { name: "b", dtype: "F32", shape: [1], data: new Float32Array([2]) },
  ], { maxShardBytes: 4 });
  return dir;
}

Deno.test("openSafetensorsModel() rejects an index naming a missing shard file", async () => {
  const dir = await shardedDir();
  await Deno.remove(`${dir}/model-00002-of-00002.safetensors`);
  await assert.rejects(
    openSafetensorsModel(dir),
    (e: unknown) =>
      e instanceof FormatError && e.message.includes("model-00002-of-00002.safetensors") &&
      e.message.includes("index.json"),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openSafetensorsModel() rejects a tensor listed in the index but absent from its shard", async () => {
  const dir = await shardedDir();
  const indexPath = `${dir}/model.safetensors.index.json`;
  const index = JSON.parse(await Deno.readTextFile(indexPath));
  index.weight_map.ghost = "model-00001-of-00002.safetensors";
  await Deno.writeTextFile(indexPath, JSON.stringify(index));
  await assert.rejects(
    openSafetensorsModel(dir),
    (e: unknown) => e instanceof FormatError && e.message.includes('"ghost"'),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openSafetensorsModel() rejects a directory without safetensors files", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    openSafetensorsModel(dir),
    (e: unknown) => e instanceof FormatError && e.message.includes(dir),
  );
  await Deno.remove(dir);
});
