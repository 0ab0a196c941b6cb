/**
 * Runs the video pipeline (pipeline.toml, runtime.toml) on the moving test
 * scene and measures it: used by `deno task demo:video`, the tests and
 * `deno task bench:video`. Every wait is bounded: a lost frame fails the run.
 *
 * @module
 */
import {
  MultiprocessExecutor,
  Pipeline,
  type RuntimeData,
  type Session,
  video,
} from "../../mod.ts";
import { FaceScene, type SceneContent } from "./scene.ts";

const HERE = new URL("./", import.meta.url).pathname;

/** One face as `face_detect` reports it (pixels). */
export interface Face {
  /** Left edge. */
  x: number;
  /** Top edge. */
  y: number;
  /** Width. */
  w: number;
  /** Height. */
  h: number;
  /** Detection confidence, 0 to 1. */
  score: number;
}

/** The JSON a `face_detect` node sends per frame. */
export interface Detections {
  /** The frame number. */
  frame: number;
  /** Frame width. */
  width: number;
  /** Frame height. */
  height: number;
  /** The faces found. */
  faces: Face[];
  /** The model's own time on this frame, in ms. */
  detect_ms: number;
  /** With `trace: true`: the node's Python allocation peak since the previous frame. */
  alloc_peak_bytes?: number;
  /** With `trace: true`: whether the input payload lies in shared memory. */
  input_in_shm?: boolean;
}

/** What `draw_boxes` reports per frame with `trace: true`. */
export interface DrawStats {
  /** The frame number. */
  frame: number;
  /** The frame whose detections were drawn (-1: none yet). */
  drawn_from: number;
  /** The node's Python allocation peak since the previous input, in bytes. */
  alloc_peak_bytes: number;
  /** Whether the input frame's payload lies in shared memory. */
  input_in_shm: boolean;
  /** Whether the output frame's payload lies in shared memory. */
  output_in_shm: boolean;
}

/** Options of {@linkcode runVideo}. */
export interface RunVideoOptions {
  /**
   * Stop after this many frames.
   * @default {undefined} run for `seconds`
   */
  frames?: number;
  /**
   * Stop sending after this many seconds (when `frames` is not given).
   * @default {10}
   */
  seconds?: number;
  /**
   * Frames sent but not yet fully processed (their detections and their
   * annotated frame received).
   * @default {2}
   */
  inFlight?: number;
  /**
   * What frame `n` shows.
   * @default {() => "face"}
   */
  content?: (n: number) => SceneContent;
  /**
   * Frames one left-right sweep of the scene takes.
   * @default {120}
   */
  scenePeriod?: number;
  /**
   * Face detectors sharing the frames (frame n goes to detector n mod k,
   * through its own input: {@linkcode frameInput}).
   * @default {1}
   */
  detectors?: number;
  /**
   * Config added to every node (e.g. `{ trace: true }`).
   * @default {{}}
   */
  nodeConfig?: Record<string, boolean | number | string>;
  /**
   * Called with every detection message.
   * @default {undefined}
   */
  onDetections?: (d: Detections) => void;
  /**
   * Called with every annotated frame while its sample is held (its payload
   * views shared memory only during the call).
   * @default {undefined}
   */
  onAnnotated?: (frame: RuntimeData & { kind: "video" }, n: number) => void;
  /**
   * Called once per sent frame with its shared-memory payload, after it is
   * filled and before it is sent.
   * @default {undefined}
   */
  onAllocated?: (data: Uint8Array, n: number) => void;
  /**
   * Called with every `stats` message of the drawer (only with
   * `nodeConfig: { trace: true }`, which adds the `draw_stats` output).
   * @default {undefined}
   */
  onDrawStats?: (stats: DrawStats) => void;
  /**
   * Called with the session once it is initialized.
   * @default {undefined}
   */
  onSession?: (session: Session) => void;
  /**
   * Most milliseconds any single wait may take before the run fails.
   * @default {20000}
   */
  timeoutMs?: number;
  /**
   * Print the nodes' output lines (MediaPipe logs a few at start-up).
   * @default {false}
   */
  printLogs?: boolean;
  /**
   * Progress of the node start-up.
   * @default {undefined}
   */
  onProgress?: (nodeId: string, phase: string, message: string) => void;
}

