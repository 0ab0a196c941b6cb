/**
 * The RuntimeData codec: the binary layout of every message that crosses a
 * channel (see `docs/wire-format.md`), byte for byte the same as the Python
 * codec in `remotemedia_multiprocess.runtime_data`.
 *
 * A message is a 128-byte header followed by the payload. The codec is built
 * for zero copy:
 *
 * - {@linkcode decode} returns typed-array views over the input bytes (for
 *   example over a shared-memory sample); nothing is copied unless the payload
 *   offset is not aligned to the element size, which never happens for real
 *   samples (their payload is 8-byte aligned).
 * - {@linkcode encodeInto} writes the header and copies the payload with one
 *   `Uint8Array.set()` into a caller buffer (for example a loan).
 * - {@linkcode writeHeader} and {@linkcode payloadView} let a producer write
 *   the header into a loan and then render the payload in place, with no copy
 *   at all.
 *
 * Typed arrays use the host byte order, so the codec assumes a little-endian
 * host (x86-64, AArch64), as the wire format is little-endian.
 *
 * Decoded views are only valid while their bytes are: views over a received
 * sample must not be used after the sample is released.
 *
 * @example Round trip of an audio frame
 * ```ts
 * import { audio, decode, encode } from "@remotemedia/multiprocess/runtime-data";
 * const bytes = encode(audio(new Float32Array([0.5, -0.5]), { sampleRate: 48000, channels: 2 }));
 * const rd = decode(bytes);
 * if (rd.kind === "audio") console.log(rd.sampleRate, rd.samples); // 48000 Float32Array(2) [0.5, -0.5]
 * ```
 *
 * @module
 */
import {
  WIRE_HEADER_LEN,
  WIRE_LANGUAGE_MAX,
  WIRE_MAGIC,
  WIRE_MAX_NDIM,
  WIRE_OFFSETS,
  WIRE_VERSION as CONTRACT_WIRE_VERSION,
} from "../protocol/contracts.ts";

import { WireFormatError } from "../errors.ts";

/**
 * Size of the header in bytes, and the offset of the payload.
 *
 * @example
 * ```ts
 * import { HEADER_LENGTH } from "@remotemedia/multiprocess/runtime-data";
 * console.log(HEADER_LENGTH); // 128
 * ```
 */
export const HEADER_LENGTH: number = WIRE_HEADER_LEN;

/**
 * The wire format version this codec reads and writes.
 *
 * @example
 * ```ts
 * import { WIRE_VERSION } from "@remotemedia/multiprocess/runtime-data";
 * console.log(WIRE_VERSION); // 1
 * ```
 */
export const WIRE_VERSION: number = CONTRACT_WIRE_VERSION;

const MAGIC = WIRE_MAGIC; // "RMDT" read as a little-endian u32
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const MAX_NDIM = WIRE_MAX_NDIM;
const LANGUAGE_OFFSET = WIRE_OFFSETS.text_language;
const LANGUAGE_MAX = WIRE_LANGUAGE_MAX;

/** Sample format of {@linkcode AudioData}: 32-bit float or 16-bit signed integer. */
export type AudioFormat = "f32" | "i16";

/** Pixel format of {@linkcode VideoData}. */
export type PixelFormat =
  | "rgb24"
  | "bgr24"
  | "rgba32"
  | "gray8"
  | "yuv420p"
  | "nv12";

/**
 * Element type of {@linkcode TensorData}. `float16` elements are carried as raw
 * IEEE 754 half-precision bits in a `Uint16Array`; `bool` elements as one byte
 * each (0 or 1) in a `Uint8Array`.
 */
export type TensorDtype =
  | "float32"
  | "float64"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "float16"
  | "bool";

/** The typed array that holds the elements of a tensor of each dtype. */
export interface TensorArrayMap {
  /** 32-bit floats. */
  float32: Float32Array;
  /** 64-bit floats. */
  float64: Float64Array;
  /** 8-bit signed integers. */
  int8: Int8Array;
  /** 16-bit signed integers. */
  int16: Int16Array;
  /** 32-bit signed integers. */
  int32: Int32Array;
  /** 64-bit signed integers. */
  int64: BigInt64Array;
  /** 8-bit unsigned integers. */
  uint8: Uint8Array;
  /** 16-bit unsigned integers. */
  uint16: Uint16Array;
  /** 32-bit unsigned integers. */
  uint32: Uint32Array;
  /** 64-bit unsigned integers. */
  uint64: BigUint64Array;
  /** Raw half-precision bits. */
  float16: Uint16Array;
  /** One byte per element, 0 or 1. */
  bool: Uint8Array;
}

/** Any typed array that can hold tensor elements. */
export type TensorArray = TensorArrayMap[TensorDtype];

/** The fields every {@linkcode RuntimeData} carries in its header. */
export interface RuntimeDataCommon {
  /** The producer's counter (u64). */
  sequence: bigint;
  /** 16 raw bytes (a UUID's bytes); all zero when there is no session. */
  sessionId: Uint8Array;
  /** CLOCK_MONOTONIC nanoseconds when the producer sent it (u64); 0 when unset. */
  timestampNs: bigint;
}

/** Header metadata of an audio frame. */
export interface AudioMetadata {
  /** Discriminant. */
  kind: "audio";
  /** Samples per second per channel (> 0). */
  sampleRate: number;
  /** Number of interleaved channels (1..65535). */
  channels: number;
  /** Sample format. */
  format: AudioFormat;
}

