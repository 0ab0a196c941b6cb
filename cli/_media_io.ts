/**
 * The CLI's file readers and writers: WAV (PCM 8/16/24/32-bit and IEEE float
 * 32/64, any channel count, resampled linearly to a target rate), raw PCM
 * (s16le), text (one message per line), JSON lines, `.npy` (little-endian
 * numeric dtypes, C order) and folders of images (binary PPM/PGM become
 * video frames; other image files are sent as binary messages).
 *
 * @module
 */
import {
  audio,
  binary,
  json,
  type RuntimeData,
  tensor,
  type TensorArray,
  type TensorDtype,
  text,
  video,
} from "../data/runtime_data/mod.ts";
import { CliError } from "./_errors.ts";
import { WIRE_DTYPE_ITEMSIZE } from "../protocol/contracts.ts";
import { DTYPE_CTORS } from "../data/runtime_data/_codes.ts";

/** A decoded WAV file: interleaved float samples. */
export interface WavAudio {
  /** Samples per second per channel. */
  sampleRate: number;
  /** Interleaved channels. */
  channels: number;
  /** Interleaved samples in [-1, 1]. */
  samples: Float32Array;
}

/**
 * Decodes a RIFF/WAVE file (PCM 8, 16, 24, 32 bit; float 32, 64 bit).
 *
 * @param bytes The file.
 * @param path The file name, for errors.
 * @returns The samples as float.
 * @throws {CliError} when the file is not a WAV file this reader supports.
 *
 * @example
 * ```ts ignore
 * const wav = decodeWav(await Deno.readFile("a.wav"), "a.wav");
 * ```
 */
export function decodeWav(bytes: Uint8Array, path: string): WavAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) =>
    String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") {
    throw new CliError(
      `Cannot read "${path}": it is not a RIFF/WAVE file; give a .wav file, or raw s16le PCM as .pcm`,
    );
  }
  let format = 0, channels = 0, rate = 0, bits = 0;
  let data: Uint8Array | undefined;
  for (let at = 12; at + 8 <= bytes.length;) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === "fmt ") {
      format = view.getUint16(body, true);
      channels = view.getUint16(body + 2, true);
      rate = view.getUint32(body + 4, true);
      bits = view.getUint16(body + 14, true);
      if (format === 0xfffe && size >= 26) {
        format = view.getUint16(body + 24, true); // WAVE_FORMAT_EXTENSIBLE
      }
    } else if (id === "data") {
      data = bytes.subarray(body, Math.min(bytes.length, body + size));
    }
    at = body + size + (size & 1);
  }
  const supported = (format === 1 && [8, 16, 24, 32].includes(bits)) ||
    (format === 3 && (bits === 32 || bits === 64));
  if (!data || !supported || channels < 1 || rate < 1) {
    throw new CliError(
      `Cannot read "${path}": only PCM (8, 16, 24, 32 bit) and float (32, 64 bit) WAV files are supported (this one has format ${format}, ${bits} bit); convert it with e.g. \`ffmpeg -i in -c:a pcm_s16le out.wav\``,
    );
  }
  const width = bits / 8;
  const n = Math.floor(data.length / width);
  const out = new Float32Array(n);
  const d = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < n; i++) {
    const o = i * width;
    if (format === 3) {
      out[i] = bits === 32 ? d.getFloat32(o, true) : d.getFloat64(o, true);
    } else if (bits === 8) out[i] = (d.getUint8(o) - 128) / 128;
    else if (bits === 16) out[i] = d.getInt16(o, true) / 32768;
    else if (bits === 24) {
      const v = d.getUint8(o) | (d.getUint8(o + 1) << 8) |
        (d.getInt8(o + 2) << 16);
      out[i] = v / 8388608;
    } else out[i] = d.getInt32(o, true) / 2147483648;
  }
  return { sampleRate: rate, channels, samples: out };
}

/**
 * Encodes interleaved float samples as a 16-bit PCM WAV file.
 *
 * @param samples Interleaved samples in [-1, 1] (clipped).
 * @param sampleRate Samples per second per channel.
 * @param channels Interleaved channels.
 * @returns The file bytes.
 *
 * @example
 * ```ts ignore
 * await Deno.writeFile("out.wav", encodeWav(new Float32Array(160), 16000, 1));
 * ```
 */
