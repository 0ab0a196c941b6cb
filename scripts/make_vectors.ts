/**
 * Writes the shared RuntimeData test vectors to `tests/vectors/` (see
 * `tests/vectors/README.md` for the `.json` format). Deterministic: running it
 * again gives the same files.
 *
 * ```sh
 * deno run -A scripts/make_vectors.ts
 * ```
 *
 * Also exports the field conversion used by `tests/runtime_data_test.ts`.
 *
 * @module
 */

import {
  audio,
  binary,
  encode,
  json,
  type PixelFormat,
  type RuntimeData,
  type RuntimeDataOptions,
  tensor,
  type TensorArray,
  type TensorDtype,
  text,
  video,
} from "../data/runtime_data/mod.ts";
import type { WireFormatReason } from "../errors.ts";

/** The `.json` of a valid vector (see tests/vectors/README.md). */
export type VectorFields = Record<string, unknown> & {
  kind: RuntimeData["kind"];
  sequence: string;
  session_id: string;
  timestamp_ns: string;
  payload_hex: string;
};

/** The `.json` of a bad vector. */
export interface BadVectorFields {
  /** The reason decoding must fail with. */
  error: WireFormatReason;
  /** What is wrong, for humans. */
  note: string;
}

/**
 * Lowercase hex of bytes.
 *
 * @example
 * ```ts
 * import { toHex } from "./make_vectors.ts";
 * console.log(toHex(new Uint8Array([1, 171]))); // "01ab"
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Bytes of lowercase or uppercase hex.
 *
 * @example
 * ```ts
 * import { fromHex } from "./make_vectors.ts";
 * console.log(fromHex("01ab")); // Uint8Array(2) [1, 171]
 * ```
 */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0) throw new RangeError("odd hex length");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

