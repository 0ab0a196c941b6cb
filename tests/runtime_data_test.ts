import { assertThrows } from "./support/assert.ts";
import { rng } from "./support/random.ts";
import assert from "node:assert/strict";
import { WireFormatError, type WireFormatReason } from "../errors.ts";
import {
  audio,
  binary,
  decode,
  encode,
  encodedSize,
  encodeInto,
  HEADER_LENGTH,
  json,
  payloadView,
  readHeader,
  type RuntimeData,
  tensor,
  text,
  video,
  writeHeader,
} from "@remotemedia/multiprocess/runtime-data";
import {
  type BadVectorFields,
  fromFields,
  fromHex,
  toFields,
  toHex,
  type VectorFields,
} from "../scripts/make_vectors.ts";

const SESSION = fromHex("00112233445566778899aabbccddeeff");
const BIG = 9_007_199_254_740_993n; // 2^53 + 1
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const VECTORS = new URL("./vectors/", import.meta.url);

function items(a: ArrayLike<number | bigint>): (number | bigint)[] {
  return Array.from(a);
}

function payloadBytes(rd: RuntimeData): Uint8Array {
  const v: ArrayBufferView = rd.kind === "audio"
    ? rd.samples
    : rd.kind === "text" || rd.kind === "json"
    ? rd.bytes
    : rd.data;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Encodes, decodes, checks the fields are equal and re-encodes byte-equal. */
function roundTrip(rd: RuntimeData): RuntimeData {
  const bytes = encode(rd);
  assert.equal(bytes.length, encodedSize(rd));
  const back = decode(bytes);
  assert.deepEqual(toFields(back), toFields(rd));
  assert.deepEqual(encode(back), bytes);
  return back;
}

function assertWire(
  fn: () => unknown,
  reason: WireFormatReason,
  includes?: string,
): WireFormatError {
  const caught = assertThrows(fn, WireFormatError) as WireFormatError;
  assert.equal(caught.reason, reason, caught.message);
  // The reason lives in its field, not glued to the text (docs/wire-format.md).
  assert.ok(!caught.message.startsWith(`${reason}`), caught.message);
  assert.match(caught.message, /^[A-Z]/);
  if (includes) assert.ok(caught.message.includes(includes), caught.message);
  return caught;
}

const common = { sequence: BIG, sessionId: SESSION, timestampNs: U64_MAX };

Deno.test("round trip: audio f32 and i16", () => {
  const a = roundTrip(
    audio(new Float32Array([0.5, -1, 1, 0]), {
      ...common,
      sampleRate: 48000,
      channels: 2,
    }),
  );
  assert.equal(a.kind, "audio");
  if (a.kind !== "audio") return;
  assert.ok(a.samples instanceof Float32Array);
  assert.deepEqual(Array.from(a.samples), [0.5, -1, 1, 0]);
  assert.equal(a.sequence, BIG);
  assert.equal(a.timestampNs, U64_MAX);
  assert.deepEqual(a.sessionId, SESSION);

  const b = roundTrip(
    audio(new Int16Array([-32768, 32767, 0]), { sampleRate: 8000 }),
  );
  if (b.kind !== "audio") throw new Error("kind");
  assert.equal(b.format, "i16");
  assert.equal(b.channels, 1);
  assert.ok(b.samples instanceof Int16Array);
  assert.deepEqual(Array.from(b.samples), [-32768, 32767, 0]);
  assert.equal(b.sequence, 0n);
  assert.deepEqual(b.sessionId, new Uint8Array(16));
});

Deno.test("round trip: video of every pixel format, odd sizes", () => {
  const cases = [
    ["rgb24", 5, 3, 45],
    ["bgr24", 1, 1, 3],
    ["rgba32", 3, 2, 24],
    ["gray8", 7, 1, 7],
    ["yuv420p", 3, 3, 9 + 2 * 4],
    ["yuv420p", 4, 2, 8 + 2 * 2],
    ["nv12", 5, 5, 25 + 2 * 9],
  ] as const;
  for (const [pixelFormat, width, height, n] of cases) {
    const data = Uint8Array.from({ length: n }, (_, i) => i);
    const v = roundTrip(
      video(data, {
        ...common,
        width,
        height,
        pixelFormat,
        frameNumber: U64_MAX - 1n,
        fps: [0xffff_ffff, 1001],
      }),
    );
    if (v.kind !== "video") throw new Error("kind");
    assert.deepEqual(v.data, data);
    assert.equal(v.frameNumber, U64_MAX - 1n);
    assert.deepEqual(v.fps, [0xffff_ffff, 1001]);
  }
  assert.throws(
    () =>
      video(new Uint8Array(16), { width: 3, height: 3, pixelFormat: "nv12" }),
    RangeError,
  );
});

Deno.test("round trip: text with and without language", () => {
  const s = "Olá ✓ 日本語 🎉 \u0000 end";
  const t = roundTrip(text(s, { ...common, language: "pt-BR" }));
  if (t.kind !== "text") throw new Error("kind");
  assert.equal(t.text, s);
  assert.equal(t.language, "pt-BR");
  const u = roundTrip(text("plain"));
  if (u.kind !== "text") throw new Error("kind");
  assert.equal(u.language, undefined);
  const full = roundTrip(text("x", { language: "abcdefgh-ijklmno" })); // 16 bytes
  if (full.kind !== "text") throw new Error("kind");
  assert.equal(full.language, "abcdefgh-ijklmno");
  assert.equal(text("", { language: "" }).language, undefined);
  // A BOM is kept, not stripped: the bytes round trip exactly.
  const bom = roundTrip(text("\ufeffhi"));
  if (bom.kind !== "text") throw new Error("kind");
  assert.equal(bom.text, "\ufeffhi");
  assert.throws(() => text("x", { language: "abcdefgh-ijklmnop" }), RangeError);
  assert.throws(() => text("x", { language: "é" }), RangeError);
});

Deno.test("round trip: tensors of every dtype", () => {
  const cases: [RuntimeData, string][] = [
    [
      tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] }),
      "float32",
    ],
    [tensor(new Float64Array([Math.PI]), { shape: [1, 1, 1] }), "float64"],
    [tensor(new Int8Array([-128, 127])), "int8"],
    [tensor(new Int16Array([-1, 2, 3, 4]), { shape: [2, 1, 2] }), "int16"],
    [tensor(new Int32Array([-(2 ** 31)]), { shape: [] }), "int32"],
    [tensor(new BigInt64Array([-(2n ** 63n), BIG])), "int64"],
    [tensor(new Uint8Array([0, 255])), "uint8"],
    [tensor(new Uint16Array([65535])), "uint16"],
    [tensor(new Uint32Array([2 ** 32 - 1])), "uint32"],
    [tensor(new BigUint64Array([U64_MAX])), "uint64"],
    [
      tensor(new Uint16Array([0x3c00]), { dtype: "float16", shape: [] }),
      "float16",
    ],
    [tensor(new Uint8Array([1, 0, 1]), { dtype: "bool" }), "bool"],
    [tensor(new Float32Array(0), { shape: [3, 0, 2] }), "float32"],
    [tensor(new Uint8Array(256), { shape: [2, 2, 2, 2, 2, 2, 2, 2] }), "uint8"],
  ];
  for (const [rd, dtype] of cases) {
    const back = roundTrip(rd);
    if (back.kind !== "tensor" || rd.kind !== "tensor") throw new Error("kind");
    assert.equal(back.dtype, dtype);
    assert.deepEqual(back.shape, rd.shape);
    assert.equal(back.data.constructor, rd.data.constructor);
    assert.deepEqual(items(back.data), items(rd.data));
  }
  assert.throws(
    () => tensor(new Float32Array(6), { shape: [4, 2] }),
    RangeError,
  );
  assert.throws(
    () => tensor(new Uint8Array(1), { shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] }),
    RangeError,
  );
  assert.throws(
    () => tensor(new Float32Array(1), { dtype: "float16" }),
    TypeError,
  );
});