/** Header metadata of a video frame. */
export interface VideoMetadata {
  /** Discriminant. */
  kind: "video";
  /** Width in pixels (> 0). */
  width: number;
  /** Height in pixels (> 0). */
  height: number;
  /** Pixel layout of the payload. */
  pixelFormat: PixelFormat;
  /** Frame counter (u64). */
  frameNumber: bigint;
  /** Frame rate as `[numerator, denominator]` (u32 each); `[0, 0]` = unknown. */
  fps: [number, number];
}

/** Header metadata of a text message. */
export interface TextMetadata {
  /** Discriminant. */
  kind: "text";
  /** BCP 47 language tag (ASCII, at most 16 bytes), or undefined for none. */
  language?: string;
}

/** Header metadata of a tensor. */
export interface TensorMetadata {
  /** Discriminant. */
  kind: "tensor";
  /** Element type. */
  dtype: TensorDtype;
  /** Dimensions (at most 8; empty for a scalar), C-contiguous. */
  shape: number[];
}

/** Header metadata of a JSON message (none besides the kind). */
export interface JsonMetadata {
  /** Discriminant. */
  kind: "json";
}

/** Header metadata of an opaque binary message (none besides the kind). */
export interface BinaryMetadata {
  /** Discriminant. */
  kind: "binary";
}

/** The per-type header metadata of any {@linkcode RuntimeData}. */
export type RuntimeDataMetadata =
  | AudioMetadata
  | VideoMetadata
  | TextMetadata
  | TensorMetadata
  | JsonMetadata
  | BinaryMetadata;

/** Interleaved audio samples. */
export interface AudioData extends RuntimeDataCommon, AudioMetadata {
  /** Interleaved samples: a `Float32Array` for `f32`, an `Int16Array` for `i16`. */
  samples: Float32Array | Int16Array;
}

/** One video frame. */
export interface VideoData extends RuntimeDataCommon, VideoMetadata {
  /** The packed pixel data (planes one after another for yuv420p and nv12). */
  data: Uint8Array;
}

/**
 * UTF-8 text. `bytes` is the encoded text (a view over the message when
 * decoded) and is what the encoder writes; `text` is the same text as a string,
 * decoded once by {@linkcode decode} (which also validates the UTF-8).
 */
export interface TextData extends RuntimeDataCommon, TextMetadata {
  /** The text. */
  text: string;
  /** The UTF-8 bytes of `text`; the encoder writes these. */
  bytes: Uint8Array;
}

/** A C-contiguous tensor. */
export interface TensorData extends RuntimeDataCommon, TensorMetadata {
  /** The elements, in the typed array of {@linkcode TensorArrayMap} for `dtype`. */
  data: TensorArray;
}

/**
 * A JSON value. `bytes` is the UTF-8 JSON text (a view over the message when
 * decoded) and is what the encoder writes; `value` is the parsed value.
 */
export interface JsonData extends RuntimeDataCommon, JsonMetadata {
  /** The parsed value. */
  value: unknown;
  /** The UTF-8 JSON text; the encoder writes these bytes. */
  bytes: Uint8Array;
}

/** Opaque bytes. */
export interface BinaryData extends RuntimeDataCommon, BinaryMetadata {
  /** The bytes. */
  data: Uint8Array;
}

/** One message of a channel: a discriminated union on `kind`. */
export type RuntimeData =
  | AudioData
  | VideoData
  | TextData
  | TensorData
  | JsonData
  | BinaryData;

/** What {@linkcode writeHeader} writes: metadata, payload length and (optional) common fields. */
export type RuntimeDataHeaderInit =
  & RuntimeDataMetadata
  & Partial<RuntimeDataCommon>
  & {
    /** Length of the payload that follows the header, in bytes. */
    payloadLength: number;
  };

/** A decoded header, as returned by {@linkcode readHeader}. */
export type RuntimeDataHeader =
  & RuntimeDataMetadata
  & RuntimeDataCommon
  & {
    /** Length of the payload that follows the header, in bytes. */
    payloadLength: number;
  };

/** Options shared by every builder. */
export interface RuntimeDataOptions {
  /**
   * The producer's counter (u64).
   *
   * @default {0n}
   */
  sequence?: bigint;
  /**
   * The 16-byte session id (copied).
   *
   * @default {16 zero bytes}
   */
  sessionId?: Uint8Array;
  /**
   * CLOCK_MONOTONIC nanoseconds (u64); 0 means unset.
   *
   * @default {0n}
   */
  timestampNs?: bigint;
}

/** Options of {@linkcode audio}. */
export interface AudioOptions extends RuntimeDataOptions {
  /** Samples per second per channel (> 0). */
  sampleRate: number;
  /**
   * Number of interleaved channels (1..65535).
   *
   * @default {1}
   */
  channels?: number;
}

/** Options of {@linkcode video}. */
export interface VideoOptions extends RuntimeDataOptions {
  /** Width in pixels (> 0). */
  width: number;
  /** Height in pixels (> 0). */
  height: number;
  /** Pixel layout of the data. */
  pixelFormat: PixelFormat;
  /**
   * Frame counter (u64).
   *
   * @default {0n}
   */
  frameNumber?: bigint;
  /**
   * Frame rate as `[numerator, denominator]`; `[0, 0]` = unknown.
   *
   * @default {[0, 0]}
   */
  fps?: [number, number];
}

/** Options of {@linkcode text}. */
export interface TextOptions extends RuntimeDataOptions {
  /**
   * BCP 47 language tag (ASCII, at most 16 bytes); empty or undefined = none.
   *
   * @default {undefined}
   */
  language?: string;
}