export function encodeWav(
  samples: Float32Array,
  sampleRate: number,
  channels: number,
): Uint8Array {
  const bytes = new Uint8Array(44 + samples.length * 2);
  const v = new DataView(bytes.buffer);
  const put = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) bytes[at + i] = s.charCodeAt(i);
  };
  put(0, "RIFF");
  v.setUint32(4, 36 + samples.length * 2, true);
  put(8, "WAVE");
  put(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * channels * 2, true);
  v.setUint16(32, channels * 2, true);
  v.setUint16(34, 16, true);
  put(36, "data");
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, Math.round(s * 32767), true);
  }
  return bytes;
}

/**
 * Resamples interleaved audio by linear interpolation.
 *
 * @param samples Interleaved samples.
 * @param channels Interleaved channels.
 * @param from The source rate.
 * @param to The target rate.
 * @returns The resampled interleaved samples (the input when the rates match).
 *
 * @example
 * ```ts ignore
 * const at16k = resample(samples, 1, 48000, 16000);
 * ```
 */
export function resample(
  samples: Float32Array,
  channels: number,
  from: number,
  to: number,
): Float32Array {
  if (from === to) return samples;
  const frames = Math.floor(samples.length / channels);
  const outFrames = Math.max(1, Math.round(frames * to / from));
  const out = new Float32Array(outFrames * channels);
  const step = from / to;
  for (let i = 0; i < outFrames; i++) {
    const x = i * step;
    const i0 = Math.min(frames - 1, Math.floor(x));
    const i1 = Math.min(frames - 1, i0 + 1);
    const t = x - i0;
    for (let c = 0; c < channels; c++) {
      out[i * channels + c] = samples[i0 * channels + c] * (1 - t) +
        samples[i1 * channels + c] * t;
    }
  }
  return out;
}

const NPY_DTYPES: Record<string, TensorDtype> = {
  "<f4": "float32",
  "<f8": "float64",
  "|i1": "int8",
  "<i2": "int16",
  "<i4": "int32",
  "<i8": "int64",
  "|u1": "uint8",
  "<u2": "uint16",
  "<u4": "uint32",
  "<u8": "uint64",
  "<f2": "float16",
  "|b1": "bool",
};
const NPY_DESCR = Object.fromEntries(
  Object.entries(NPY_DTYPES).map(([k, v]) => [v, k]),
) as Record<TensorDtype, string>;

/**
 * Decodes a `.npy` file (format 1.0 to 3.0, little-endian, C order).
 *
 * @param bytes The file.
 * @param path The file name, for errors.
 * @returns A tensor message.
 * @throws {CliError} for another layout.
 *
 * @example
 * ```ts ignore
 * const t = decodeNpy(await Deno.readFile("x.npy"), "x.npy");
 * ```
 */
export function decodeNpy(bytes: Uint8Array, path: string): RuntimeData {
  const bad = (why: string): never => {
    throw new CliError(
      `Cannot read "${path}": ${why}; save it with numpy.save() as a little-endian, C-ordered numeric array`,
    );
  };
  if (bytes.length < 10 || bytes[0] !== 0x93 || bytes[1] !== 0x4e) {
    bad("it is not a .npy file");
  }
  const major = bytes[6];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1
    ? v.getUint16(8, true)
    : v.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(
    bytes.subarray(start, start + headerLength),
  );
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? "";
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? "";
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean)
    .map(Number);
  const dtype = NPY_DTYPES[descr] ?? NPY_DTYPES[descr.replace("=", "<")];
  if (!dtype) bad(`its dtype ${descr || "?"} is not supported`);
  if (fortran) bad("it is in Fortran order");
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLength;
  const width = WIRE_DTYPE_ITEMSIZE[dtype];
  if (bytes.length - dataStart < count * width) bad("it is truncated");
  // Copy into an aligned buffer of its own.
  const raw = bytes.slice(dataStart, dataStart + count * width);
  const ctor = DTYPE_CTORS[dtype];
  const data = new ctor(raw.buffer, 0, count) as TensorArray;
  return tensor(data, { dtype, shape });
}