Deno.test("round trip: json and binary (empty and 1 byte)", () => {
  const value = { a: [1, 2.5, null], b: "é", c: { d: true } };
  const j = roundTrip(json(value, common));
  if (j.kind !== "json") throw new Error("kind");
  assert.deepEqual(j.value, value);
  assert.throws(() => json(undefined), TypeError);
  assert.throws(() => json(1n), TypeError);

  const e = roundTrip(binary(new Uint8Array(0)));
  assert.equal(encode(e).length, HEADER_LENGTH);
  const one = roundTrip(binary(new Uint8Array([0x5a]), common));
  if (one.kind !== "binary") throw new Error("kind");
  assert.deepEqual(one.data, new Uint8Array([0x5a]));
  assert.equal(encode(one).length, HEADER_LENGTH + 1);
});

Deno.test("u64 fields above 2^53 keep every bit", () => {
  const rd = binary(new Uint8Array(1), {
    sequence: BIG,
    timestampNs: U64_MAX,
    sessionId: SESSION,
  });
  const bytes = encode(rd);
  const v = new DataView(bytes.buffer);
  assert.equal(v.getBigUint64(24, true), BIG);
  assert.equal(v.getBigUint64(48, true), U64_MAX);
  const back = decode(bytes);
  assert.equal(back.sequence, BIG);
  assert.equal(back.timestampNs, U64_MAX);
  assert.notEqual(back.sequence, BIG - 1n);
  assert.throws(
    () => binary(new Uint8Array(0), { sequence: U64_MAX + 1n }),
    RangeError,
  );
  assert.throws(
    () => binary(new Uint8Array(0), { timestampNs: -1n }),
    RangeError,
  );
  assert.throws(
    () => binary(new Uint8Array(0), { sessionId: new Uint8Array(15) }),
    RangeError,
  );
});

