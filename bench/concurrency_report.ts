/**
 * `deno task bench:concurrency [--json]`:
 * - speedup of K CPU-bound nodes in separate processes against the same work
 *   in one Python process (baseline measured in the same run);
 * - session start to ready for 1 and 5 trivial nodes: cold (fork server, and
 *   every runner a new interpreter) and warm (a pre-warmed spare), in one
 *   run, interleaved;
 * - time from `send` to the first output of a ready trivial node.
 */
import { MultiprocessExecutor, Pipeline, text } from "../mod.ts";
import { bounded } from "./bounded.ts";

const json = Deno.args.includes("--json");
const root = new URL("../", import.meta.url).pathname;
const python = `${root}.venv/bin/python`;
const modules = {
  modules: ["demo_nodes"],
  modulePaths: [`${root}examples/nodes`],
  printLogs: false,
};
const ITERATIONS = 6_000_000; // about 0.3 s of pure Python here
const ROUNDS = 4;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
function report(obj: Record<string, unknown>, line: string) {
  console.log(json ? JSON.stringify(obj) : line);
}

await using executor = new MultiprocessExecutor({
  python: { executable: python },
});
// Warm the node-type cache and the OS page cache once.
await (await executor.createSession(
  new Pipeline().addNode("echo", "w").addInput("in", "w", "in").addOutput(
    "out",
    "w",
    "out",
  ),
  modules,
)).close();

for (const k of [2, 4]) {
  // Baseline: the same K x ROUNDS pieces of work in one Python process.
  const code = `
import time
def burn(n):
    x = 0
    for i in range(n):
        x += i * i
t = time.perf_counter()
for _ in range(${k * ROUNDS}):
    burn(${ITERATIONS})
print((time.perf_counter() - t) * 1000)`;
  const out = await new Deno.Command(python, { args: ["-c", code] }).output();
  const singleMs = Number(new TextDecoder().decode(out.stdout).trim());

  const pipeline = new Pipeline();
  for (let i = 0; i < k; i++) {
    pipeline.addNode("cpu_burn", `b${i}`, { iterations: ITERATIONS }).addInput(
      "in",
      `b${i}`,
      "in",
    ).addOutput(`o${i}`, `b${i}`, "out");
  }
  await using session = await executor.createSession(pipeline, modules);
  await session.initialize();
  const t = performance.now();
  for (let r = 0; r < ROUNDS; r++) await session.send("in", text(`${r}`));
  await Promise.all(Array.from({ length: k }, async (_, i) => {
    let n = 0;
    for await (const _s of session.receive(`o${i}`)) if (++n === ROUNDS) break;
  }));
  const multiMs = performance.now() - t;
  const speedup = singleMs / multiMs;
  report(
    { bench: "concurrency", nodes: k, speedup: +speedup.toFixed(2) },
    `concurrency: ${k} CPU-bound nodes x ${ROUNDS} x ${ITERATIONS} iterations: one process ${
      singleMs.toFixed(0)
    } ms, ${k} processes ${multiMs.toFixed(0)} ms, speedup ${
      speedup.toFixed(2)
    }x (${Deno.build.os}, ${navigator.hardwareConcurrency} cores; target >= 1.8x with 2 nodes)`,
  );
}