/** Options of {@linkcode tensor}. */
export interface TensorOptions extends RuntimeDataOptions {
  /**
   * Element type. Inferred from the typed array when omitted (`Uint16Array`
   * gives `uint16` and `Uint8Array` gives `uint8`: pass `float16` or `bool`
   * explicitly).
   *
   * @default {inferred from data}
   */
  dtype?: TensorDtype;
  /**
   * Dimensions (at most 8; `[]` for a scalar).
   *
   * @default {[data.length]}
   */
  shape?: number[];
}

// ---------------------------------------------------------------------------
// Code tables

const TYPE_CODES = {
  audio: 1,
  video: 2,
  text: 3,
  tensor: 4,
  json: 5,
  binary: 6,
} as const;
const KINDS = [
  undefined,
  "audio",
  "video",
  "text",
  "tensor",
  "json",
  "binary",
] as const;

const AUDIO_FORMAT_CODES: Record<AudioFormat, number> = { f32: 1, i16: 2 };
const AUDIO_FORMATS: (AudioFormat | undefined)[] = [undefined, "f32", "i16"];

const PIXEL_FORMAT_CODES: Record<PixelFormat, number> = {
  rgb24: 1,
  bgr24: 2,
  rgba32: 3,
  gray8: 4,
  yuv420p: 5,
  nv12: 6,
};
const PIXEL_FORMATS: (PixelFormat | undefined)[] = [
  undefined,
  "rgb24",
  "bgr24",
  "rgba32",
  "gray8",
  "yuv420p",
  "nv12",
];

const DTYPE_CODES: Record<TensorDtype, number> = {
  float32: 1,
  float64: 2,
  int8: 3,
  int16: 4,
  int32: 5,
  int64: 6,
  uint8: 7,
  uint16: 8,
  uint32: 9,
  uint64: 10,
  float16: 11,
  bool: 12,
};
const DTYPES: (TensorDtype | undefined)[] = [
  undefined,
  "float32",
  "float64",
  "int8",
  "int16",
  "int32",
  "int64",
  "uint8",
  "uint16",
  "uint32",
  "uint64",
  "float16",
  "bool",
];

type TypedArrayCtor<T> = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
};

const DTYPE_CTORS: { [D in TensorDtype]: TypedArrayCtor<TensorArrayMap[D]> } = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  float16: Uint16Array,
  bool: Uint8Array,
};

const UTF8_FATAL = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();
const ZERO_SESSION: Uint8Array = new Uint8Array(16);

// ---------------------------------------------------------------------------
// Shared validation: returns a message, or undefined when consistent. The
// writer turns a message into a RangeError, the reader into bad_metadata.

function videoPayloadLength(
  width: number,
  height: number,
  format: PixelFormat,
): number {
  const px = width * height;
  switch (format) {
    case "rgb24":
    case "bgr24":
      return px * 3;
    case "rgba32":
      return px * 4;
    case "gray8":
      return px;
    case "yuv420p":
    case "nv12":
      return px + 2 * (Math.ceil(width / 2) * Math.ceil(height / 2));
  }
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
}

function checkLanguage(language: string): string | undefined {
  if (language.length > LANGUAGE_MAX) {
    return `language tag longer than ${LANGUAGE_MAX} bytes`;
  }
  for (let i = 0; i < language.length; i++) {
    const c = language.charCodeAt(i);
    if (c === 0 || c > 0x7f) return "language tag is not NUL-free ASCII";
  }
  return undefined;
}

function checkMetadata(
  m: RuntimeDataMetadata,
  payloadLength: number,
): string | undefined {
  switch (m.kind) {
    case "audio": {
      if (!isU32(m.sampleRate) || m.sampleRate === 0) {
        return `sample rate ${m.sampleRate} is not in 1..2^32-1`;
      }
      if (
        !Number.isInteger(m.channels) || m.channels < 1 || m.channels > 0xffff
      ) {
        return `channel count ${m.channels} is not in 1..65535`;
      }
      const code = AUDIO_FORMAT_CODES[m.format];
      if (code === undefined) return `unknown sample format ${m.format}`;
      const frame = m.channels * (code === 1 ? 4 : 2);
      if (payloadLength % frame !== 0) {
        return `payload length ${payloadLength} is not a multiple of channels * sample size (${frame})`;
      }
      return undefined;
    }
    case "video": {
      if (
        !isU32(m.width) || m.width === 0 || !isU32(m.height) || m.height === 0
      ) {
        return `size ${m.width}x${m.height} is not in 1..2^32-1`;
      }
      if (PIXEL_FORMAT_CODES[m.pixelFormat] === undefined) {
        return `unknown pixel format ${m.pixelFormat}`;
      }
      if (m.frameNumber < 0n || m.frameNumber > U64_MAX) {
        return `frame number ${m.frameNumber} is not a u64`;
      }
      if (!isU32(m.fps[0]) || !isU32(m.fps[1])) {
        return `fps ${m.fps[0]}/${m.fps[1]} is not a pair of u32`;
      }
      const want = videoPayloadLength(m.width, m.height, m.pixelFormat);
      if (want !== payloadLength) {
        return `${m.pixelFormat} ${m.width}x${m.height} needs ${want} bytes, payload has ${payloadLength}`;
      }
      return undefined;
    }
    case "text":
      return m.language === undefined ? undefined : checkLanguage(m.language);
    case "tensor": {
      const code = DTYPE_CODES[m.dtype];
      if (code === undefined) return `unknown dtype ${m.dtype}`;
      if (m.shape.length > MAX_NDIM) {
        return `ndim ${m.shape.length} is more than ${MAX_NDIM}`;
      }
      let count = 1;
      for (const d of m.shape) {
        if (!Number.isSafeInteger(d) || d < 0) {
          return `shape entry ${d} is not an integer in 0..2^53-1`;
        }
        count *= d;
      }
      // count may be inexact above 2^53, but then it cannot equal a real length.
      const want = count * DTYPE_CTORS[m.dtype].BYTES_PER_ELEMENT;
      if (want !== payloadLength) {
        return `${m.dtype} shape [${m.shape}] needs ${want} bytes, payload has ${payloadLength}`;
      }
      return undefined;
    }
    case "json":
    case "binary":
      return undefined;
    default:
      return `unknown kind ${(m as { kind: unknown }).kind}`;
  }
}

