/**
 * Encoding of RuntimeData: {@linkcode encode}, {@linkcode encodeInto},
 * {@linkcode encodedSize}, {@linkcode payloadBytes}, and the in-place pair
 * {@linkcode writeHeader} / {@linkcode payloadView}.
 *
 * @module
 */
import { checkMetadata, checkSessionId, checkU64 } from "./_checks.ts";
import {
  AUDIO_FORMAT_CODES,
  DTYPE_CODES,
  DTYPE_CTORS,
  KINDS,
  LANGUAGE_OFFSET,
  MAGIC,
  PIXEL_FORMAT_CODES,
  TYPE_CODES,
} from "./_codes.ts";
import {
  type AudioData,
  type BinaryData,
  HEADER_LENGTH,
  type JsonData,
  type RuntimeData,
  type RuntimeDataHeaderInit,
  type TensorData,
  type TextData,
  type VideoData,
  WIRE_VERSION,
} from "./types.ts";

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
      `Target has ${target.byteLength} bytes, the header needs ${HEADER_LENGTH}`,
    );
  }
  const payloadLength = header.payloadLength;
  if (!Number.isSafeInteger(payloadLength) || payloadLength < 0) {
    throw new RangeError(
      `Payload length ${payloadLength} is not a valid length`,
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
      `Buffer has ${bytes.byteLength} bytes, fewer than the ${HEADER_LENGTH}-byte header`,
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
      `Target has ${target.byteLength} bytes, the message needs ${size}`,
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