/**
 * Encodes an array as a `.npy` file (format 1.0).
 *
 * @param dtype The element type.
 * @param shape The dimensions.
 * @param data The elements' bytes, C order.
 * @returns The file bytes.
 *
 * @example
 * ```ts ignore
 * await Deno.writeFile("x.npy", encodeNpy("float32", [2], new Uint8Array(8)));
 * ```
 */
export function encodeNpy(
  dtype: TensorDtype,
  shape: number[],
  data: Uint8Array,
): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '${
    NPY_DESCR[dtype]
  }', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = 10 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + head.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, head.length, true);
  out.set(head, 10);
  out.set(data, 10 + head.length);
  return out;
}

/** How an input file becomes messages. */
export interface InputReadOptions {
  /** The rate audio should be sent at; the file's own rate when undefined. */
  sampleRate?: number;
  /**
   * Milliseconds of audio per message.
   * @default {20}
   */
  chunkMs?: number;
}

/** The messages of one input file, and how long each lasts (for `--realtime`). */
export interface InputMessages {
  /** What the file is read as (`wav`, `pcm`, `text`, `jsonl`, `npy`, `images`, `binary`). */
  format: string;
  /** The messages, in order. */
  messages: RuntimeData[];
  /** The play-out duration of each message in ms (audio only; 0 otherwise). */
  durationMs: number[];
}

/**
 * Reads an input file (or folder of images) as messages, by extension:
 * `.wav`, `.pcm`/`.raw` (s16le mono at the target rate, 16000 by default),
 * `.txt` (a text message per non-empty line), `.jsonl`/`.ndjson` (a JSON
 * message per line), `.json` (one JSON message), `.npy` (one tensor), a
 * folder (its files sorted by name: `.ppm`/`.pgm` as video, others binary);
 * anything else is one binary message.
 *
 * @param path The file or folder.
 * @param options Target rate and chunk length for audio.
 * @returns The messages.
 * @throws {CliError} for a file that is missing or cannot be read.
 *
 * @example
 * ```ts ignore
 * const { messages } = await readInput("speech.wav", { sampleRate: 16000 });
 * ```
 */
export async function readInput(
  path: string,
  options: InputReadOptions = {},
): Promise<InputMessages> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new CliError(
      `Cannot read the input file "${path}": it does not exist; check the path given to --input`,
    );
  }
  if (info.isDirectory) return await readImageFolder(path);
  const bytes = await Deno.readFile(path);
  const ext = path.toLowerCase().split(".").pop() ?? "";
  const chunkMs = options.chunkMs ?? 20;
  if (ext === "wav" || ext === "pcm" || ext === "raw") {
    const wav = ext === "wav" ? decodeWav(bytes, path) : {
      sampleRate: options.sampleRate ?? 16000,
      channels: 1,
      samples: Float32Array.from(
        new Int16Array(bytes.slice(0, bytes.length & ~1).buffer),
        (s) => s / 32768,
      ),
    };
    const rate = options.sampleRate ?? wav.sampleRate;
    const samples = resample(wav.samples, wav.channels, wav.sampleRate, rate);
    const frame = Math.max(1, Math.round(rate * chunkMs / 1000)) *
      wav.channels;
    const messages: RuntimeData[] = [];
    const durationMs: number[] = [];
    for (let at = 0, seq = 0n; at < samples.length; at += frame, seq++) {
      const chunk = samples.slice(at, at + frame);
      messages.push(
        audio(chunk, {
          sampleRate: rate,
          channels: wav.channels,
          sequence: seq,
        }),
      );
      durationMs.push(chunk.length / wav.channels / rate * 1000);
    }
    return { format: ext === "wav" ? "wav" : "pcm", messages, durationMs };
  }
  if (ext === "npy") {
    return {
      format: "npy",
      messages: [decodeNpy(bytes, path)],
      durationMs: [0],
    };
  }
  const content = () => new TextDecoder().decode(bytes);
  if (ext === "txt") {
    const lines = content().split("\n").map((l) => l.replace(/\r$/, ""))
      .filter((l) => l.length > 0);
    return {
      format: "text",
      messages: lines.map((l, i) => text(l, { sequence: BigInt(i) })),
      durationMs: lines.map(() => 0),
    };
  }
  if (ext === "jsonl" || ext === "ndjson" || ext === "json") {
    const lines = ext === "json"
      ? [content()]
      : content().split("\n").filter((l) => l.trim());
    const messages = lines.map((l, i) => {
      try {
        return json(JSON.parse(l), { sequence: BigInt(i) });
      } catch (e) {
        throw new CliError(
          `Cannot read "${path}" line ${i + 1}: it is not JSON (${
            (e as Error).message
          }); give one JSON value per line`,
        );
      }
    });
    return { format: "jsonl", messages, durationMs: messages.map(() => 0) };
  }
  return { format: "binary", messages: [binary(bytes)], durationMs: [0] };
}