/** What a run measured. */
export interface VideoRunStats {
  /** Frames sent and fully processed. */
  frames: number;
  /** From the first send to the last annotated frame, in seconds. */
  seconds: number;
  /** Frames per second over that time. */
  fps: number;
  /** Frame sent -> its detections received, in ms (one per frame). */
  detectLatencyMs: number[];
  /** Frame sent -> its annotated frame received, in ms. */
  drawLatencyMs: number[];
  /** Frame sent -> both its detections and its annotated frame received. */
  frameLatencyMs: number[];
  /** The model's own time per frame (inside the node), in ms. */
  modelMs: number[];
  /** CPU time spent while the frames ran, in ms, per process ("deno" and
   * each node id): divide by `frames` for the cost of a frame. */
  cpuMs: Record<string, number>;
  /** Start-up: createSession + initialize, in ms. */
  startMs: number;
  /** Detections by frame number. */
  detections: Map<number, Detections>;
}

/**
 * The pipeline input frame `n` goes to: `frames` with one detector; with k,
 * `frames<n mod k>`, each read by its own detector and by the drawer (so a
 * detector wakes only for its own frames).
 *
 * @param n The frame number.
 * @param detectors How many detectors.
 * @returns The input name.
 */
export function frameInput(n: number, detectors: number): string {
  return detectors === 1 ? "frames" : `frames${n % detectors}`;
}

/**
 * The video pipeline: `pipeline.toml`, with `detectors` face detectors
 * sharing the frames and `nodeConfig` added to every node.
 *
 * @param detectors How many `face_detect` nodes.
 * @param nodeConfig Config added to every node.
 * @returns The pipeline.
 */
export async function videoPipeline(
  detectors = 1,
  nodeConfig: Record<string, boolean | number | string> = {},
): Promise<Pipeline> {
  const base = (await Pipeline.load(`${HERE}pipeline.toml`)).toJSON();
  const detect = base.nodes.find((n) => n.id === "detect")!;
  const p = new Pipeline("video_faces");
  const ids = detectors === 1
    ? ["detect"]
    : Array.from({ length: detectors }, (_, i) => `detect${i}`);
  ids.forEach((id, i) =>
    p.addNode(detect.type, id, { ...detect.config, ...nodeConfig }, {
      env: detect.env,
    }).addInput(frameInput(i, detectors), id, "in")
  );
  p.addNode("draw_boxes", "draw", nodeConfig);
  for (let i = 0; i < detectors; i++) {
    p.addInput(frameInput(i, detectors), "draw", "frame");
  }
  for (const id of ids) {
    p.connect(id, "out", "draw", "detections");
    p.addOutput(
      ids.length === 1 ? "detections" : `detections_${id}`,
      id,
      "out",
    );
  }
  p.addOutput("annotated", "draw", "out");
  if (nodeConfig.trace) p.addOutput("draw_stats", "draw", "stats");
  return p;
}

/**
 * Percentile `q` (0..1) of `xs` (nearest rank).
 *
 * @param xs The values.
 * @param q The quantile.
 * @returns The value, or NaN for none.
 */
export function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** CPU time (user + system) of process `pid` in ms, or NaN when unreadable. */
function cpuMs(pid: number): number {
  try {
    const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]
      .split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`The video run timed out: ${what} took over ${ms} ms`),
          ),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Runs the pipeline on the scene and returns what it measured.
 *
 * @param options Length, pacing and callbacks.
 * @returns The figures.
 *
 * @example
 * ```ts ignore
 * import { runVideo } from "./run.ts";
 * const stats = await runVideo({ seconds: 10 });
 * console.log(stats.fps);
 * ```
 */
