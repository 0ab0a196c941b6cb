/**
 * A small PNG decoder (8-bit gray, gray+alpha, RGB and RGBA, not interlaced):
 * enough to read the sample images a Python package ships, with no
 * dependency. The output is always RGB, 3 bytes per pixel.
 *
 * @module
 */

/** A decoded image: `rgb` holds `width * height * 3` bytes, row by row. */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** The pixels, RGB, top row first. */
  rgb: Uint8Array;
}

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Decodes a PNG file's bytes.
 *
 * @param bytes The file.
 * @returns The image as RGB.
 * @throws {Error} for a file that is not a PNG this decoder reads.
 *
 * @example
 * ```ts ignore
 * import { decodePng } from "./png.ts";
 * const img = await decodePng(await Deno.readFile("astronaut.png"));
 * console.log(img.width, img.height); // 512 512
 * ```
 */
export async function decodePng(bytes: Uint8Array): Promise<RgbImage> {
  if (!SIGNATURE.every((b, i) => bytes[i] === b)) {
    throw new Error("Cannot decode the image: it is not a PNG file");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0, height = 0, bitDepth = 0, colorType = -1, interlace = 0;
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 8 <= bytes.length;) {
    const len = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const body = bytes.subarray(at + 8, at + 8 + len);
    if (type === "IHDR") {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      bitDepth = body[8];
      colorType = body[9];
      interlace = body[12];
    } else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") break;
    at += 12 + len;
  }
  const channels = CHANNELS[colorType];
  if (bitDepth !== 8 || channels === undefined || interlace !== 0) {
    throw new Error(
      `Cannot decode the image: only 8-bit, non-interlaced gray/RGB(A) PNGs are supported (bit depth ${bitDepth}, color type ${colorType}, interlace ${interlace})`,
    );
  }
  const joined = new Uint8Array(idat.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of idat) {
    joined.set(c, o);
    o += c.length;
  }
  const raw = await inflate(joined);
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) {
    throw new Error("Cannot decode the image: its pixel data is truncated");
  }
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[row + x - channels] : 0;
      const b = y > 0 ? pixels[row - stride + x] : 0;
      const c = x >= channels && y > 0
        ? pixels[row - stride + x - channels]
        : 0;
      let v = src[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) v += paeth(a, b, c);
      else if (filter !== 0) {
        throw new Error(`Cannot decode the image: bad filter ${filter}`);
      }
      pixels[row + x] = v & 0xff;
    }
  }
  if (channels === 3) return { width, height, rgb: pixels };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const gray = channels <= 2;
    const s = i * channels;
    rgb[i * 3] = pixels[s];
    rgb[i * 3 + 1] = pixels[gray ? s : s + 1];
    rgb[i * 3 + 2] = pixels[gray ? s : s + 2];
  }
  return { width, height, rgb };
}