Deno.test("header layout matches docs/wire-format.md offsets", () => {
  const bytes = encode(
    video(new Uint8Array(2 * 2 * 3), {
      sequence: 0x0102030405060708n,
      sessionId: SESSION,
      timestampNs: 0x1122334455667788n,
      width: 2,
      height: 2,
      pixelFormat: "rgb24",
      frameNumber: 0xaabbccddn,
      fps: [30000, 1001],
    }),
  );
  const hex = toHex(bytes.subarray(0, HEADER_LENGTH));
  const want = "524d4454" + "0100" + "02" + "00" + "80000000" + "00000000" +
    "0c00000000000000" + "0807060504030201" + toHex(SESSION) +
    "8877665544332211" + "02000000" + "02000000" + "01" + "00".repeat(7) +
    "ddccbbaa00000000" + "30750000" + "e9030000" + "00".repeat(128 - 88);
  assert.equal(hex, want);

  const t = encode(
    tensor(new Int16Array(6), { shape: [3, 2], sessionId: SESSION }),
  );
  assert.equal(
    toHex(t.subarray(56, 128)),
    "04" + "02" + "00".repeat(6) + "0300000000000000" + "0200000000000000" +
      "00".repeat(48),
  );
  const a = encode(
    audio(new Int16Array(4), { sampleRate: 16000, channels: 2 }),
  );
  assert.equal(toHex(a.subarray(56, 64)), "803e0000" + "0200" + "02" + "00");
  const l = encode(text("x", { language: "pt-BR" }));
  assert.equal(toHex(l.subarray(56, 72)), "70742d4252" + "00".repeat(11));
});