function payloadOf(rd: RuntimeData): Uint8Array {
  const v: ArrayBufferView = rd.kind === "audio"
    ? rd.samples
    : rd.kind === "text" || rd.kind === "json"
    ? rd.bytes
    : rd.data;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * The `.json` fields of a message.
 *
 * @example
 * ```ts
 * import { toFields } from "./make_vectors.ts";
 * import { binary } from "../data/runtime_data/mod.ts";
 * console.log(toFields(binary(new Uint8Array([7]))).payload_hex); // "07"
 * ```
 */
export function toFields(rd: RuntimeData): VectorFields {
  const f: VectorFields = {
    kind: rd.kind,
    sequence: rd.sequence.toString(),
    session_id: toHex(rd.sessionId),
    timestamp_ns: rd.timestampNs.toString(),
    payload_hex: "",
  };
  switch (rd.kind) {
    case "audio":
      f.sample_rate = rd.sampleRate;
      f.channels = rd.channels;
      f.sample_format = rd.format;
      break;
    case "video":
      f.width = rd.width;
      f.height = rd.height;
      f.pixel_format = rd.pixelFormat;
      f.frame_number = rd.frameNumber.toString();
      f.fps = [rd.fps[0], rd.fps[1]];
      break;
    case "text":
      f.language = rd.language ?? null;
      f.text = rd.text;
      break;
    case "tensor":
      f.dtype = rd.dtype;
      f.shape = [...rd.shape];
      break;
    case "json":
      f.value = rd.value;
      break;
  }
  // Last, so that it closes each file.
  delete (f as Partial<VectorFields>).payload_hex;
  f.payload_hex = toHex(payloadOf(rd));
  return f;
}

function typedPayload(
  dtype: TensorDtype,
  bytes: Uint8Array<ArrayBuffer>,
): TensorArray {
  const b = bytes.buffer; // fromHex gives a fresh buffer at offset 0: aligned
  switch (dtype) {
    case "float32":
      return new Float32Array(b);
    case "float64":
      return new Float64Array(b);
    case "int8":
      return new Int8Array(b);
    case "int16":
      return new Int16Array(b);
    case "int32":
      return new Int32Array(b);
    case "int64":
      return new BigInt64Array(b);
    case "uint8":
    case "bool":
      return new Uint8Array(b);
    case "uint16":
    case "float16":
      return new Uint16Array(b);
    case "uint32":
      return new Uint32Array(b);
    case "uint64":
      return new BigUint64Array(b);
  }
}

/**
 * Builds a message from `.json` fields (the inverse of {@linkcode toFields});
 * the payload always comes from `payload_hex`.
 *
 * @example
 * ```ts
 * import { fromFields } from "./make_vectors.ts";
 * const rd = fromFields({ kind: "binary", sequence: "1", session_id: "00".repeat(16), timestamp_ns: "0", payload_hex: "ff" });
 * console.log(rd.kind); // "binary"
 * ```
 */
export function fromFields(f: VectorFields): RuntimeData {
  const opts: RuntimeDataOptions = {
    sequence: BigInt(f.sequence),
    sessionId: fromHex(f.session_id),
    timestampNs: BigInt(f.timestamp_ns),
  };
  const payload = fromHex(f.payload_hex);
  switch (f.kind) {
    case "audio":
      return audio(
        f.sample_format === "f32"
          ? new Float32Array(payload.buffer)
          : new Int16Array(payload.buffer),
        {
          ...opts,
          sampleRate: f.sample_rate as number,
          channels: f.channels as number,
        },
      );
    case "video":
      return video(payload, {
        ...opts,
        width: f.width as number,
        height: f.height as number,
        pixelFormat: f.pixel_format as PixelFormat,
        frameNumber: BigInt(f.frame_number as string),
        fps: f.fps as [number, number],
      });
    case "text": {
      const rd = text(new TextDecoder().decode(payload), {
        ...opts,
        language: (f.language as string | null) ?? undefined,
      });
      rd.bytes = payload; // the bytes, not a re-encoding, are the truth
      return rd;
    }
    case "tensor": {
      const dtype = f.dtype as TensorDtype;
      return tensor(typedPayload(dtype, payload), {
        ...opts,
        dtype,
        shape: f.shape as number[],
      });
    }
    case "json": {
      const rd = json(f.value, opts);
      rd.bytes = payload;
      return rd;
    }
    case "binary":
      return binary(payload, opts);
  }
}

// ---------------------------------------------------------------------------
// The vectors

const SESSION = fromHex("0f1e2d3c4b5a69788796a5b4c3d2e1f0");
/** 2^53 + 1: not representable as a JS number. */
const BIG_TS = 9_007_199_254_740_993n;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

function opts(i: number): RuntimeDataOptions {
  return {
    sequence: 0x0102_0304_0506_0700n + BigInt(i),
    sessionId: SESSION,
    timestampNs: BIG_TS + BigInt(i) * 1_000_003n,
  };
}

function bytesOf(n: number, mul = 7, add = 3): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length: n }, (_, i) => (i * mul + add) & 0xff);
}

