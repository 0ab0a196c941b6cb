/**
 * The moving test scene of the video pipeline: a photo that a Python package
 * ships (scikit-image's `astronaut.png`, a face; `coffee.png`, none) slides
 * left and right over a fixed background, at 1280x720 rgb24 by default. No
 * camera, no download: the images come from the `mediapipe` example
 * environment (`deno task setup --examples=mediapipe`).
 *
 * @module
 */
import { decodePng, type RgbImage } from "./png.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** What a frame shows. */
export type SceneContent = "face" | "no_face" | "empty";

/** Options of {@linkcode FaceScene.load}. */
export interface FaceSceneOptions {
  /**
   * Frame width in pixels.
   * @default {1280}
   */
  width?: number;
  /**
   * Frame height in pixels.
   * @default {720}
   */
  height?: number;
  /**
   * Frames one left-right sweep of the photo takes.
   * @default {120}
   */
  period?: number;
}

/** Where the face is in scikit-image's astronaut.png (relative box, as
 * MediaPipe finds it on the photo alone). */
const ASTRONAUT_FACE = { x: 0.34, y: 0.14, w: 0.2, h: 0.2 };

/**
 * The path of one of scikit-image's sample images in the `mediapipe` example
 * environment.
 *
 * @param name The file name, e.g. `"astronaut.png"`.
 * @returns Its path.
 * @throws {Error} when the environment or the file is missing.
 *
 * @example
 * ```ts ignore
 * import { sampleImagePath } from "./scene.ts";
 * console.log(await sampleImagePath("astronaut.png"));
 * ```
 */
export async function sampleImagePath(name: string): Promise<string> {
  const lib = `${ROOT}.venvs/mediapipe/lib`;
  try {
    for await (const entry of Deno.readDir(lib)) {
      const path = `${lib}/${entry.name}/site-packages/skimage/data/${name}`;
      try {
        await Deno.stat(path);
        return path;
      } catch { /* another python version folder */ }
    }
  } catch { /* no environment */ }
  throw new Error(
    `Cannot find scikit-image's sample image ${name} in .venvs/mediapipe: build the environment with \`deno task setup --examples=mediapipe\``,
  );
}

/** Scales an image to `height` rows (bilinear), keeping its aspect. */
function scaleToHeight(img: RgbImage, height: number): RgbImage {
  const width = Math.round(img.width * height / img.height);
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(img.height - 1, (y + 0.5) * img.height / height - 0.5);
    const y0 = Math.max(0, Math.floor(sy)),
      y1 = Math.min(img.height - 1, y0 + 1);
    const fy = Math.max(0, sy - y0);
    for (let x = 0; x < width; x++) {
      const sx = Math.min(img.width - 1, (x + 0.5) * img.width / width - 0.5);
      const x0 = Math.max(0, Math.floor(sx)),
        x1 = Math.min(img.width - 1, x0 + 1);
      const fx = Math.max(0, sx - x0);
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number) =>
          img.rgb[(yy * img.width + xx) * 3 + c];
        const top = p(y0, x0) * (1 - fx) + p(y0, x1) * fx;
        const bottom = p(y1, x0) * (1 - fx) + p(y1, x1) * fx;
        rgb[(y * width + x) * 3 + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { width, height, rgb };
}

/**
 * The scene: call {@linkcode FaceScene.render} with a frame number and a
 * frame buffer (e.g. a shared-memory frame from `session.allocate`).
 *
 * @example
 * ```ts ignore
 * import { FaceScene } from "./scene.ts";
 * const scene = await FaceScene.load();
 * const frame = new Uint8Array(scene.frameBytes);
 * scene.render(0, frame); // the astronaut at the left
 * ```
 */
export class FaceScene {
  /** Frame width. */
  readonly width: number;
  /** Frame height. */
  readonly height: number;
  /** Bytes of one rgb24 frame. */
  readonly frameBytes: number;
  readonly #period: number;
  readonly #background: Uint8Array;
  readonly #sprites: Record<"face" | "no_face", RgbImage>;

  private constructor(
    width: number,
    height: number,
    period: number,
    sprites: Record<"face" | "no_face", RgbImage>,
  ) {
    this.width = width;
    this.height = height;
    this.frameBytes = width * height * 3;
    this.#period = period;
    this.#sprites = sprites;
    // A fixed, face-free background: a colour ramp with a soft grid.
    const bg = new Uint8Array(this.frameBytes);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        const grid = (x % 80 < 2 || y % 80 < 2) ? 30 : 0;
        bg[i] = 30 + Math.round(60 * x / width) + grid;
        bg[i + 1] = 70 + Math.round(50 * y / height) + grid;
        bg[i + 2] = 110 + grid;
      }
    }
    this.#background = bg;
  }

  /**
   * Loads the sample images and builds the scene.
   *
   * @param options Frame size and motion.
   * @returns The scene.
   */
  static async load(options: FaceSceneOptions = {}): Promise<FaceScene> {
    const width = options.width ?? 1280;
    const height = options.height ?? 720;
    const period = options.period ?? 120;
    const load = async (name: string) =>
      scaleToHeight(
        await decodePng(await Deno.readFile(await sampleImagePath(name))),
        height,
      );
    const [face, noFace] = await Promise.all([
      load("astronaut.png"),
      load("coffee.png"),
    ]);
    if (face.width > width || noFace.width > width) {
      throw new RangeError(
        `The scene needs frames at least ${
          Math.max(face.width, noFace.width)
        } pixels wide for ${height} rows`,
      );
    }
    return new FaceScene(width, height, period, {
      face,
      no_face: noFace,
    });
  }

  /** The left edge of the photo in frame `n` (it sweeps left and right). */
  spriteX(n: number, content: "face" | "no_face" = "face"): number {
    const free = this.width - this.#sprites[content].width;
    return Math.round(
      free * (0.5 - 0.5 * Math.cos(2 * Math.PI * n / this.#period)),
    );
  }

  /** Where the face is in frame `n` (pixels, approximate), for checks. */
  faceBox(n: number): { x: number; y: number; w: number; h: number } {
    const s = this.#sprites.face;
    return {
      x: this.spriteX(n) + ASTRONAUT_FACE.x * s.width,
      y: ASTRONAUT_FACE.y * s.height,
      w: ASTRONAUT_FACE.w * s.width,
      h: ASTRONAUT_FACE.h * s.height,
    };
  }

  /**
   * Writes frame `n` into `out` (rgb24, {@linkcode FaceScene.frameBytes}).
   *
   * @param n The frame number (its position in the sweep).
   * @param out The frame buffer.
   * @param content The astronaut (a face), the coffee cup (no face) or the
   * background alone.
   */
  render(n: number, out: Uint8Array, content: SceneContent = "face"): void {
    if (out.length !== this.frameBytes) {
      throw new RangeError(
        `A ${this.width}x${this.height} rgb24 frame has ${this.frameBytes} bytes, got ${out.length}`,
      );
    }
    out.set(this.#background);
    if (content === "empty") return;
    const s = this.#sprites[content];
    const x = this.spriteX(n, content);
    const rowBytes = s.width * 3;
    for (let y = 0; y < s.height; y++) {
      out.set(
        s.rgb.subarray(y * rowBytes, (y + 1) * rowBytes),
        (y * this.width + x) * 3,
      );
    }
  }
}