// ---------------------------------------------------------------------------
// Builders

function common(options: RuntimeDataOptions): RuntimeDataCommon {
  const sequence = options.sequence ?? 0n;
  const timestampNs = options.timestampNs ?? 0n;
  checkU64("sequence", sequence);
  checkU64("timestampNs", timestampNs);
  let sessionId = ZERO_SESSION;
  if (options.sessionId !== undefined) {
    checkSessionId(options.sessionId);
    sessionId = options.sessionId;
  }
  return { sequence, sessionId: sessionId.slice(), timestampNs };
}

function checkU64(name: string, v: bigint): void {
  if (typeof v !== "bigint") throw new TypeError(`${name} must be a bigint`);
  if (v < 0n || v > U64_MAX) {
    throw new RangeError(`${name} ${v} is not in 0..2^64-1`);
  }
}

function checkSessionId(id: Uint8Array): void {
  if (!(id instanceof Uint8Array) || id.byteLength !== 16) {
    throw new RangeError("sessionId must be a Uint8Array of 16 bytes");
  }
}

function checked<T extends RuntimeData>(rd: T, payloadLength: number): T {
  const problem = checkMetadata(rd, payloadLength);
  if (problem !== undefined) throw new RangeError(problem);
  return rd;
}

/**
 * Builds an audio message over `samples` (not copied). The format follows the
 * array: `Float32Array` is `f32`, `Int16Array` is `i16`.
 *
 * @param samples Interleaved samples; the length must be a multiple of `channels`.
 * @param options Sample rate, channels and common fields.
 * @returns The message.
 * @throws {RangeError} When the metadata is out of range or inconsistent.
 *
 * @example Stereo 48 kHz
 * ```ts
 * import { audio, encodedSize } from "@remotemedia/multiprocess/runtime-data";
 * const rd = audio(new Float32Array(960 * 2), { sampleRate: 48000, channels: 2, sequence: 7n });
 * console.log(rd.format, encodedSize(rd)); // "f32" 7808
 * ```
 */
export function audio(
  samples: Float32Array | Int16Array,
  options: AudioOptions,
): AudioData {
  let format: AudioFormat;
  if (samples instanceof Float32Array) format = "f32";
  else if (samples instanceof Int16Array) format = "i16";
  else throw new TypeError("samples must be a Float32Array or an Int16Array");
  return checked<AudioData>({
    kind: "audio",
    ...common(options),
    sampleRate: options.sampleRate,
    channels: options.channels ?? 1,
    format,
    samples,
  }, samples.byteLength);
}

/**
 * Builds a video message over `data` (not copied).
 *
 * @param data Packed pixel data of exactly the length the format needs.
 * @param options Size, pixel format, frame number, frame rate and common fields.
 * @returns The message.
 * @throws {RangeError} When the metadata is out of range or `data` has the wrong length.
 *
 * @example A 4x2 RGB frame
 * ```ts
 * import { video } from "@remotemedia/multiprocess/runtime-data";
 * const rd = video(new Uint8Array(4 * 2 * 3), { width: 4, height: 2, pixelFormat: "rgb24", fps: [30, 1] });
 * console.log(rd.frameNumber); // 0n
 * ```
 */
export function video(data: Uint8Array, options: VideoOptions): VideoData {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError("data must be a Uint8Array");
  }
  const fps = options.fps ?? [0, 0];
  const frameNumber = options.frameNumber ?? 0n;
  checkU64("frameNumber", frameNumber);
  return checked<VideoData>({
    kind: "video",
    ...common(options),
    width: options.width,
    height: options.height,
    pixelFormat: options.pixelFormat,
    frameNumber,
    fps: [fps[0], fps[1]],
    data,
  }, data.byteLength);
}

/**
 * Builds a text message; the string is encoded to UTF-8 once, here.
 *
 * @param s The text.
 * @param options Language tag and common fields.
 * @returns The message.
 * @throws {RangeError} When the language tag is not ASCII or longer than 16 bytes.
 *
 * @example
 * ```ts
 * import { text } from "@remotemedia/multiprocess/runtime-data";
 * const rd = text("olá", { language: "pt-BR" });
 * console.log(rd.bytes.length); // 4
 * ```
 */
export function text(s: string, options: TextOptions = {}): TextData {
  if (typeof s !== "string") throw new TypeError("text must be a string");
  const language = options.language === "" ? undefined : options.language;
  const bytes = UTF8_ENCODER.encode(s);
  return checked<TextData>({
    kind: "text",
    ...common(options),
    language,
    text: s,
    bytes,
  }, bytes.byteLength);
}

function inferDtype(data: TensorArray): TensorDtype {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Uint8Array) return "uint8";
  if (data instanceof Uint16Array) return "uint16";
  if (data instanceof Uint32Array) return "uint32";
  if (data instanceof BigUint64Array) return "uint64";
  throw new TypeError("data must be a typed array of a tensor dtype");
}

