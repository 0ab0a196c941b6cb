/**
 * `deno task demo:hosts`: one pipeline on two hosts. A host agent
 * (`python -m remotemedia_multiprocess.agent`) stands for the GPU box; here
 * it runs on this machine's loopback, so the demo needs no second machine
 * (on a real one, start it there and put its address in `endpoint`).
 *
 *   in ──> asr (on host "gpu": loads 1 s, reports progress) ──> tts (here, streams words) ──> speech
 *
 * It prints the remote node's start-up progress (relayed by its agent), the
 * streamed output, where each node runs, and what crossed between the hosts.
 */
import {
  MultiprocessExecutor,
  Pipeline,
  text,
  type TextData,
} from "../../mod.ts";

const root = new URL("../../", import.meta.url).pathname;
const python = `${root}.venv/bin/python`;

// A free loopback port for the agent.
const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (probe.addr as Deno.NetAddr).port;
probe.close();
const endpoint = `tcp/127.0.0.1:${port}`;

const agent = new Deno.Command(python, {
  args: [
    "-m",
    "remotemedia_multiprocess.agent",
    "--listen",
    endpoint,
    "--module-path",
    `${root}examples/nodes`,
  ],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
// The agent prints one JSON line once it listens.
const reader = agent.stdout.pipeThrough(new TextDecoderStream()).getReader();
const timer = setTimeout(() => agent.kill("SIGKILL"), 30_000);
const first = await reader.read();
clearTimeout(timer);
reader.releaseLock();
agent.stdout.cancel().catch(() => {});
if (first.done) throw new Error("The agent ended before it listened");
console.log(`agent for host "gpu" listening on ${endpoint}`);

try {
  const pipeline = new Pipeline("two-hosts-demo")
    .addNode("slow_loader", "asr", { seconds: 1, steps: 4 }, { host: "gpu" })
    .addNode("chunker", "tts")
    .addInput("in", "asr", "in")
    .connect("asr", "out", "tts", "in")
    .addOutput("speech", "tts", "out");

  await using executor = new MultiprocessExecutor({
    python: { executable: python },
    hosts: { gpu: { endpoint, leaseSecs: 3 } },
  });
  const started = performance.now();
  await using session = await executor.createSession(pipeline, {
    modules: ["demo_nodes"],
    modulePaths: [`${root}examples/nodes`],
    onProgress: (p) =>
      console.log(
        `  [${p.elapsedMs.toString().padStart(5)} ms] ${p.nodeId.padEnd(4)} ${
          p.phase.padEnd(8)
        } ${
          p.fraction === null ? "" : `${Math.round(p.fraction * 100)}%`
        } ${p.message}`,
      ),
  });
  await session.initialize();
  console.log(
    `ready on both hosts after ${Math.round(performance.now() - started)} ms`,
  );

  await session.send(
    "in",
    text("hello from the other host", { language: "en" }),
  );
  const words: string[] = [];
  for await (const sample of session.receive("speech")) {
    words.push((sample.data as TextData).text);
    if (words.length === 5) break;
  }
  console.log(`tts streamed: ${words.join(" | ")}`);
  for (const s of session.status()) {
    console.log(
      `node ${s.nodeId}: host ${s.host ?? "(this one)"}, pid ${s.pid}`,
    );
  }
  const stats = await session.stats();
  console.table(stats.channels);
} finally {
  agent.kill("SIGTERM");
  await agent.status;
}