Deno.test("encodeInto a preallocated buffer: 64 MiB tensor, larger target, too small", () => {
  const n = 16 * 1024 * 1024; // 64 MiB of float32
  const data = new Float32Array(n);
  for (let i = 0; i < n; i += 4099) data[i] = i;
  data[n - 1] = -7;
  const rd = tensor(data, { shape: [4096, 4096], sequence: 9n });
  const target = new Uint8Array(encodedSize(rd) + 64);
  target.fill(0xee);
  const t0 = performance.now();
  const written = encodeInto(rd, target);
  const ms = performance.now() - t0;
  assert.equal(written, HEADER_LENGTH + 64 * 1024 * 1024);
  assert.equal(target[written], 0xee, "bytes past the message are left alone");
  const back = decode(target.subarray(0, written));
  if (back.kind !== "tensor") throw new Error("kind");
  assert.equal(back.data.length, n);
  assert.equal(back.data[4099], 4099);
  assert.equal(back.data[n - 1], -7);
  assert.equal(back.data.buffer, target.buffer);
  assert.ok(ms < 2000, `encodeInto of 64 MiB took ${ms} ms`);

  assert.throws(
    () => encodeInto(binary(new Uint8Array(10)), new Uint8Array(137)),
    RangeError,
  );
});

Deno.test("writeHeader + payloadView: a producer fills the payload in place", () => {
  const loan = new Uint8Array(HEADER_LENGTH + 4 * 3 * 2);
  loan.fill(0x77); // stale bytes from a previous message
  writeHeader(loan, {
    kind: "audio",
    sampleRate: 22050,
    channels: 2,
    format: "f32",
    payloadLength: 24,
    sequence: 5n,
  });
  const p = payloadView(loan);
  assert.equal(p.buffer, loan.buffer);
  assert.equal(p.byteOffset, loan.byteOffset + HEADER_LENGTH);
  new Float32Array(p.buffer, p.byteOffset, 6).set([1, 2, 3, 4, 5, 6]);
  const rd = decode(loan);
  if (rd.kind !== "audio") throw new Error("kind");
  assert.deepEqual(Array.from(rd.samples), [1, 2, 3, 4, 5, 6]);
  assert.equal(rd.sequence, 5n);
  assert.deepEqual(rd.sessionId, new Uint8Array(16), "unused bytes are zeroed");
  assert.equal(rd.timestampNs, 0n);
  assert.deepEqual(readHeader(loan).payloadLength, 24);

  assert.throws(
    () =>
      writeHeader(loan, {
        kind: "audio",
        sampleRate: 22050,
        channels: 5,
        format: "f32",
        payloadLength: 24,
      }),
    RangeError,
  );
  assert.throws(
    () =>
      writeHeader(new Uint8Array(127), { kind: "binary", payloadLength: 0 }),
    RangeError,
  );
  assert.throws(() => payloadView(new Uint8Array(127)), RangeError);
});

Deno.test("decode is zero copy: views share the input buffer and point inside it", () => {
  // A 64-byte aligned payload inside a larger buffer, as in a shared-memory sample.
  const backing = new ArrayBuffer(64 + 4096);
  const rds: RuntimeData[] = [
    audio(new Float32Array([1, 2]), { sampleRate: 1 }),
    audio(new Int16Array([1, 2]), { sampleRate: 1 }),
    video(new Uint8Array(3), { width: 1, height: 1, pixelFormat: "rgb24" }),
    text("héllo"),
    tensor(new Float64Array([1, 2])),
    tensor(new BigInt64Array([1n])),
    json([1]),
    binary(new Uint8Array([1, 2, 3])),
  ];
  for (const rd of rds) {
    const n = encodedSize(rd);
    const bytes = new Uint8Array(backing, 64, n);
    encodeInto(rd, bytes);
    const back = decode(bytes);
    const view = back.kind === "audio"
      ? back.samples
      : back.kind === "text" || back.kind === "json"
      ? back.bytes
      : back.data;
    assert.equal(view.buffer, backing, back.kind);
    assert.equal(view.byteOffset, 64 + HEADER_LENGTH, back.kind);
    assert.equal(view.byteLength, n - HEADER_LENGTH, back.kind);
    // Writing through the input is visible through the view.
    bytes[HEADER_LENGTH] ^= 0xff;
    assert.equal(payloadBytes(back)[0], bytes[HEADER_LENGTH], back.kind);
    // The session id is a copy: it is kept after the sample is released.
    assert.notEqual(back.sessionId.buffer, backing);
  }
});

