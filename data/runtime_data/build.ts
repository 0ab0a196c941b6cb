/**
 * Builders of RuntimeData: {@linkcode audio}, {@linkcode video},
 * {@linkcode text}, {@linkcode tensor}, {@linkcode json} and
 * {@linkcode binary}. Payloads are not copied; metadata is checked.
 *
 * @module
 */
import { checkMetadata, checkSessionId, checkU64 } from "./_checks.ts";
import { DTYPE_CTORS, UTF8_ENCODER, ZERO_SESSION } from "./_codes.ts";
import type {
  AudioData,
  AudioFormat,
  AudioOptions,
  BinaryData,
  JsonData,
  RuntimeData,
  RuntimeDataCommon,
  RuntimeDataOptions,
  TensorArray,
  TensorData,
  TensorDtype,
  TensorOptions,
  TextData,
  TextOptions,
  VideoData,
  VideoOptions,
} from "./types.ts";

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
  else {throw new TypeError(
      "Invalid samples: they must be a Float32Array or an Int16Array",
    );}
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
    throw new TypeError("Invalid data: it must be a Uint8Array");
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
  if (typeof s !== "string") {
    throw new TypeError("Invalid text: it must be a string");
  }
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
  throw new TypeError(
    "Invalid data: it must be a typed array of a tensor dtype",
  );
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
  if (ctor === undefined) throw new TypeError(`Unknown dtype ${dtype}`);
  if (!(data instanceof ctor)) {
    throw new TypeError(`Invalid data: dtype ${dtype} needs a ${ctor.name}`);
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
  if (s === undefined) {
    throw new TypeError(
      "Cannot build JSON data: the value does not serialize to JSON",
    );
  }
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
    throw new TypeError("Invalid data: it must be a Uint8Array");
  }
  return { kind: "binary", ...common(options), data };
}
