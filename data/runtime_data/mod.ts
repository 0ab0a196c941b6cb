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
export {
  type AudioData,
  type AudioFormat,
  type AudioMetadata,
  type AudioOptions,
  type BinaryData,
  type BinaryMetadata,
  HEADER_LENGTH,
  type JsonData,
  type JsonMetadata,
  type PixelFormat,
  type RuntimeData,
  type RuntimeDataCommon,
  type RuntimeDataHeader,
  type RuntimeDataHeaderInit,
  type RuntimeDataMetadata,
  type RuntimeDataOptions,
  type TensorArray,
  type TensorArrayMap,
  type TensorData,
  type TensorDtype,
  type TensorMetadata,
  type TensorOptions,
  type TextData,
  type TextMetadata,
  type TextOptions,
  type VideoData,
  type VideoMetadata,
  type VideoOptions,
  WIRE_VERSION,
} from "./types.ts";
export { audio, binary, json, tensor, text, video } from "./build.ts";
export {
  encode,
  encodedSize,
  encodeInto,
  payloadBytes,
  payloadView,
  writeHeader,
} from "./encode.ts";
export { decode, readHeader } from "./decode.ts";
