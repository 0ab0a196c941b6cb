/**
 * Reliability scenario 2, load (issue 13): sessions of three checking nodes
 * (`load_check`, reliability/nodes/load_nodes.py), one after another
 * (`load_sequential`) and at once (`load_concurrent`), each streaming
 * numbered, checksummed messages of 1 B to 1 MiB (log-uniform, seeded: the
 * seed is printed; rerun with `RMP_LOAD_SEED`). Every node checks each
 * message and raises on a bad one; Deno checks at the output that every
 * number arrives once, in order, with its size and checksum. A run passes
 * with nothing lost, duplicated, reordered or corrupted, no node error, and
 * nothing of its session left after close.
 *
 * Full: 100 sequential + 10 concurrent sessions of 1000 messages. CI-sized:
 * 30 sequential + 10 concurrent of 1000 messages, 3 nodes each (as full, with
 * fewer sequential sessions: ~25 s measured under load).
 *
 * @module
 */
import type { Scenario, ScenarioOptions, ScenarioResult } from "./_scenario.ts";
import { descendants, filesLeft, processesUsing, until } from "./_scenario.ts";
import {
  chain,
  listenErrors,
  loadExecutor,
  loadModules,
  logUniformSizes,
  randomPool,
  rng,
  streamOnce,
  timerProbe,
} from "./_stream.ts";
import type { MultiprocessExecutor } from "../control/executor.ts";

const MAX_SIZE = 1024 * 1024;
/** Most ms any single wait (a message, a close) may take. */
const WAIT_MS = 30_000;

/** One session: create, stream, close; returns its failure or null. */
async function oneSession(
  executor: MultiprocessExecutor,
  options: ScenarioOptions,
  index: number,
  messages: number,
  seed: number,
  pool: Uint8Array,
  prefixes: Set<string>,
): Promise<{ failure: string | null; bytes: number }> {
  const sessionSeed = (seed + index * 7919) >>> 0;
  const sizes = logUniformSizes(rng(sessionSeed), messages, MAX_SIZE);
  const bytes = sizes.reduce((a, b) => a + b, 0);
  const heard = listenErrors();
  const problems: string[] = [];
  let pids: number[] = [];
  let prefix = "";
  try {
    const session = await executor.createSession(
      chain(["load_check", "load_check", "load_check"]),
      { ...loadModules(options.root), onError: heard.onError },
    );
    prefix = session.isolation.prefix;
    prefixes.add(prefix);
    try {
      await session.initialize();
      pids = session.status().flatMap((s) => s.pid ? [s.pid] : []);
      const { problems: p } = await streamOnce(
        session,
        sizes,
        pool,
        sessionSeed ^ 0x5a5a,
        WAIT_MS,
      );
      problems.push(...p);
      if (session.failure) {
        problems.push(`the session failed: ${session.failure.message}`);
      }
    } finally {
      await session.close();
    }
  } catch (e) {
    problems.push(`the session threw: ${(e as Error).message}`);
  }
  problems.push(...heard.errors);
  // After close: its processes gone, its files removed.
  const gone = await until(
    () => pids.every((pid) => !descendants().includes(pid)),
    WAIT_MS,
  );
  if (!gone) problems.push(`node processes still alive after close`);
  const left = prefix ? filesLeft([prefix]) : [];
  if (left.length) problems.push(`files left after close: ${left.join(", ")}`);
  return {
    failure: problems.length
      ? `session ${index} (seed ${sessionSeed}): ${problems.join("; ")}`
      : null,
    bytes,
  };
}

/** Runs `count` sessions, `parallel` at a time, into one row. */
async function runRow(
  name: string,
  options: ScenarioOptions,
  count: number,
  parallel: number,
  messages: number,
  seed: number,
  pool: Uint8Array,
): Promise<ScenarioResult> {
  const prefixes = new Set<string>();
  const failures: string[] = [];
  let passed = 0;
  let bytes = 0;
  const probe = timerProbe();
  const started = performance.now();
  {
    await using executor = loadExecutor(options.python);
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const index = next++;
        const r = await oneSession(
          executor,
          options,
          index,
          messages,
          seed,
          pool,
          prefixes,
        );
        bytes += r.bytes;
        if (r.failure) failures.push(r.failure);
        else passed++;
        if ((index + 1) % 10 === 0 || index + 1 === count) {
          options.log(`${name}: ${index + 1}/${count} sessions started`);
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }
  const seconds = (performance.now() - started) / 1000;
  const timers = probe.stop();
  await until(() => descendants().length === 0, 5000);
  const procs = new Set([...descendants(), ...processesUsing(prefixes)]);
  const left = filesLeft(prefixes);
  if (left.length) failures.push(`files left: ${left.join(", ")}`);
  return {
    scenario: name,
    runs: count,
    passed,
    detect_p50_ms: null,
    detect_p95_ms: null,
    procs_left: procs.size,
    shm_left: left.length,
    rss_growth_mb: null,
    failures,
    extra: {
      seed,
      sessions: count,
      at_once: parallel,
      nodes_per_session: 3,
      messages_per_session: messages,
      mib_per_hop: Math.round(bytes / 2 ** 20),
      seconds_under_load: Number(seconds.toFixed(1)),
      messages_per_s_under_load: Math.round(count * messages / seconds),
      timer_worst_late_ms: Number(timers.worstMs.toFixed(1)),
      timer_worst_gap_cpu_ms: Number(timers.worstCpuMs.toFixed(1)),
      timer_worst_gap_runqueue_ms: Number(timers.worstRunqueueMs.toFixed(1)),
      timer_worst_blocked_ms: Number(timers.worstBlockedMs.toFixed(1)),
    },
  };
}

/** The load scenario: rows `load_sequential` and `load_concurrent`. */
export const scenario: Scenario = async (options) => {
  const seed = Number(
    Deno.env.get("RMP_LOAD_SEED") ?? Math.floor(Math.random() * 2 ** 31),
  );
  options.log(`load: seed ${seed} (rerun with RMP_LOAD_SEED=${seed})`);
  const pool = randomPool(seed, MAX_SIZE);
  // RMP_LOAD_SEQUENTIAL / _CONCURRENT / _MESSAGES override the counts (to
  // reproduce a failure quickly).
  const env = (name: string, fallback: number) =>
    Number(Deno.env.get(`RMP_LOAD_${name}`) ?? fallback);
  const sequential = env("SEQUENTIAL", options.full ? 100 : 30);
  const concurrent = env("CONCURRENT", 10);
  const messages = env("MESSAGES", 1000);
  return [
    await runRow(
      "load_sequential",
      options,
      sequential,
      1,
      messages,
      seed,
      pool,
    ),
    await runRow(
      "load_concurrent",
      options,
      concurrent,
      concurrent,
      messages,
      seed + 1,
      pool,
    ),
  ];
};