/**
 * Builds a tensor message over `data` (not copied).
 *
 * @param data The C-contiguous elements, in the typed array of the dtype
 * (see {@linkcode TensorArrayMap}).
 * @param options Dtype, shape and common fields.
 * @returns The message.
 * @throws {TypeError} When `data` is not the typed array of `dtype`.
 * @throws {RangeError} When the shape does not match the data length or has more than 8 dimensions.
 *
 * @example A 2x3 float32 matrix and an int64 scalar
 * ```ts
 * import { tensor } from "@remotemedia/multiprocess/runtime-data";
 * const m = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
 * const s = tensor(new BigInt64Array([42n]), { shape: [] });
 * console.log(m.dtype, s.dtype); // "float32" "int64"
 * ```
 */
export function tensor(
  data: TensorArray,
  options: TensorOptions = {},
): TensorData {
  const dtype = options.dtype ?? inferDtype(data);
  const ctor = DTYPE_CTORS[dtype];
  if (ctor === undefined) throw new TypeError(`unknown dtype ${dtype}`);
  if (!(data instanceof ctor)) {
    throw new TypeError(`dtype ${dtype} needs a ${ctor.name}`);
  }
  return checked<TensorData>({
    kind: "tensor",
    ...common(options),
    dtype,
    shape: options.shape ? [...options.shape] : [data.length],
    data,
  }, data.byteLength);
}

/**
 * Builds a JSON message; the value is serialized with `JSON.stringify` once, here.
 *
 * @param value Any JSON-serializable value.
 * @param options Common fields.
 * @returns The message.
 * @throws {TypeError} When `value` does not serialize to JSON (undefined, a function, a cycle, a bigint).
 *
 * @example
 * ```ts
 * import { json } from "@remotemedia/multiprocess/runtime-data";
 * const rd = json({ event: "start", t: 1 });
 * console.log(new TextDecoder().decode(rd.bytes)); // {"event":"start","t":1}
 * ```
 */
export function json(
  value: unknown,
  options: RuntimeDataOptions = {},
): JsonData {
  const s = JSON.stringify(value);
  if (s === undefined) throw new TypeError("value does not serialize to JSON");
  return {
    kind: "json",
    ...common(options),
    value,
    bytes: UTF8_ENCODER.encode(s),
  };
}

/**
 * Builds an opaque binary message over `data` (not copied).
 *
 * @param data The bytes (may be empty).
 * @param options Common fields.
 * @returns The message.
 *
 * @example
 * ```ts
 * import { binary, encode } from "@remotemedia/multiprocess/runtime-data";
 * console.log(encode(binary(new Uint8Array([1, 2, 3]))).length); // 131
 * ```
 */
export function binary(
  data: Uint8Array,
  options: RuntimeDataOptions = {},
): BinaryData {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError("data must be a Uint8Array");
  }
  return { kind: "binary", ...common(options), data };
}

// ---------------------------------------------------------------------------
// Encoding

/**
 * The payload of `rd` as bytes: a view of the same memory (samples, pixels,
 * tensor elements or encoded text), never a copy.
 *
 * @param rd The message.
 * @returns Its payload bytes.
 *
 * @example
 * ```ts
 * import { audio, payloadBytes } from "@remotemedia/multiprocess/runtime-data";
 * const rd = audio(new Float32Array(4), { sampleRate: 16000 });
 * console.log(payloadBytes(rd).byteLength); // 16
 * ```
 */