// Session start to ready, in one run, interleaved (the order alternates per
// round): cold with the fork server (the executor's default; the server is
// already running, as in a service after its first session), cold with every
// runner a new interpreter (`forkServer: false`), and warm (a spare of
// `executor.prewarm` taken by createSession). Each bounded: a start that
// hangs fails the bench.
const START_ROUNDS = 7;
// Cold starts use executors of their own: `executor` holds the pools, and a
// createSession there would take a spare.
await using spawnExecutor = new MultiprocessExecutor({
  python: { executable: python },
  forkServer: false,
});
await using forkExecutor = new MultiprocessExecutor({
  python: { executable: python },
});
function echoPipeline(n: number): Pipeline {
  const pipeline = new Pipeline();
  for (let i = 0; i < n; i++) {
    pipeline.addNode("echo", `e${i}`).addInput("in", `e${i}`, "in").addOutput(
      `o${i}`,
      `e${i}`,
      "out",
    );
  }
  return pipeline;
}
async function timeStart(
  ex: MultiprocessExecutor,
  pipeline: Pipeline,
): Promise<number> {
  const t = performance.now();
  const session = await bounded(
    ex.createSession(pipeline, modules),
    60_000,
    "createSession",
  );
  await bounded(session.initialize(), 60_000, "initialize");
  const ms = performance.now() - t;
  await session.close();
  return ms;
}
// An executor's first session also starts its fork server (reported once,
// not in the medians).
const firstMs = await timeStart(forkExecutor, echoPipeline(5));
await timeStart(spawnExecutor, echoPipeline(1));
report(
  {
    bench: "init",
    mode: "cold",
    fork_server: true,
    first_session: true,
    nodes: 5,
    ready_ms: +firstMs.toFixed(1),
  },
  `init: 5 trivial nodes, an executor's first session (starts its fork server) ready in ${
    firstMs.toFixed(1)
  } ms (one sample)`,
);
const starts = new Map<string, number[]>();
const pools = new Map<number, Awaited<ReturnType<typeof executor.prewarm>>>();
for (const n of [1, 5]) {
  pools.set(
    n,
    await executor.prewarm(echoPipeline(n), { sessions: 1, ...modules }),
  );
}
for (let round = 0; round < START_ROUNDS; round++) {
  for (const n of [1, 5]) {
    const pipeline = echoPipeline(n);
    const kinds: [string, () => Promise<number>][] = [
      ["fork", () => timeStart(forkExecutor, pipeline)],
      ["spawn", () => timeStart(spawnExecutor, pipeline)],
      ["warm", async () => {
        await bounded(pools.get(n)!.whenReady(), 60_000, "a warm spare");
        return await timeStart(executor, pipeline);
      }],
    ];
    if (round % 2) kinds.reverse();
    for (const [kind, run] of kinds) {
      const key = `${kind}:${n}`;
      starts.set(key, [...(starts.get(key) ?? []), await run()]);
    }
  }
}
for (const pool of pools.values()) await pool.close();
for (
  const [kind, mode, label] of [
    ["fork", "cold", "cold (fork server)"],
    ["spawn", "cold", "cold (new interpreters)"],
    ["warm", "warm", "warm (pre-warmed)"],
  ] as const
) {
  for (const n of [1, 5]) {
    const xs = starts.get(`${kind}:${n}`)!;
    const readyMs = pct(xs, 50);
    report(
      {
        bench: "init",
        mode,
        fork_server: kind === "fork",
        nodes: n,
        ready_ms: +readyMs.toFixed(1),
        p95_ms: +pct(xs, 95).toFixed(1),
      },
      `init: ${n} trivial node(s) ${label} ready in ${
        readyMs.toFixed(1)
      } ms (median of ${START_ROUNDS}, max ${
        pct(xs, 100).toFixed(1)
      } ms; targets: cold 5 nodes <= 500 ms and <= 2x one node, warm <= 20 ms)`,
    );
  }
}

{
  await using session = await executor.createSession(
    new Pipeline().addNode("echo", "e").addInput("in", "e", "in").addOutput(
      "out",
      "e",
      "out",
    ),
    modules,
  );
  await session.initialize();
  const out = session.receive("out");
  const us: number[] = [];
  for (let i = 0; i < 505; i++) {
    const t = performance.now();
    await session.send("in", text("x"));
    await bounded(out.next(), 30_000, "echo output");
    if (i >= 5) us.push((performance.now() - t) * 1000);
  }
  await out.return();
  report(
    {
      bench: "first_output",
      p50_us: +pct(us, 50).toFixed(1),
      p95_us: +pct(us, 95).toFixed(1),
    },
    `first output: send -> first output of a ready echo node p50 ${
      pct(us, 50).toFixed(0)
    } us, p95 ${pct(us, 95).toFixed(0)} us (target p95 <= 1000 us)`,
  );
}