/** Valid vectors: name to message. */
export function validVectors(): [string, RuntimeData][] {
  let i = 0;
  return [
    [
      "audio_f32_stereo",
      audio(new Float32Array([0, 0.5, -0.5, 1, -1, 0.25]), {
        ...opts(i++),
        sampleRate: 48000,
        channels: 2,
      }),
    ],
    [
      "audio_i16_mono",
      audio(new Int16Array([0, 1, -1, 32767, -32768]), {
        ...opts(i++),
        sampleRate: 16000,
        channels: 1,
      }),
    ],
    [
      "video_rgb24_4x2",
      video(bytesOf(4 * 2 * 3), {
        ...opts(i++),
        width: 4,
        height: 2,
        pixelFormat: "rgb24",
        frameNumber: 12345n,
        fps: [30000, 1001],
      }),
    ],
    [
      "video_yuv420p_3x3",
      video(bytesOf(9 + 2 * 4, 5, 1), {
        ...opts(i++),
        width: 3,
        height: 3,
        pixelFormat: "yuv420p",
        frameNumber: BIG_TS,
        fps: [0, 0],
      }),
    ],
    [
      "video_nv12_4x2",
      video(bytesOf(8 + 2 * 2, 11, 0), {
        ...opts(i++),
        width: 4,
        height: 2,
        pixelFormat: "nv12",
        frameNumber: 1n,
        fps: [25, 1],
      }),
    ],
    [
      "video_gray8_1x1",
      video(new Uint8Array([200]), {
        ...opts(i++),
        width: 1,
        height: 1,
        pixelFormat: "gray8",
      }),
    ],
    [
      "text_pt_br",
      text("Olá, mundo! Ação ✓ 日本語 🎉", {
        ...opts(i++),
        language: "pt-BR",
      }),
    ],
    ["text_no_language", text("hello\nworld", opts(i++))],
    ["text_empty", text("", { ...opts(i++), language: "en" })],
    [
      "tensor_float32_2x3",
      tensor(new Float32Array([1, 2.5, -3, 0, 1e-7, 65504]), {
        ...opts(i++),
        shape: [2, 3],
      }),
    ],
    [
      "tensor_int64_scalar",
      tensor(new BigInt64Array([-9_007_199_254_740_993n]), {
        ...opts(i++),
        shape: [],
      }),
    ],
    [
      "tensor_float16",
      // 1.0, -2.0, 0.5, +inf as raw half-precision bits
      tensor(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7c00]), {
        ...opts(i++),
        dtype: "float16",
        shape: [4],
      }),
    ],
    [
      "tensor_bool",
      tensor(new Uint8Array([1, 0, 0, 1]), {
        ...opts(i++),
        dtype: "bool",
        shape: [2, 2],
      }),
    ],
    [
      "tensor_uint8_empty",
      tensor(new Uint8Array(0), { ...opts(i++), shape: [0, 3] }),
    ],
    [
      "tensor_uint64_1x2x1",
      tensor(new BigUint64Array([U64_MAX, 1n]), {
        ...opts(i++),
        shape: [1, 2, 1],
      }),
    ],
    [
      "json",
      json({ name: "rmp", n: [1, 2.5, null], ok: true, s: "é" }, opts(i++)),
    ],
    ["binary_empty", binary(new Uint8Array(0), opts(i++))],
    ["binary_1_byte", binary(new Uint8Array([0xab]), opts(i++))],
    [
      "binary_u64_max",
      binary(new Uint8Array([1, 2, 3]), {
        sequence: U64_MAX,
        timestampNs: U64_MAX,
      }),
    ],
  ];
}

type Edit = (b: Uint8Array, v: DataView) => Uint8Array | void;

function bad(
  base: RuntimeData,
  error: WireFormatReason,
  note: string,
  edit: Edit,
): [Uint8Array, BadVectorFields] {
  const b = encode(base);
  const v = new DataView(b.buffer);
  const out = edit(b, v) ?? b;
  return [out, { error, note }];
}