export function payloadBytes(rd: RuntimeData): Uint8Array {
  const view = payloadOf(rd);
  return view instanceof Uint8Array
    ? view
    : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * The typed array that holds `rd`'s payload, checked against its kind: a
 * message built by hand with the wrong field type would otherwise encode as an
 * empty payload and reach the nodes as if it were valid.
 */
function payloadOf(rd: RuntimeData): ArrayBufferView {
  const kind = (rd as { kind: unknown } | null)?.kind;
  switch (kind) {
    case "audio": {
      const { samples, format } = rd as AudioData;
      const want = format === "i16" ? Int16Array : Float32Array;
      if (!(samples instanceof want)) {
        throw badPayload(kind, "samples", want.name, samples);
      }
      return samples;
    }
    case "video":
    case "binary": {
      const { data } = rd as VideoData | BinaryData;
      if (!(data instanceof Uint8Array)) {
        throw badPayload(kind, "data", "Uint8Array", data);
      }
      return data;
    }
    case "tensor": {
      const { data, dtype } = rd as TensorData;
      const want = DTYPE_CTORS[dtype];
      if (want === undefined) {
        throw new TypeError(
          `Cannot encode a message of kind tensor: dtype ${
            JSON.stringify(dtype)
          } is not one of ${Object.keys(DTYPE_CTORS).join(", ")}`,
        );
      }
      if (!(data instanceof want)) {
        throw badPayload(`tensor (${dtype})`, "data", want.name, data);
      }
      return data;
    }
    case "text":
    case "json": {
      const { bytes } = rd as TextData | JsonData;
      if (!(bytes instanceof Uint8Array)) {
        throw badPayload(
          kind,
          "bytes",
          `Uint8Array (build it with ${kind}())`,
          bytes,
        );
      }
      return bytes;
    }
    default:
      throw new TypeError(
        `Cannot encode a message of kind ${
          JSON.stringify(kind)
        }: the kind must be one of ${KINDS.filter(Boolean).join(", ")}`,
      );
  }
}

function badPayload(
  kind: string,
  field: string,
  want: string,
  got: unknown,
): TypeError {
  const found = got === null
    ? "null"
    : typeof got === "object"
    ? (got as object).constructor?.name ?? "an object"
    : typeof got;
  return new TypeError(
    `Cannot encode a message of kind ${kind}: ${field} must be ${want}, not ${found}`,
  );
}

/**
 * The number of bytes {@linkcode encode} produces for `rd`: the header plus the payload.
 *
 * @param rd The message.
 * @returns `128 + payload length`.
 *
 * @example Size a loan
 * ```ts
 * import { binary, encodedSize } from "@remotemedia/multiprocess/runtime-data";
 * console.log(encodedSize(binary(new Uint8Array(10)))); // 138
 * ```
 */
export function encodedSize(rd: RuntimeData): number {
  return HEADER_LENGTH + payloadBytes(rd).byteLength;
}

/**
 * Writes a 128-byte header into `target[0..128)`, so that a producer can then
 * fill the payload in place (see {@linkcode payloadView}). Every header byte is
 * written, unused ones as zero; bytes past 128 are left alone. The metadata is
 * checked against `payloadLength` first, so a header written here always
 * decodes.
 *
 * @param target At least 128 bytes (typically a loan of `128 + payloadLength` bytes).
 * @param header The metadata, the payload length and the common fields
 * (missing common fields are written as zero).
 * @throws {RangeError} When `target` is shorter than 128 bytes or the header is invalid.
 *
 * @example Render a frame directly into the message buffer
 * ```ts
 * import { decode, HEADER_LENGTH, payloadView, writeHeader } from "@remotemedia/multiprocess/runtime-data";
 * const payloadLength = 2 * 2 * 4;
 * const loan = new Uint8Array(HEADER_LENGTH + payloadLength); // a shared-memory loan in practice
 * writeHeader(loan, { kind: "video", width: 2, height: 2, pixelFormat: "rgba32", frameNumber: 1n, fps: [30, 1], payloadLength });
 * payloadView(loan).fill(255); // draw in place: no copy
 * console.log(decode(loan).kind); // "video"
 * ```
 */
export function writeHeader(
  target: Uint8Array,
  header: RuntimeDataHeaderInit,
): void {
  if (target.byteLength < HEADER_LENGTH) {
    throw new RangeError(
      `target has ${target.byteLength} bytes, the header needs ${HEADER_LENGTH}`,
    );
  }
  const payloadLength = header.payloadLength;
  if (!Number.isSafeInteger(payloadLength) || payloadLength < 0) {
    throw new RangeError(
      `payload length ${payloadLength} is not a valid length`,
    );
  }
  const problem = checkMetadata(header, payloadLength);
  if (problem !== undefined) throw new RangeError(problem);
  const sequence = header.sequence ?? 0n;
  const timestampNs = header.timestampNs ?? 0n;
  checkU64("sequence", sequence);
  checkU64("timestampNs", timestampNs);
  if (header.sessionId !== undefined) checkSessionId(header.sessionId);

  const v = new DataView(target.buffer, target.byteOffset, HEADER_LENGTH);
  target.fill(0, 0, HEADER_LENGTH);
  v.setUint32(0, MAGIC, true);
  v.setUint16(4, WIRE_VERSION, true);
  v.setUint8(6, TYPE_CODES[header.kind]);
  v.setUint32(8, HEADER_LENGTH, true);
  v.setBigUint64(16, BigInt(payloadLength), true);
  v.setBigUint64(24, sequence, true);
  if (header.sessionId !== undefined) target.set(header.sessionId, 32);
  v.setBigUint64(48, timestampNs, true);
  switch (header.kind) {
    case "audio":
      v.setUint32(56, header.sampleRate, true);
      v.setUint16(60, header.channels, true);
      v.setUint8(62, AUDIO_FORMAT_CODES[header.format]);
      break;
    case "video":
      v.setUint32(56, header.width, true);
      v.setUint32(60, header.height, true);
      v.setUint8(64, PIXEL_FORMAT_CODES[header.pixelFormat]);
      v.setBigUint64(72, header.frameNumber, true);
      v.setUint32(80, header.fps[0], true);
      v.setUint32(84, header.fps[1], true);
      break;
    case "text":
      if (header.language !== undefined) {
        for (let i = 0; i < header.language.length; i++) {
          target[LANGUAGE_OFFSET + i] = header.language.charCodeAt(i);
        }
      }
      break;
    case "tensor":
      v.setUint8(56, DTYPE_CODES[header.dtype]);
      v.setUint8(57, header.shape.length);
      for (let i = 0; i < header.shape.length; i++) {
        v.setBigUint64(64 + 8 * i, BigInt(header.shape[i]), true);
      }
      break;
  }
}

/**
 * The payload part of an encoded message: a view of `bytes` from offset 128
 * (no copy). With {@linkcode writeHeader}, lets a producer fill a loan in
 * place; wrap it in another typed array to write samples or elements.
 *
 * @param bytes A message buffer of at least 128 bytes.
 * @returns `bytes.subarray(128)`.
 * @throws {RangeError} When `bytes` is shorter than 128 bytes.
 *
 * @example Write float samples in place
 * ```ts
 * import { HEADER_LENGTH, payloadView, writeHeader } from "@remotemedia/multiprocess/runtime-data";
 * const loan = new Uint8Array(HEADER_LENGTH + 4 * 4);
 * writeHeader(loan, { kind: "audio", sampleRate: 16000, channels: 1, format: "f32", payloadLength: 16 });
 * const p = payloadView(loan);
 * new Float32Array(p.buffer, p.byteOffset, 4).set([0, 0.25, 0.5, 0.75]);
 * ```
 */
export function payloadView(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength < HEADER_LENGTH) {
    throw new RangeError(
      `buffer has ${bytes.byteLength} bytes, fewer than the ${HEADER_LENGTH}-byte header`,
    );
  }
  return bytes.subarray(HEADER_LENGTH);
}

