/**
 * The main demo (`deno task demo`): a speech-to-speech shaped pipeline whose
 * nodes each run in their own Python process.
 *
 *   in ──> asr (loads 1.5 s, reports progress) ──> llm_a (CPU-bound) ──> tts (streams words) ──> speech
 *                                           └────> llm_b (CPU-bound) ──────────────────────────> notes
 *
 * It prints start-up progress, the streamed output, the wall time of the two
 * CPU-bound branches (they run at once: each process has its own GIL) and
 * the session's statistics.
 */
import {
  MultiprocessExecutor,
  Pipeline,
  text,
  type TextData,
} from "../../mod.ts";

const root = new URL("../../", import.meta.url).pathname;
const pipeline = new Pipeline("speech-to-speech-demo")
  .addNode("slow_loader", "asr", { seconds: 1.5, steps: 5 })
  .addNode("cpu_burn", "llm_a", { ms: 300 })
  .addNode("cpu_burn", "llm_b", { ms: 300 })
  .addNode("chunker", "tts")
  .addInput("in", "asr", "in")
  .connect("asr", "out", "llm_a", "in")
  .connect("asr", "out", "llm_b", "in")
  .connect("llm_a", "out", "tts", "in")
  .addOutput("speech", "tts", "out")
  .addOutput("notes", "llm_b", "out");

await using executor = new MultiprocessExecutor({
  python: { executable: `${root}.venv/bin/python` },
});
const started = performance.now();
await using session = await executor.createSession(pipeline, {
  modules: ["demo_nodes"],
  modulePaths: [`${root}examples/nodes`],
  onProgress: (p) =>
    console.log(
      `  [${p.elapsedMs.toString().padStart(5)} ms] ${p.nodeId.padEnd(6)} ${
        p.phase.padEnd(8)
      } ${
        p.fraction === null ? "" : `${Math.round(p.fraction * 100)}%`
      } ${p.message}`,
    ),
});
console.log(`spawned ${pipeline.toJSON().nodes.length} node processes at once`);
await session.initialize();
console.log(
  `ready (every model loaded) after ${
    Math.round(performance.now() - started)
  } ms`,
);

const t0 = performance.now();
await session.send(
  "in",
  text("hello from the zero copy data plane", { language: "en" }),
);
const words: string[] = [];
const speech = (async () => {
  for await (const sample of session.receive("speech")) {
    words.push((sample.data as TextData).text);
    if (words.length === 7) break;
  }
})();
const notes = (async () => {
  for await (const sample of session.receive("notes")) {
    return (sample.data as TextData).text;
  }
})();
const [, note] = await Promise.all([speech, notes]);
const wall = performance.now() - t0;
console.log(`tts streamed: ${words.join(" | ")}`);
console.log(`llm_b noted: "${note}"`);
console.log(
  `both 300 ms CPU-bound branches done in ${
    Math.round(wall)
  } ms (one after the other would take >= 600 ms)`,
);
const stats = await session.stats();
console.table(
  stats.processes.map((p) => ({
    ...p,
    rssMiB: ((p.rssBytes ?? 0) / 2 ** 20).toFixed(1),
  })),
);
console.table(stats.channels);
