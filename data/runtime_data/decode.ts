/**
 * Decoding of RuntimeData: {@linkcode readHeader} validates a header in the
 * order of `docs/wire-format.md`; {@linkcode decode} returns the message with
 * views over the input bytes.
 *
 * @module
 */
import { WireFormatError } from "../../errors.ts";
import { checkMetadata } from "./_checks.ts";
import {
  AUDIO_FORMATS,
  DTYPE_CTORS,
  DTYPES,
  KINDS,
  LANGUAGE_MAX,
  LANGUAGE_OFFSET,
  MAGIC,
  MAX_NDIM,
  PIXEL_FORMATS,
  type TypedArrayCtor,
  UTF8_FATAL,
} from "./_codes.ts";
import {
  type AudioMetadata,
  HEADER_LENGTH,
  type RuntimeData,
  type RuntimeDataCommon,
  type RuntimeDataHeader,
  type RuntimeDataMetadata,
  type TensorArray,
  type TensorMetadata,
  type TextMetadata,
  type VideoMetadata,
  WIRE_VERSION,
} from "./types.ts";

function fail(
  reason: ConstructorParameters<typeof WireFormatError>[0],
  msg: string,
): never {
  throw new WireFormatError(reason, `Cannot decode the message: ${msg}`);
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
  const v = checkFraming(bytes);
  const payloadLength = bytes.byteLength - HEADER_LENGTH;
  const kind = readKind(v);
  const sequence = v.getBigUint64(24, true);
  const sessionId = bytes.slice(32, 48);
  const timestampNs = v.getBigUint64(48, true);
  const meta = readMetadata(kind, v, bytes, payloadLength);
  const problem = checkMetadata(meta, payloadLength);
  if (problem !== undefined) fail("bad_metadata", problem);
  return { ...meta, sequence, sessionId, timestampNs, payloadLength };
}

/** Checks size, magic, version, header length and payload length, in that
 * order; returns a view of the header. */
function checkFraming(bytes: Uint8Array): DataView {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("Cannot decode: bytes must be a Uint8Array");
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
  return v;
}

type Kind = RuntimeDataMetadata["kind"];

/** The message kind of the type code at offset 6. */
function readKind(v: DataView): Kind {
  const type = v.getUint8(6);
  const kind = KINDS[type];
  if (kind === undefined) {
    fail("unknown_type", `type is ${type}, expected 1..6`);
  }
  return kind;
}

/** The per-kind metadata of a header whose framing is valid. */
function readMetadata(
  kind: Kind,
  v: DataView,
  bytes: Uint8Array,
  payloadLength: number,
): RuntimeDataMetadata {
  switch (kind) {
    case "audio":
      return readAudio(v);
    case "video":
      return readVideo(v);
    case "text":
      return readText(bytes);
    case "tensor":
      return readTensor(v, payloadLength);
    default:
      return { kind };
  }
}

function readAudio(v: DataView): AudioMetadata {
  const code = v.getUint8(62);
  const format = AUDIO_FORMATS[code];
  if (format === undefined) {
    fail("bad_metadata", `unknown sample format ${code}`);
  }
  return {
    kind: "audio",
    sampleRate: v.getUint32(56, true),
    channels: v.getUint16(60, true),
    format,
  };
}

function readVideo(v: DataView): VideoMetadata {
  const code = v.getUint8(64);
  const pixelFormat = PIXEL_FORMATS[code];
  if (pixelFormat === undefined) {
    fail("bad_metadata", `unknown pixel format ${code}`);
  }
  return {
    kind: "video",
    width: v.getUint32(56, true),
    height: v.getUint32(60, true),
    pixelFormat,
    frameNumber: v.getBigUint64(72, true),
    fps: [v.getUint32(80, true), v.getUint32(84, true)],
  };
}

function readText(bytes: Uint8Array): TextMetadata {
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
  return { kind: "text", language };
}

function readTensor(v: DataView, payloadLength: number): TensorMetadata {
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
  return { kind: "tensor", dtype, shape };
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
        throw new WireFormatError(
          "bad_metadata",
          "Cannot decode the message: text is not valid UTF-8",
          {
            cause: e,
          },
        );
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
        throw new WireFormatError(
          "bad_metadata",
          "Cannot decode the message: payload is not UTF-8 JSON",
          {
            cause: e,
          },
        );
      }
      return { kind: "json", ...base, value, bytes: payload };
    }
    case "binary":
      return { kind: "binary", ...base, data: bytes.subarray(HEADER_LENGTH) };
  }
}