/** Bad vectors: name to bytes and expected error. */
export function badVectors(): [string, [Uint8Array, BadVectorFields]][] {
  const bin = binary(bytesOf(8), opts(100));
  const stereo = audio(new Float32Array(4), {
    ...opts(101),
    sampleRate: 44100,
    channels: 2,
  });
  const rgb = video(bytesOf(12), {
    ...opts(102),
    width: 2,
    height: 2,
    pixelFormat: "rgb24",
  });
  const t = tensor(new Float32Array(6), { ...opts(103), shape: [2, 3] });
  const txt = text("abc", { ...opts(104), language: "en" });
  return [
    [
      "bad_too_short",
      bad(bin, "too_short", "127 bytes", (b) => b.slice(0, 127)),
    ],
    [
      "bad_too_short_empty",
      bad(bin, "too_short", "0 bytes", () => new Uint8Array(0)),
    ],
    [
      "bad_too_short_before_magic",
      bad(
        bin,
        "too_short",
        "10 zero bytes (bad magic too)",
        () => new Uint8Array(10),
      ),
    ],
    ["bad_magic", bad(bin, "bad_magic", "RMDU", (b) => void (b[3] = 0x55))],
    [
      "bad_magic_big_endian",
      bad(
        bin,
        "bad_magic",
        "magic written big-endian",
        (_, v) => v.setUint32(0, 0x54444d52, false),
      ),
    ],
    [
      "bad_version",
      bad(bin, "bad_version", "version 2", (_, v) => v.setUint16(4, 2, true)),
    ],
    [
      "bad_version_before_header_len",
      bad(bin, "bad_version", "version 0 and header_len 64", (_, v) => {
        v.setUint16(4, 0, true);
        v.setUint32(8, 64, true);
      }),
    ],
    [
      "bad_header_len",
      bad(
        bin,
        "bad_header_len",
        "header_len 64",
        (_, v) => v.setUint32(8, 64, true),
      ),
    ],
    [
      "bad_header_len_before_length",
      bad(
        bin,
        "bad_header_len",
        "header_len 256 and payload_len + 1",
        (_, v) => {
          v.setUint32(8, 256, true);
          v.setBigUint64(16, 9n, true);
        },
      ),
    ],
    [
      "bad_length_mismatch_long",
      bad(
        bin,
        "length_mismatch",
        "payload_len one more than the sample holds",
        (_, v) => v.setBigUint64(16, 9n, true),
      ),
    ],
    [
      "bad_length_mismatch_short",
      bad(
        bin,
        "length_mismatch",
        "payload_len one less than the sample holds",
        (_, v) => v.setBigUint64(16, 7n, true),
      ),
    ],
    [
      "bad_length_mismatch_u64_max",
      bad(
        bin,
        "length_mismatch",
        "payload_len 2^64-1 (128 + it overflows u64)",
        (_, v) => v.setBigUint64(16, U64_MAX, true),
      ),
    ],
    [
      "bad_length_mismatch_before_type",
      bad(bin, "length_mismatch", "payload_len + 1 and type 9", (_, v) => {
        v.setBigUint64(16, 9n, true);
        v.setUint8(6, 9);
      }),
    ],
    [
      "bad_unknown_type_0",
      bad(bin, "unknown_type", "type 0", (_, v) => v.setUint8(6, 0)),
    ],
    [
      "bad_unknown_type_7",
      bad(bin, "unknown_type", "type 7", (_, v) => v.setUint8(6, 7)),
    ],
    [
      "bad_unknown_type_255",
      bad(bin, "unknown_type", "type 255", (_, v) => v.setUint8(6, 255)),
    ],
    [
      "bad_metadata_audio_zero_rate",
      bad(
        stereo,
        "bad_metadata",
        "sample_rate 0",
        (_, v) => v.setUint32(56, 0, true),
      ),
    ],
    [
      "bad_metadata_audio_zero_channels",
      bad(
        stereo,
        "bad_metadata",
        "channels 0",
        (_, v) => v.setUint16(60, 0, true),
      ),
    ],
    [
      "bad_metadata_audio_sample_format",
      bad(
        stereo,
        "bad_metadata",
        "sample_format 3",
        (_, v) => v.setUint8(62, 3),
      ),
    ],
    [
      "bad_metadata_audio_sample_format_0",
      bad(
        stereo,
        "bad_metadata",
        "sample_format 0",
        (_, v) => v.setUint8(62, 0),
      ),
    ],
    [
      "bad_metadata_audio_partial_frame",
      bad(
        stereo,
        "bad_metadata",
        "16 bytes of f32 with 3 channels",
        (_, v) => v.setUint16(60, 3, true),
      ),
    ],
    [
      "bad_metadata_video_zero_width",
      bad(rgb, "bad_metadata", "width 0", (_, v) => v.setUint32(56, 0, true)),
    ],
    [
      "bad_metadata_video_zero_height",
      bad(rgb, "bad_metadata", "height 0", (_, v) => v.setUint32(60, 0, true)),
    ],
    [
      "bad_metadata_video_pixel_format",
      bad(rgb, "bad_metadata", "pixel_format 7", (_, v) => v.setUint8(64, 7)),
    ],
    [
      "bad_metadata_video_length",
      bad(
        rgb,
        "bad_metadata",
        "rgb24 2x2 needs 12 bytes, declared rgba32 (16)",
        (_, v) => v.setUint8(64, 3),
      ),
    ],
    [
      "bad_metadata_video_huge",
      bad(
        rgb,
        "bad_metadata",
        "rgba32 of 2^32-1 x 2^32-1 overflows u64",
        (_, v) => {
          v.setUint32(56, 0xffff_ffff, true);
          v.setUint32(60, 0xffff_ffff, true);
          v.setUint8(64, 3);
        },
      ),
    ],
    [
      "bad_metadata_tensor_dtype",
      bad(t, "bad_metadata", "dtype 13", (_, v) => v.setUint8(56, 13)),
    ],
    [
      "bad_metadata_tensor_dtype_0",
      bad(t, "bad_metadata", "dtype 0", (_, v) => v.setUint8(56, 0)),
    ],
    [
      "bad_metadata_tensor_ndim",
      bad(t, "bad_metadata", "ndim 9", (_, v) => v.setUint8(57, 9)),
    ],
    [
      "bad_metadata_tensor_shape_mismatch",
      bad(
        t,
        "bad_metadata",
        "shape [2, 4] for 6 float32",
        (_, v) => v.setBigUint64(72, 4n, true),
      ),
    ],
    [
      "bad_metadata_tensor_shape_overflow",
      bad(
        t,
        "bad_metadata",
        "shape [2^63 + 3, 2]: the product wraps to 6 in u64",
        (_, v) => {
          v.setBigUint64(64, (1n << 63n) + 3n, true);
          v.setBigUint64(72, 2n, true);
        },
      ),
    ],
    [
      "bad_metadata_tensor_size_overflow",
      bad(
        t,
        "bad_metadata",
        "shape [2^62 + 3, 2]: product * 4 wraps to 24 in u64",
        (_, v) => {
          v.setBigUint64(64, (1n << 62n) + 3n, true);
          v.setBigUint64(72, 2n, true);
        },
      ),
    ],
    [
      "bad_metadata_tensor_dtype_size",
      bad(
        t,
        "bad_metadata",
        "float64 [2, 3] needs 48 bytes, payload 24",
        (_, v) => v.setUint8(56, 2),
      ),
    ],
    [
      "bad_metadata_text_utf8",
      bad(txt, "bad_metadata", "payload ff fe 00 is not UTF-8", (b) => {
        b.set([0xff, 0xfe, 0x00], 128);
      }),
    ],
    [
      "bad_metadata_text_language",
      bad(txt, "bad_metadata", "language bytes c3 a9 are not ASCII", (b) => {
        b.set([0xc3, 0xa9], 56);
      }),
    ],
  ];
}

if (import.meta.main) {
  const dir = new URL("../tests/vectors/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /\.(bin|json)$/.test(e.name)) {
      await Deno.remove(new URL(e.name, dir));
    }
  }
  const write = async (name: string, bytes: Uint8Array, fields: unknown) => {
    await Deno.writeFile(new URL(`${name}.bin`, dir), bytes);
    await Deno.writeTextFile(
      new URL(`${name}.json`, dir),
      JSON.stringify(fields, null, 2) + "\n",
    );
  };
  let n = 0;
  for (const [name, rd] of validVectors()) {
    await write(name, encode(rd), toFields(rd));
    n++;
  }
  for (const [name, [bytes, fields]] of badVectors()) {
    await write(name, bytes, fields);
    n++;
  }
  console.log(`wrote ${n} vectors to ${dir.pathname}`);
}
