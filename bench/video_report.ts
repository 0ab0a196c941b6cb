/**
 * `deno task bench:video [--json] [--seconds=8] [--rounds=2] [--detectors=2]`:
 * the video pipeline (examples/video_faces/) at 1280x720 rgb24, as this
 * module runs it (Deno renders the scene into shared memory; `detectors`
 * MediaPipe nodes share the frames; a drawer draws the boxes into frames
 * allocated in place) against the same work in one Python process, in turn
 * (examples/video_faces/single_process.py: render, detect, draw per frame).
 *
 * Each round runs both, alternating which goes first; the figures are the
 * median fps over the rounds and the latency percentiles over every frame.
 * Latency: multiprocess, from the send of a frame to the arrival in Deno of
 * both its detections and its annotated frame; sequential, from the start of
 * a frame's rendering to the end of its drawing. Frames go as fast as each
 * takes them (multiprocess: `detectors + 1` in flight).
 *
 * The text output adds the CPU time per frame of every process (from
 * /proc/<pid>/stat; the single process measures its own), which a busy
 * machine distorts less than fps.
 *
 * `--json` rows: `{"bench":"video","mode":"multiprocess"|"sequential","fps",
 * "latency_p50_ms","latency_p95_ms"}`.
 *
 * @module
 */
import { percentile, runVideo } from "../examples/video_faces/run.ts";

const root = new URL("../", import.meta.url).pathname;
const arg = (name: string, dflt: number): number => {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  const v = a ? Number(a.slice(name.length + 3)) : dflt;
  if (!Number.isFinite(v) || v <= 0) {
    throw new RangeError(`--${name} must be a positive number, got ${a}`);
  }
  return v;
};
const json = Deno.args.includes("--json");
const seconds = arg("seconds", 8);
const rounds = arg("rounds", 2);
const detectors = arg("detectors", 2);
const log = (line: string) => {
  if (!json) console.log(line);
};

interface Run {
  fps: number;
  latencyMs: number[];
  /** CPU ms per frame, all processes together, and per process. */
  cpuPerFrame: number;
  cpuParts: Record<string, number>;
}

async function multiprocess(): Promise<Run> {
  const stats = await runVideo({
    seconds,
    detectors,
    inFlight: detectors + 1,
    timeoutMs: 20_000,
  });
  const parts = Object.fromEntries(
    Object.entries(stats.cpuMs).map(([k, v]) => [k, v / stats.frames]),
  );
  return {
    fps: stats.fps,
    latencyMs: stats.frameLatencyMs,
    cpuPerFrame: Object.values(parts).reduce((a, b) => a + b, 0),
    cpuParts: parts,
  };
}

async function sequential(): Promise<Run> {
  const out = await new Deno.Command(`${root}.venvs/mediapipe/bin/python`, {
    args: [
      `${root}examples/video_faces/single_process.py`,
      "--seconds",
      String(seconds),
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout((seconds + 60) * 1000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `The single-process run failed (exit ${out.code}): ${
        new TextDecoder().decode(out.stderr).slice(-2000)
      }`,
    );
  }
  const r = JSON.parse(text.split("\n").at(-1)!);
  const cpuPerFrame = r.cpu_ms / r.frames;
  return {
    fps: r.fps,
    latencyMs: r.latency_ms,
    cpuPerFrame,
    cpuParts: { python: cpuPerFrame },
  };
}

const results: Record<"multiprocess" | "sequential", Run[]> = {
  multiprocess: [],
  sequential: [],
};
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0
    ? (["multiprocess", "sequential"] as const)
    : (["sequential", "multiprocess"] as const);
  for (const mode of order) {
    const r = mode === "multiprocess"
      ? await multiprocess()
      : await sequential();
    results[mode].push(r);
    log(
      `round ${round + 1} ${mode}: ${r.fps.toFixed(1)} fps, latency p50 ${
        percentile(r.latencyMs, 0.5).toFixed(1)
      } ms, CPU ${r.cpuPerFrame.toFixed(2)} ms/frame (${
        Object.entries(r.cpuParts).map(([k, v]) => `${k} ${v.toFixed(2)}`)
          .join(", ")
      })`,
    );
  }
}
/** The median (the mean of the two middle values for an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const summary = (mode: "multiprocess" | "sequential") => {
  const runs = results[mode];
  const lat = runs.flatMap((r) => r.latencyMs);
  return {
    bench: "video",
    mode,
    fps: Number(median(runs.map((r) => r.fps)).toFixed(2)),
    latency_p50_ms: Number(percentile(lat, 0.5).toFixed(2)),
    latency_p95_ms: Number(percentile(lat, 0.95).toFixed(2)),
  };
};
const mp = summary("multiprocess");
const seq = summary("sequential");
if (json) {
  console.log(JSON.stringify(mp));
  console.log(JSON.stringify(seq));
} else {
  console.log(
    `video 1280x720, ${rounds} rounds x ${seconds} s, ${detectors} detector(s):`,
  );
  for (const r of [mp, seq]) {
    console.log(
      `  ${r.mode.padEnd(12)} ${
        r.fps.toFixed(1)
      } fps (median of rounds), latency p50 ${r.latency_p50_ms} ms, p95 ${r.latency_p95_ms} ms`,
    );
  }
  console.log(
    `  multiprocess / sequential fps: ${
      (mp.fps / seq.fps).toFixed(2)
    }x (target 1.5x)`,
  );
  const cpu = (mode: "multiprocess" | "sequential") =>
    median(results[mode].map((r) => r.cpuPerFrame));
  console.log(
    `  CPU per frame (median of rounds): multiprocess ${
      cpu("multiprocess").toFixed(2)
    } ms, sequential ${
      cpu("sequential").toFixed(2)
    } ms; on 2 idle cores the fps ceiling is about ${
      (cpu("sequential") * 2 / cpu("multiprocess")).toFixed(2)
    }x (2 cores / multiprocess CPU vs 1 core / sequential CPU)`,
  );
}
