/**
 * `deno task demo:video [--seconds=10] [--detectors=2]`: runs the video
 * pipeline for ten seconds (frames as fast as the pipeline takes them,
 * detectors + 1 in flight) and prints fps and the latency
 * of each stage. Builds the `mediapipe` environment on first use.
 *
 * @module
 */
import { percentile, runVideo } from "./run.ts";

const seconds = Number(
  Deno.args.find((a) => a.startsWith("--seconds="))?.slice(10) ?? 10,
);
const detectors = Number(
  Deno.args.find((a) => a.startsWith("--detectors="))?.slice(12) ?? 2,
);
const ms = (xs: number[]) =>
  `p50 ${percentile(xs, 0.5).toFixed(1)} ms, p95 ${
    percentile(xs, 0.95).toFixed(1)
  } ms`;
console.log(
  `video_faces: 1280x720 rgb24 frames for ${seconds} s, ${detectors} face detector(s)`,
);
const stats = await runVideo({
  seconds,
  detectors,
  inFlight: detectors + 1,
  onProgress: (node, phase, message) =>
    console.log(`  [${node}] ${phase}${message ? `: ${message}` : ""}`),
});
const withFace = [...stats.detections.values()].filter((d) => d.faces.length)
  .length;
console.log(`start-up (spawn + model load): ${stats.startMs.toFixed(0)} ms`);
console.log(
  `frames: ${stats.frames} in ${stats.seconds.toFixed(2)} s = ${
    stats.fps.toFixed(1)
  } fps; a face found in ${withFace} of them`,
);
console.log(`stage detect (model time in the node): ${ms(stats.modelMs)}`);
console.log(
  `stage detect (frame sent -> detections in Deno): ${
    ms(stats.detectLatencyMs)
  }`,
);
console.log(
  `stage draw (frame sent -> annotated frame in Deno): ${
    ms(stats.drawLatencyMs)
  }`,
);