Deno.test("decode copies only when the payload is not aligned to the element size", () => {
  const rd = tensor(new Float32Array([1.5, -2]));
  const enc = encode(rd);
  const backing = new Uint8Array(enc.length + 1);
  backing.set(enc, 1); // payload at offset 129: not a multiple of 4
  const back = decode(backing.subarray(1));
  if (back.kind !== "tensor") throw new Error("kind");
  assert.notEqual(back.data.buffer, backing.buffer);
  assert.deepEqual(items(back.data), [1.5, -2]);
  // Byte-sized elements never need a copy.
  const b = encode(binary(new Uint8Array([9])));
  const shifted = new Uint8Array(b.length + 1);
  shifted.set(b, 1);
  const bb = decode(shifted.subarray(1));
  if (bb.kind !== "binary") throw new Error("kind");
  assert.equal(bb.data.buffer, shifted.buffer);
});

Deno.test("decode over a SharedArrayBuffer", () => {
  const rd = text("shared ✓", { language: "en" });
  const sab = new SharedArrayBuffer(encodedSize(rd));
  const bytes = new Uint8Array(sab);
  encodeInto(rd, bytes);
  const back = decode(bytes);
  if (back.kind !== "text") throw new Error("kind");
  assert.equal(back.text, "shared ✓");
  assert.equal(back.bytes.buffer, sab);
});

