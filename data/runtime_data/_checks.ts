/**
 * Private metadata validation shared by the writer and the reader: each
 * check returns a message, or undefined when consistent (the writer turns it
 * into a RangeError, the reader into `bad_metadata`); plus the checks of the
 * common fields.
 *
 * @module
 */
import {
  AUDIO_FORMAT_CODES,
  DTYPE_CODES,
  DTYPE_CTORS,
  LANGUAGE_MAX,
  MAX_NDIM,
  PIXEL_FORMAT_CODES,
  U64_MAX,
} from "./_codes.ts";
import type { PixelFormat, RuntimeDataMetadata } from "./types.ts";

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

export function checkMetadata(
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

export function checkU64(name: string, v: bigint): void {
  if (typeof v !== "bigint") throw new TypeError(`${name} must be a bigint`);
  if (v < 0n || v > U64_MAX) {
    throw new RangeError(`${name} ${v} is not in 0..2^64-1`);
  }
}

export function checkSessionId(id: Uint8Array): void {
  if (!(id instanceof Uint8Array) || id.byteLength !== 16) {
    throw new RangeError(
      "Invalid sessionId: it must be a Uint8Array of 16 bytes",
    );
  }
}