export async function runVideo(
  options: RunVideoOptions = {},
): Promise<VideoRunStats> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const inFlight = options.inFlight ?? 2;
  const detectors = options.detectors ?? 1;
  const content = options.content ?? (() => "face");
  const scene = await FaceScene.load({ period: options.scenePeriod });
  const pipeline = await videoPipeline(detectors, options.nodeConfig);
  await using executor = await MultiprocessExecutor.fromConfigFile(
    `${HERE}runtime.toml`,
    { handleSignals: true },
  );
  const t0 = performance.now();
  await using session = await executor.createSession(pipeline, {
    modules: ["video_nodes"],
    modulePaths: [HERE],
    printLogs: options.printLogs ?? false,
    onProgress: (p) => options.onProgress?.(p.nodeId, p.phase, p.message ?? ""),
  });
  await withTimeout(session.initialize(), 120_000, "initialize()");
  const startMs = performance.now() - t0;
  options.onSession?.(session);

  const sentAt = new Map<number, number>();
  const detections = new Map<number, Detections>();
  const detectLatencyMs: number[] = [];
  const drawLatencyMs: number[] = [];
  const modelMs: number[] = [];
  // A frame is done when both its detections and its annotated frame came.
  const halfDone = new Set<number>();
  let done = 0;
  let wake: (() => void) | undefined;
  const frameLatencyMs: number[] = [];
  const arrived = (n: number) => {
    if (halfDone.delete(n)) {
      frameLatencyMs.push(performance.now() - sentAt.get(n)!);
      done++;
      wake?.();
    } else halfDone.add(n);
  };
  const abort = new AbortController();

  const detectionOutputs = detectors === 1
    ? ["detections"]
    : Array.from({ length: detectors }, (_, i) => `detections_detect${i}`);
  const readDetections = detectionOutputs.map(async (name) => {
    for await (
      const s of session.receive(name, { timeoutMs, signal: abort.signal })
    ) {
      const now = performance.now();
      const data = s.data;
      if (data.kind !== "json") throw new Error(`${name}: not JSON`);
      const d = data.value as Detections;
      detections.set(d.frame, d);
      detectLatencyMs.push(now - sentAt.get(d.frame)!);
      modelMs.push(d.detect_ms);
      options.onDetections?.(d);
      arrived(d.frame);
    }
  });
  const readAnnotated = (async () => {
    for await (
      const s of session.receive("annotated", {
        timeoutMs,
        signal: abort.signal,
      })
    ) {
      const now = performance.now();
      const data = s.data;
      if (data.kind !== "video") throw new Error("annotated: not video");
      const n = Number(data.frameNumber);
      drawLatencyMs.push(now - sentAt.get(n)!);
      options.onAnnotated?.(data, n);
      arrived(n);
    }
  })();
  const readStats = options.nodeConfig?.trace
    ? (async () => {
      for await (
        const s of session.receive("draw_stats", {
          timeoutMs,
          signal: abort.signal,
        })
      ) {
        const data = s.data;
        if (data.kind !== "json") throw new Error("draw_stats: not JSON");
        options.onDrawStats?.(data.value as DrawStats);
      }
    })()
    : new Promise<void>(() => {});
  // Either reader failing (a timeout, the session failing) fails the run.
  const failed = Promise.race([...readDetections, readAnnotated, readStats])
    .then(
      () => {
        throw new Error("A pipeline output ended before the run did");
      },
    );
  failed.catch(() => {});

  const template = video(new Uint8Array(scene.frameBytes), {
    width: scene.width,
    height: scene.height,
    pixelFormat: "rgb24",
  });
  const wantFrames = options.frames;
  const sendUntil = performance.now() + (options.seconds ?? 10) * 1000;
  const processes = (): [string, number][] => [
    ["deno", Deno.pid],
    ...session.status().map((n) => [n.nodeId, n.pid ?? -1] as [string, number]),
  ];
  const cpuBefore = new Map(processes().map(([k, pid]) => [k, cpuMs(pid)]));
  const first = performance.now();
  let sent = 0;
  const cpu: Record<string, number> = {};
  const more = () =>
    wantFrames !== undefined
      ? sent < wantFrames
      : performance.now() < sendUntil;
  const waitSlot = async (limit: number) => {
    while (sent - done > limit) {
      await withTimeout(
        Promise.race([new Promise<void>((r) => wake = r), failed]),
        timeoutMs,
        `frame ${done}`,
      );
    }
  };
  try {
    while (more()) {
      await waitSlot(inFlight - 1);
      const input = frameInput(sent, detectors);
      const frame = await session.allocate(input, template);
      scene.render(sent, frame.data, content(sent));
      frame.frameNumber = BigInt(sent);
      options.onAllocated?.(frame.data, sent);
      sentAt.set(sent, performance.now());
      await session.send(input, frame);
      sent++;
    }
    await waitSlot(0);
    for (const [k, pid] of processes()) {
      cpu[k] = cpuMs(pid) - cpuBefore.get(k)!;
    }
  } finally {
    abort.abort();
  }
  const seconds = (performance.now() - first) / 1000;
  await Promise.allSettled([...readDetections, readAnnotated]);
  return {
    frames: done,
    seconds,
    fps: done / seconds,
    detectLatencyMs,
    drawLatencyMs,
    frameLatencyMs,
    modelMs,
    cpuMs: cpu,
    startMs,
    detections,
  };
}