/**
 * Encodes `rd` into `target`: writes the header, then copies the payload with
 * one `Uint8Array.set()`.
 *
 * @param rd The message.
 * @param target A buffer of at least {@linkcode encodedSize}`(rd)` bytes; bytes
 * past that are left alone.
 * @returns The number of bytes written (`encodedSize(rd)`).
 * @throws {RangeError} When `target` is too small or the message is invalid.
 *
 * @example Encode into a preallocated buffer
 * ```ts
 * import { encodedSize, encodeInto, text } from "@remotemedia/multiprocess/runtime-data";
 * const rd = text("hello");
 * const buf = new Uint8Array(4096);
 * const n = encodeInto(rd, buf);
 * console.log(n === encodedSize(rd)); // true
 * ```
 */
export function encodeInto(rd: RuntimeData, target: Uint8Array): number {
  const payload = payloadBytes(rd);
  const size = HEADER_LENGTH + payload.byteLength;
  if (target.byteLength < size) {
    throw new RangeError(
      `target has ${target.byteLength} bytes, the message needs ${size}`,
    );
  }
  writeHeader(target, { ...rd, payloadLength: payload.byteLength });
  target.set(payload, HEADER_LENGTH);
  return size;
}

/**
 * Encodes `rd` into a new buffer of exactly {@linkcode encodedSize}`(rd)` bytes.
 *
 * @param rd The message.
 * @returns The encoded bytes.
 * @throws {RangeError} When the message is invalid.
 *
 * @example
 * ```ts
 * import { encode, json } from "@remotemedia/multiprocess/runtime-data";
 * const bytes = encode(json([1, 2]));
 * console.log(bytes.length); // 133
 * ```
 */
export function encode(rd: RuntimeData): Uint8Array {
  const out = new Uint8Array(encodedSize(rd));
  encodeInto(rd, out);
  return out;
}

// ---------------------------------------------------------------------------
// Decoding

function fail(
  reason: ConstructorParameters<typeof WireFormatError>[0],
  msg: string,
): never {
  throw new WireFormatError(reason, msg);
}

/**
 * Reads and validates the header of an encoded message, in the order of
 * `docs/wire-format.md`, without looking at the payload bytes. The
 * `sessionId` is a copy (it is small and often kept after the sample).
 *
 * @param bytes The whole message (header and payload).
 * @returns The header.
 * @throws {WireFormatError} With the `reason` of the first rule broken.
 *
 * @example Check a message's kind and size
 * ```ts
 * import { binary, encode, readHeader } from "@remotemedia/multiprocess/runtime-data";
 * const h = readHeader(encode(binary(new Uint8Array(5), { sequence: 3n })));
 * console.log(h.kind, h.payloadLength, h.sequence); // "binary" 5 3n
 * ```
 */
export function readHeader(bytes: Uint8Array): RuntimeDataHeader {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("bytes must be a Uint8Array");
  }
  const len = bytes.byteLength;
  if (len < HEADER_LENGTH) {
    fail(
      "too_short",
      `sample has ${len} bytes, the header needs ${HEADER_LENGTH}`,
    );
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_LENGTH);
  const magic = v.getUint32(0, true);
  if (magic !== MAGIC) {
    fail(
      "bad_magic",
      `magic is 0x${magic.toString(16).padStart(8, "0")}, expected 0x54444d52`,
    );
  }
  const version = v.getUint16(4, true);
  if (version !== WIRE_VERSION) {
    fail("bad_version", `version is ${version}, expected 1`);
  }
  const headerLen = v.getUint32(8, true);
  if (headerLen !== HEADER_LENGTH) {
    fail("bad_header_len", `header_len is ${headerLen}, expected 128`);
  }
  const payloadLen = v.getBigUint64(16, true);
  if (payloadLen !== BigInt(len - HEADER_LENGTH)) {
    fail(
      "length_mismatch",
      `header_len + payload_len = ${
        BigInt(HEADER_LENGTH) + payloadLen
      }, sample has ${len} bytes`,
    );
  }
  const payloadLength = len - HEADER_LENGTH;
  const type = v.getUint8(6);
  const kind = KINDS[type];
  if (kind === undefined) {
    fail("unknown_type", `type is ${type}, expected 1..6`);
  }

  const sequence = v.getBigUint64(24, true);
  const sessionId = bytes.slice(32, 48);
  const timestampNs = v.getBigUint64(48, true);
  let meta: RuntimeDataMetadata;
  switch (kind) {
    case "audio": {
      const code = v.getUint8(62);
      const format = AUDIO_FORMATS[code];
      if (format === undefined) {
        fail("bad_metadata", `unknown sample format ${code}`);
      }
      meta = {
        kind,
        sampleRate: v.getUint32(56, true),
        channels: v.getUint16(60, true),
        format,
      };
      break;
    }
    case "video": {
      const code = v.getUint8(64);
      const pixelFormat = PIXEL_FORMATS[code];
      if (pixelFormat === undefined) {
        fail("bad_metadata", `unknown pixel format ${code}`);
      }
      meta = {
        kind,
        width: v.getUint32(56, true),
        height: v.getUint32(60, true),
        pixelFormat,
        frameNumber: v.getBigUint64(72, true),
        fps: [v.getUint32(80, true), v.getUint32(84, true)],
      };
      break;
    }
    case "text": {
      let end = LANGUAGE_OFFSET;
      while (end < LANGUAGE_OFFSET + LANGUAGE_MAX && bytes[end] !== 0) {
        if (bytes[end] > 0x7f) {
          fail("bad_metadata", "language tag is not ASCII");
        }
        end++;
      }
      let language: string | undefined;
      if (end > LANGUAGE_OFFSET) {
        language = String.fromCharCode(...bytes.subarray(LANGUAGE_OFFSET, end));
      }
      meta = { kind, language };
      break;
    }
    case "tensor": {
      const code = v.getUint8(56);
      const dtype = DTYPES[code];
      if (dtype === undefined) fail("bad_metadata", `unknown dtype ${code}`);
      const ndim = v.getUint8(57);
      if (ndim > MAX_NDIM) {
        fail("bad_metadata", `ndim ${ndim} is more than ${MAX_NDIM}`);
      }
      const shape: number[] = [];
      let count = 1n;
      for (let i = 0; i < ndim; i++) {
        const d = v.getBigUint64(64 + 8 * i, true);
        count *= d;
        shape.push(Number(d));
      }
      // Exact product: an overflow of u64 cannot match any real payload length.
      const want = count * BigInt(DTYPE_CTORS[dtype].BYTES_PER_ELEMENT);
      if (want !== BigInt(payloadLength)) {
        fail(
          "bad_metadata",
          `${dtype} shape [${shape}] needs ${want} bytes, payload has ${payloadLength}`,
        );
      }
      if (shape.some((d) => !Number.isSafeInteger(d))) {
        // Only possible with a zero dimension next to a huge one.
        fail("bad_metadata", "shape entry above 2^53-1 is not representable");
      }
      meta = { kind, dtype, shape };
      break;
    }
    default:
      meta = { kind };
  }
  const problem = checkMetadata(meta, payloadLength);
  if (problem !== undefined) fail("bad_metadata", problem);
  return { ...meta, sequence, sessionId, timestampNs, payloadLength };
}

