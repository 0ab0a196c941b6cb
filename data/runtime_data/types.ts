/**
 * The RuntimeData types (messages, their metadata, headers and builder
 * options) and the wire constants {@linkcode HEADER_LENGTH} and
 * {@linkcode WIRE_VERSION}.
 *
 * @module
 */
import {
  WIRE_HEADER_LEN,
  WIRE_VERSION as CONTRACT_WIRE_VERSION,
} from "../../protocol/contracts.ts";

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
