/**
 * Private code tables of the wire format: magic, limits, type, format and
 * dtype codes, typed-array constructors and the UTF-8 codecs.
 *
 * @module
 */
import {
  WIRE_AUDIO_FORMATS,
  WIRE_DTYPES,
  WIRE_LANGUAGE_MAX,
  WIRE_MAGIC,
  WIRE_MAX_NDIM,
  WIRE_OFFSETS,
  WIRE_PIXEL_FORMATS,
  WIRE_TYPES,
} from "../../protocol/contracts.ts";
import type {
  AudioFormat,
  PixelFormat,
  RuntimeData,
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

export type Kind = RuntimeData["kind"];

/** The names of a code table, indexed by code (`undefined` where none). */
function byCode<T extends string>(
  table: Readonly<Record<string, number>>,
): (T | undefined)[] {
  const names: (T | undefined)[] = [];
  for (const [name, code] of Object.entries(table)) names[code] = name as T;
  return Array.from(names, (n) => n);
}

export const TYPE_CODES: Readonly<Record<Kind, number>> = WIRE_TYPES;
export const KINDS: readonly (Kind | undefined)[] = byCode<Kind>(WIRE_TYPES);

export const AUDIO_FORMAT_CODES: Readonly<Record<AudioFormat, number>> =
  WIRE_AUDIO_FORMATS;
export const AUDIO_FORMATS: (AudioFormat | undefined)[] = byCode<AudioFormat>(
  WIRE_AUDIO_FORMATS,
);

export const PIXEL_FORMAT_CODES: Readonly<Record<PixelFormat, number>> =
  WIRE_PIXEL_FORMATS;
export const PIXEL_FORMATS: (PixelFormat | undefined)[] = byCode<PixelFormat>(
  WIRE_PIXEL_FORMATS,
);

export const DTYPE_CODES: Readonly<Record<TensorDtype, number>> = WIRE_DTYPES;
export const DTYPES: (TensorDtype | undefined)[] = byCode<TensorDtype>(
  WIRE_DTYPES,
);

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