Deno.test("every error reason, in the documented order, with its message", () => {
  const good = encode(binary(new Uint8Array(8)));
  const mut = (edit: (v: DataView, b: Uint8Array) => void): Uint8Array => {
    const b = good.slice();
    edit(new DataView(b.buffer), b);
    return b;
  };
  assertWire(() => decode(new Uint8Array(0)), "too_short", "0 bytes");
  assertWire(() => decode(good.subarray(0, 127)), "too_short", "127 bytes");
  assertWire(
    () => decode(mut((_, b) => (b[0] = 0))),
    "bad_magic",
    "0x54444d00",
  );
  assertWire(
    () => decode(mut((v) => v.setUint16(4, 2, true))),
    "bad_version",
    "version is 2",
  );
  assertWire(
    () => decode(mut((v) => v.setUint32(8, 64, true))),
    "bad_header_len",
    "header_len is 64",
  );
  assertWire(
    () => decode(mut((v) => v.setBigUint64(16, 9n, true))),
    "length_mismatch",
    "sample has 136 bytes",
  );
  assertWire(
    () => decode(mut((v) => v.setBigUint64(16, U64_MAX, true))),
    "length_mismatch",
  );
  assertWire(
    () => decode(mut((v) => v.setUint8(6, 7))),
    "unknown_type",
    "type is 7",
  );
  assertWire(
    () => decode(mut((v) => v.setUint8(6, 0))),
    "unknown_type",
    "type is 0",
  );
  // Order: the earlier rule wins.
  assertWire(() => decode(new Uint8Array(100)), "too_short");
  assertWire(
    () => decode(mut((v, b) => (b[0] = 0, v.setUint16(4, 9, true)))),
    "bad_magic",
  );
  assertWire(
    () =>
      decode(mut((v) => (v.setUint16(4, 9, true), v.setUint32(8, 1, true)))),
    "bad_version",
  );
  assertWire(
    () =>
      decode(
        mut((v) => (v.setUint32(8, 1, true), v.setBigUint64(16, 0n, true))),
      ),
    "bad_header_len",
  );
  assertWire(
    () => decode(mut((v) => (v.setBigUint64(16, 0n, true), v.setUint8(6, 42)))),
    "length_mismatch",
  );
  // The flags byte and the reserved u32 are not checked.
  const flagged = mut((
    v,
  ) => (v.setUint8(7, 0xff), v.setUint32(12, 0xdead, true)));
  assert.equal(decode(flagged).kind, "binary");

  const st = encode(
    audio(new Float32Array(4), { sampleRate: 8000, channels: 2 }),
  );
  const m = (src: Uint8Array, edit: (v: DataView, b: Uint8Array) => void) => {
    const b = src.slice();
    edit(new DataView(b.buffer), b);
    return b;
  };
  assertWire(
    () => decode(m(st, (v) => v.setUint32(56, 0, true))),
    "bad_metadata",
    "sample rate 0",
  );
  assertWire(
    () => decode(m(st, (v) => v.setUint16(60, 0, true))),
    "bad_metadata",
    "channel count 0",
  );
  assertWire(
    () => decode(m(st, (v) => v.setUint8(62, 9))),
    "bad_metadata",
    "sample format 9",
  );
  assertWire(
    () => decode(m(st, (v) => v.setUint16(60, 3, true))),
    "bad_metadata",
    "multiple",
  );
  const vid = encode(
    video(new Uint8Array(12), { width: 2, height: 2, pixelFormat: "rgb24" }),
  );
  assertWire(
    () => decode(m(vid, (v) => v.setUint32(60, 0, true))),
    "bad_metadata",
    "2x0",
  );
  assertWire(
    () => decode(m(vid, (v) => v.setUint8(64, 0))),
    "bad_metadata",
    "pixel format 0",
  );
  assertWire(
    () => decode(m(vid, (v) => v.setUint8(64, 4))),
    "bad_metadata",
    "needs 4 bytes",
  );
  const ten = encode(tensor(new Float32Array(6), { shape: [2, 3] }));
  assertWire(
    () => decode(m(ten, (v) => v.setUint8(56, 13))),
    "bad_metadata",
    "dtype 13",
  );
  assertWire(
    () => decode(m(ten, (v) => v.setUint8(57, 9))),
    "bad_metadata",
    "ndim 9",
  );
  assertWire(
    () => decode(m(ten, (v) => v.setUint8(57, 1))),
    "bad_metadata",
    "needs 8 bytes",
  );
  assertWire(
    () =>
      decode(
        m(
          ten,
          (
            v,
          ) => (v.setBigUint64(64, (1n << 63n) + 3n, true),
            v.setBigUint64(72, 2n, true)),
        ),
      ),
    "bad_metadata",
  );
  // A zero dimension next to one that no JS number holds exactly.
  assertWire(
    () =>
      decode(
        m(ten, (v, b) => {
          b.fill(0, 128); // irrelevant
          v.setBigUint64(16, 0n, true);
          v.setBigUint64(64, 1n << 60n, true);
          v.setBigUint64(72, 0n, true);
        }).subarray(0, 128),
      ),
    "bad_metadata",
    "2^53-1",
  );
  const txt = encode(text("abc", { language: "en" }));
  assertWire(
    () => decode(m(txt, (_, b) => b.set([0xc3, 0x28], 128))),
    "bad_metadata",
    "UTF-8",
  );
  assertWire(
    () => decode(m(txt, (_, b) => (b[57] = 0x80))),
    "bad_metadata",
    "ASCII",
  );
  const js = encode(json({ a: 1 }));
  assertWire(
    () => decode(m(js, (_, b) => (b[128] = 0x7d))),
    "bad_metadata",
    "JSON",
  );
});

async function listVectors(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(VECTORS)) {
    if (e.isFile && e.name.endsWith(".bin")) names.push(e.name.slice(0, -4));
  }
  return names.sort();
}