/** A typed array over the payload: a view when aligned, else an aligned copy. */
function payloadArray<T>(
  bytes: Uint8Array,
  ctor: TypedArrayCtor<T>,
  byteLength: number,
): T {
  const size = ctor.BYTES_PER_ELEMENT;
  const offset = bytes.byteOffset + HEADER_LENGTH;
  if (offset % size === 0) {
    return new ctor(bytes.buffer, offset, byteLength / size);
  }
  // Unaligned input (only a test buffer or a hand-made subarray can be): copy.
  const copy = bytes.slice(HEADER_LENGTH);
  return new ctor(copy.buffer, 0, byteLength / size);
}

/**
 * Decodes a message. The payload is not copied: audio samples, video data,
 * text and JSON bytes, tensor elements and binary data are views over
 * `bytes.buffer` starting at `bytes.byteOffset + 128`. Only when that offset is
 * not a multiple of the element size (never the case for samples, whose
 * payload is 64-byte aligned) is the payload copied into an aligned buffer.
 * Text is decoded to a string and JSON is parsed once, here.
 *
 * Any input gives a {@linkcode RuntimeData} or a {@linkcode WireFormatError};
 * nothing outside `bytes` is read.
 *
 * @param bytes The whole message (header and payload).
 * @returns The message, with views over `bytes`.
 * @throws {WireFormatError} With the `reason` of the first rule broken;
 * invalid UTF-8 text or JSON is `bad_metadata`.
 *
 * @example
 * ```ts
 * import { decode, encode, tensor } from "@remotemedia/multiprocess/runtime-data";
 * const bytes = encode(tensor(new Int32Array([1, 2, 3, 4]), { shape: [2, 2] }));
 * const rd = decode(bytes);
 * if (rd.kind === "tensor") console.log(rd.shape, rd.data.buffer === bytes.buffer); // [2, 2] true
 * ```
 */
export function decode(bytes: Uint8Array): RuntimeData {
  const h = readHeader(bytes);
  const base: RuntimeDataCommon = {
    sequence: h.sequence,
    sessionId: h.sessionId,
    timestampNs: h.timestampNs,
  };
  const n = h.payloadLength;
  switch (h.kind) {
    case "audio":
      return {
        kind: "audio",
        ...base,
        sampleRate: h.sampleRate,
        channels: h.channels,
        format: h.format,
        samples: h.format === "f32"
          ? payloadArray(bytes, Float32Array, n)
          : payloadArray(bytes, Int16Array, n),
      };
    case "video":
      return {
        kind: "video",
        ...base,
        width: h.width,
        height: h.height,
        pixelFormat: h.pixelFormat,
        frameNumber: h.frameNumber,
        fps: h.fps,
        data: bytes.subarray(HEADER_LENGTH),
      };
    case "text": {
      const payload = bytes.subarray(HEADER_LENGTH);
      let s: string;
      try {
        s = UTF8_FATAL.decode(payload);
      } catch (e) {
        throw new WireFormatError("bad_metadata", "text is not valid UTF-8", {
          cause: e,
        });
      }
      return {
        kind: "text",
        ...base,
        language: h.language,
        text: s,
        bytes: payload,
      };
    }
    case "tensor":
      return {
        kind: "tensor",
        ...base,
        dtype: h.dtype,
        shape: h.shape,
        data: payloadArray<TensorArray>(bytes, DTYPE_CTORS[h.dtype], n),
      };
    case "json": {
      const payload = bytes.subarray(HEADER_LENGTH);
      let value: unknown;
      try {
        value = JSON.parse(UTF8_FATAL.decode(payload));
      } catch (e) {
        throw new WireFormatError("bad_metadata", "payload is not UTF-8 JSON", {
          cause: e,
        });
      }
      return { kind: "json", ...base, value, bytes: payload };
    }
    case "binary":
      return { kind: "binary", ...base, data: bytes.subarray(HEADER_LENGTH) };
  }
}
