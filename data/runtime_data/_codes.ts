/**
 * Private code tables of the wire format: magic, limits, type, format and
 * dtype codes, typed-array constructors and the UTF-8 codecs.
 *
 * @module
 */
import {
  WIRE_LANGUAGE_MAX,
  WIRE_MAGIC,
  WIRE_MAX_NDIM,
  WIRE_OFFSETS,
} from "../../protocol/contracts.ts";
import type {
  AudioFormat,
  PixelFormat,
  TensorArrayMap,
  TensorDtype,
} from "./types.ts";

export const MAGIC: number = WIRE_MAGIC; // "RMDT" read as a little-endian u32
export const U64_MAX: bigint = 0xffff_ffff_ffff_ffffn;
export const MAX_NDIM: number = WIRE_MAX_NDIM;
export const LANGUAGE_OFFSET: number = WIRE_OFFSETS.text_language;
export const LANGUAGE_MAX: number = WIRE_LANGUAGE_MAX;
// ---------------------------------------------------------------------------
// Code tables

export const TYPE_CODES = {
  audio: 1,
  video: 2,
  text: 3,
  tensor: 4,
  json: 5,
  binary: 6,
} as const;
export const KINDS = [
  undefined,
  "audio",
  "video",
  "text",
  "tensor",
  "json",
  "binary",
] as const;

export const AUDIO_FORMAT_CODES: Record<AudioFormat, number> = {
  f32: 1,
  i16: 2,
};
export const AUDIO_FORMATS: (AudioFormat | undefined)[] = [
  undefined,
  "f32",
  "i16",
];

export const PIXEL_FORMAT_CODES: Record<PixelFormat, number> = {
  rgb24: 1,
  bgr24: 2,
  rgba32: 3,
  gray8: 4,
  yuv420p: 5,
  nv12: 6,
};
export const PIXEL_FORMATS: (PixelFormat | undefined)[] = [
  undefined,
  "rgb24",
  "bgr24",
  "rgba32",
  "gray8",
  "yuv420p",
  "nv12",
];

export const DTYPE_CODES: Record<TensorDtype, number> = {
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
export const DTYPES: (TensorDtype | undefined)[] = [
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

export type TypedArrayCtor<T> = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
};

export const DTYPE_CTORS: {
  [D in TensorDtype]: TypedArrayCtor<TensorArrayMap[D]>;
} = {
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

export const UTF8_FATAL: TextDecoder = new TextDecoder("utf-8", {
  fatal: true,
  ignoreBOM: true,
});
export const UTF8_ENCODER: TextEncoder = new TextEncoder();
export const ZERO_SESSION: Uint8Array = new Uint8Array(16);