async function readImageFolder(path: string): Promise<InputMessages> {
  const names: string[] = [];
  for await (const e of Deno.readDir(path)) if (e.isFile) names.push(e.name);
  names.sort();
  const messages: RuntimeData[] = [];
  for (const [i, name] of names.entries()) {
    const bytes = await Deno.readFile(`${path}/${name}`);
    messages.push(
      decodePnm(bytes, BigInt(i)) ?? binary(bytes, { sequence: BigInt(i) }),
    );
  }
  if (!messages.length) {
    throw new CliError(
      `The input folder "${path}" has no files; put the images to send in it`,
    );
  }
  return { format: "images", messages, durationMs: messages.map(() => 0) };
}

/** A binary PPM (P6) or PGM (P5) image with maxval 255 as a video frame. */
function decodePnm(bytes: Uint8Array, frame: bigint): RuntimeData | null {
  if (bytes[0] !== 0x50 || (bytes[1] !== 0x36 && bytes[1] !== 0x35)) {
    return null;
  }
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 200));
  const m = /^P([56])\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s/.exec(head);
  if (!m || m[4] !== "255") return null;
  const [width, height] = [Number(m[2]), Number(m[3])];
  const channels = m[1] === "6" ? 3 : 1;
  const start = m[0].length;
  const data = bytes.slice(start, start + width * height * channels);
  if (data.length !== width * height * channels) return null;
  return video(data, {
    width,
    height,
    pixelFormat: channels === 3 ? "rgb24" : "gray8",
    frameNumber: frame,
    sequence: frame,
  });
}

/** A summary of a message: kind and the fields that matter. */
export function describeMessage(rd: RuntimeData): string {
  switch (rd.kind) {
    case "text":
      return rd.text;
    case "json":
      return JSON.stringify(rd.value);
    case "audio":
      return `audio ${
        rd.samples.length / rd.channels
      } frames @ ${rd.sampleRate} Hz x${rd.channels}`;
    case "video":
      return `video ${rd.width}x${rd.height} ${rd.pixelFormat} #${rd.frameNumber}`;
    case "tensor":
      return `tensor ${rd.dtype}[${rd.shape.join(", ")}]`;
    case "binary":
      return `binary ${rd.data.length} bytes`;
  }
}

/**
 * Collects one pipeline output's messages and writes them to a file by
 * extension: `.wav` (audio, as 16-bit PCM), `.npy` (tensors or audio,
 * concatenated along the first axis), `.jsonl` (one JSON record per
 * message), `.txt` (a line per message). Messages are copied (their shared
 * memory is released at once).
 */
export class OutputWriter {
  /** The file. */
  readonly path: string;
  /** The output name. */
  readonly output: string;
  readonly #format: "wav" | "npy" | "jsonl" | "txt";
  #file: Deno.FsFile | undefined;
  readonly #chunks: Uint8Array[] = [];
  #rate = 0;
  #channels = 1;
  #dtype: TensorDtype | undefined;
  #rowShape: number[] = [];
  #rows = 0;
  /** Messages written. */
  count = 0;

  /**
   * @param output The pipeline output.
   * @param path The file (its extension picks the format).
   * @throws {CliError} for an extension that is not supported.
   */
  constructor(output: string, path: string) {
    this.output = output;
    this.path = path;
    const ext = path.toLowerCase().split(".").pop() ?? "";
    const format = ext === "ndjson" ? "jsonl" : ext;
    if (!["wav", "npy", "jsonl", "txt"].includes(format)) {
      throw new CliError(
        `Cannot write output "${output}" to "${path}": the extension .${ext} is not supported; use .wav, .npy, .jsonl or .txt`,
      );
    }
    this.#format = format as OutputWriter["format"];
  }