Deno.test("shared test vectors: decode, compare fields, re-encode byte-equal", async () => {
  const names = await listVectors();
  const good = names.filter((n) => !n.startsWith("bad_"));
  const bad = names.filter((n) => n.startsWith("bad_"));
  assert.ok(good.length >= 15, `${good.length} valid vectors`);
  assert.ok(bad.length >= 7, `${bad.length} bad vectors`);
  const kinds = new Set<string>();
  for (const name of good) {
    const bytes = await Deno.readFile(new URL(`${name}.bin`, VECTORS));
    const fields = JSON.parse(
      await Deno.readTextFile(new URL(`${name}.json`, VECTORS)),
    ) as VectorFields;
    const rd = decode(bytes);
    assert.deepEqual(toFields(rd), fields, name);
    assert.deepEqual(encode(rd), bytes, `${name}: re-encode of the decoded`);
    assert.deepEqual(
      encode(fromFields(fields)),
      bytes,
      `${name}: encode of the fields`,
    );
    kinds.add(rd.kind);
  }
  assert.deepEqual([...kinds].sort(), [
    "audio",
    "binary",
    "json",
    "tensor",
    "text",
    "video",
  ]);
  const reasons = new Set<string>();
  for (const name of bad) {
    const bytes = await Deno.readFile(new URL(`${name}.bin`, VECTORS));
    const { error } = JSON.parse(
      await Deno.readTextFile(new URL(`${name}.json`, VECTORS)),
    ) as BadVectorFields;
    assertWire(() => decode(bytes), error);
    reasons.add(error);
  }
  assert.equal(reasons.size, 7, [...reasons].join());
});

Deno.test("fuzz: random, truncated and mutated inputs give a RuntimeData or a WireFormatError", async () => {
  const rand = rng(0x5eed);
  const int = (n: number) => Math.floor(rand() * n);
  const seeds: Uint8Array[] = [];
  for (const name of await listVectors()) {
    seeds.push(await Deno.readFile(new URL(`${name}.bin`, VECTORS)));
  }
  let ok = 0;
  let failed = 0;
  const tryDecode = (b: Uint8Array) => {
    try {
      const rd = decode(b);
      // A decoded message encodes back to exactly its input bytes, modulo the
      // ignored flags/reserved/unused bytes: at least its size must match.
      assert.equal(encodedSize(rd), b.length);
      ok++;
    } catch (e) {
      if (!(e instanceof WireFormatError)) {
        throw new Error(
          `non-WireFormatError for ${toHex(b.subarray(0, 160))}: ${e}`,
        );
      }
      failed++;
    }
  };
  for (let i = 0; i < 30000; i++) {
    const seed = seeds[int(seeds.length)];
    let b: Uint8Array;
    switch (int(4)) {
      case 0: // random bytes with a valid prefix sometimes
        b = Uint8Array.from({ length: int(300) }, () => int(256));
        if (b.length >= 8 && rand() < 0.7) b.set(seed.subarray(0, 8));
        break;
      case 1: // truncated or extended
        b = new Uint8Array(int(seed.length + 20));
        b.set(seed.subarray(0, Math.min(b.length, seed.length)));
        break;
      default: { // header byte mutations, payload_len kept consistent half the time
        b = seed.slice();
        const k = 1 + int(6);
        for (let j = 0; j < k; j++) {
          b[int(Math.min(b.length, 128 + 16))] = int(256);
        }
        if (b.length >= 128 && rand() < 0.5) {
          new DataView(b.buffer).setBigUint64(16, BigInt(b.length - 128), true);
        }
        if (b.length >= 4 && rand() < 0.3) {
          new DataView(b.buffer).setUint32(0, 0x54444d52, true);
        }
      }
    }
    tryDecode(b);
  }
  // The fuzzer reaches both outcomes, and past the early checks.
  assert.ok(ok > 1000, `${ok} decoded`);
  assert.ok(failed > 1000, `${failed} rejected`);
});