  /** The format written. */
  get format(): "wav" | "npy" | "jsonl" | "txt" {
    return this.#format;
  }

  /**
   * Adds one message (copied).
   *
   * @param rd The message.
   * @throws {CliError} when the message does not fit the format.
   */
  async add(rd: RuntimeData): Promise<void> {
    this.count++;
    if (this.#format === "jsonl" || this.#format === "txt") {
      this.#file ??= await Deno.open(this.path, {
        write: true,
        create: true,
        truncate: true,
      });
      const line = this.#format === "txt"
        ? (rd.kind === "text" ? rd.text : describeMessage(rd))
        : JSON.stringify(jsonRecord(rd));
      await this.#file.write(new TextEncoder().encode(line + "\n"));
      return;
    }
    if (this.#format === "wav") {
      if (rd.kind !== "audio") {
        throw new CliError(
          `Cannot write a ${rd.kind} message of output "${this.output}" to the WAV file "${this.path}"; write it to .jsonl or .txt instead`,
        );
      }
      this.#rate ||= rd.sampleRate;
      this.#channels = rd.channels;
      const f = rd.samples instanceof Float32Array
        ? rd.samples.slice()
        : Float32Array.from(rd.samples, (s) => s / 32768);
      this.#chunks.push(new Uint8Array(f.buffer));
      return;
    }
    // npy
    if (rd.kind !== "tensor" && rd.kind !== "audio") {
      throw new CliError(
        `Cannot write a ${rd.kind} message of output "${this.output}" to the .npy file "${this.path}"; write it to .jsonl or .txt instead`,
      );
    }
    const dtype: TensorDtype = rd.kind === "audio"
      ? (rd.format === "f32" ? "float32" : "int16")
      : rd.dtype;
    const shape = rd.kind === "audio"
      ? [rd.samples.length / rd.channels, rd.channels]
      : rd.shape;
    const data = rd.kind === "audio" ? rd.samples : rd.data;
    this.#dtype ??= dtype;
    if (this.#rows === 0) this.#rowShape = shape.slice(1);
    if (
      dtype !== this.#dtype ||
      shape.slice(1).join() !== this.#rowShape.join()
    ) {
      throw new CliError(
        `Cannot append a ${dtype}[${shape}] message of output "${this.output}" to "${this.path}", which holds ${this.#dtype}[n, ${this.#rowShape}]; write it to .jsonl instead`,
      );
    }
    this.#rows += shape.length ? shape[0] : 1;
    this.#chunks.push(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
    );
  }

  /** Writes what was collected and closes the file. */
  async close(): Promise<void> {
    if (this.#file) {
      this.#file.close();
      this.#file = undefined;
      return;
    }
    const total = this.#chunks.reduce((a, c) => a + c.length, 0);
    const all = new Uint8Array(total);
    let at = 0;
    for (const c of this.#chunks) {
      all.set(c, at);
      at += c.length;
    }
    if (this.#format === "wav") {
      await Deno.writeFile(
        this.path,
        encodeWav(
          new Float32Array(all.buffer),
          this.#rate || 16000,
          this.#channels,
        ),
      );
    } else if (this.#format === "npy") {
      await Deno.writeFile(
        this.path,
        encodeNpy(
          this.#dtype ?? "float32",
          [this.#rows, ...this.#rowShape],
          all,
        ),
      );
    } else {
      await Deno.writeTextFile(this.path, "");
    }
  }
}

/** A message as one JSON record (payload summarized for media). */
export function jsonRecord(rd: RuntimeData): Record<string, unknown> {
  const base = { kind: rd.kind, sequence: Number(rd.sequence) };
  switch (rd.kind) {
    case "text":
      return { ...base, text: rd.text };
    case "json":
      return { ...base, value: rd.value };
    case "audio":
      return {
        ...base,
        sampleRate: rd.sampleRate,
        channels: rd.channels,
        frames: rd.samples.length / rd.channels,
      };
    case "video":
      return {
        ...base,
        width: rd.width,
        height: rd.height,
        pixelFormat: rd.pixelFormat,
      };
    case "tensor":
      return { ...base, dtype: rd.dtype, shape: rd.shape };
    case "binary":
      return { ...base, bytes: rd.data.length };
  }
}
