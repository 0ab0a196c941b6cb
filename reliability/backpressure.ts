/**
 * Reliability scenario 3, backpressure (issue 13): Deno sends 10 000
 * numbered, checksummed messages (1 B to 256 KiB - 128 B, log-uniform,
 * seeded; rerun with `RMP_BACKPRESSURE_SEED`) as fast as `send` lets it into
 * a node that sleeps per message (`load_slow`), and reads its output at once.
 *
 * Checks: none lost (every number once, in order, size and checksum right,
 * the node's count too); shared memory bounded: the total size of the
 * session's /dev/shm files, sampled every 25 ms, stays under
 * `channels x capacity x next_pow2(max message + 128 B header) + idle`,
 * where `idle` is the total measured after initialize (management segments
 * and the first 4 KiB chunks, a generous slack), 2 channels, capacity 8; and
 * Deno timers on time: a 10 ms `setInterval` runs throughout and its worst
 * lateness (extra `timer_worst_late_ms`) must stay under 250 ms.
 *
 * That the producer really waited shows in `input_peak_occupancy`, the input
 * channel's fill from `session.stats()` (it must reach capacity - 1; it
 * compares counters of two processes read at different instants, so it may
 * exceed the capacity by what was sent during the stats round trip).
 *
 * CI-sized: 10 000 messages, the node sleeping 2 ms each (~30 s under load).
 * Full: 50 000 messages.
 *
 * @module
 */
import type { Scenario, ScenarioResult } from "./_scenario.ts";
import { descendants, filesLeft, processesUsing, until } from "./_scenario.ts";
import {
  chain,
  listenErrors,
  loadExecutor,
  loadModules,
  logUniformSizes,
  randomPool,
  rng,
  shmUsage,
  streamOnce,
  timerProbe,
  type TimerReport,
} from "./_stream.ts";

const MAX_SIZE = 256 * 1024 - 128;
const CAPACITY = 8;
const CHANNELS = 2; // Deno -> node, node -> Deno
const SLEEP_MS = 2;
const TIMER_BOUND_MS = 250;
const WAIT_MS = 30_000;

function nextPow2(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

/** The backpressure scenario: row `backpressure`. */
export const scenario: Scenario = async (options) => {
  const seed = Number(
    Deno.env.get("RMP_BACKPRESSURE_SEED") ??
      Math.floor(Math.random() * 2 ** 31),
  );
  const messages = Number(
    Deno.env.get("RMP_BACKPRESSURE_MESSAGES") ??
      (options.full ? 50_000 : 10_000),
  );
  options.log(
    `backpressure: seed ${seed} (rerun with RMP_BACKPRESSURE_SEED=${seed})`,
  );
  const sizes = logUniformSizes(rng(seed), messages, MAX_SIZE);
  const pool = randomPool(seed, MAX_SIZE);
  const failures: string[] = [];
  const heard = listenErrors();
  let prefix = "";
  let idle = 0;
  let peak = 0;
  let maxOccupancy = 0;
  let seconds = 0;
  let timers: TimerReport = {
    worstMs: 0,
    ticks: 0,
    worstCpuMs: 0,
    worstRunqueueMs: 0,
    worstBlockedMs: 0,
  };
  const bound = () => CHANNELS * CAPACITY * nextPow2(MAX_SIZE + 128) + idle;
  {
    await using executor = loadExecutor(options.python, {
      channelCapacity: CAPACITY,
    });
    // Throughout: session start and close included.
    const probe = timerProbe();
    await using session = await executor.createSession(
      chain(["load_slow"], { sleep_ms: SLEEP_MS }),
      { ...loadModules(options.root), onError: heard.onError },
    );
    prefix = session.isolation.prefix;
    await session.initialize();
    idle = shmUsage([prefix]).bytes;
    const sampler = setInterval(() => {
      peak = Math.max(peak, shmUsage([prefix]).bytes);
    }, 25);
    // The input channel's fill, from the node's stats (shows the producer
    // really waited on a full channel).
    let sampling = true;
    const occupancy = (async () => {
      while (sampling) {
        try {
          const stats = await session.stats();
          for (const c of stats.channels) {
            if (c.name.endsWith(".in") || c.name === "in") {
              maxOccupancy = Math.max(maxOccupancy, c.occupancy);
            }
          }
        } catch { /* the session ended */ }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const started = performance.now();
    const { problems } = await streamOnce(
      session,
      sizes,
      pool,
      seed ^ 0x5a5a,
      WAIT_MS,
    );
    seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    sampling = false;
    await occupancy;
    failures.push(...problems, ...heard.errors);
    if (session.failure) {
      failures.push(`the session failed: ${session.failure.message}`);
    }
    await session.close();
    timers = probe.stop();
  }
  if (peak > bound()) {
    failures.push(
      `shared memory peaked at ${peak} B, over the bound ${bound()} B (${CHANNELS} channels x capacity ${CAPACITY} x ${
        nextPow2(MAX_SIZE + 128)
      } B chunks + ${idle} B at idle)`,
    );
  }
  if (maxOccupancy < CAPACITY - 1) {
    failures.push(
      `the input channel never filled (peak occupancy ${maxOccupancy} of ${CAPACITY}): no backpressure was exercised`,
    );
  }
  if (timers.worstMs > TIMER_BOUND_MS) {
    failures.push(
      `a 10 ms timer ran ${
        timers.worstMs.toFixed(0)
      } ms late (bound ${TIMER_BOUND_MS} ms; meanwhile the main thread ran ${
        timers.worstCpuMs.toFixed(0)
      } ms and waited ${
        timers.worstRunqueueMs.toFixed(0)
      } ms for a CPU: running means a busy event loop, waiting an overloaded machine)`,
    );
  }
  await until(() => descendants().length === 0, 5000);
  const procs = new Set([...descendants(), ...processesUsing([prefix])]);
  const left = filesLeft([prefix]);
  if (left.length) failures.push(`files left: ${left.join(", ")}`);
  const row: ScenarioResult = {
    scenario: "backpressure",
    runs: 1,
    passed: failures.length === 0 ? 1 : 0,
    detect_p50_ms: null,
    detect_p95_ms: null,
    procs_left: procs.size,
    shm_left: left.length,
    rss_growth_mb: null,
    failures: failures.length ? [failures.join("; ")] : [],
    extra: {
      seed,
      messages,
      node_sleep_ms: SLEEP_MS,
      seconds_under_load: Number(seconds.toFixed(1)),
      input_peak_occupancy: maxOccupancy,
      shm_peak_bytes: peak,
      shm_bound_bytes: bound(),
      timer_worst_late_ms: Number(timers.worstMs.toFixed(1)),
      timer_ticks: timers.ticks,
      timer_worst_gap_cpu_ms: Number(timers.worstCpuMs.toFixed(1)),
      timer_worst_gap_runqueue_ms: Number(timers.worstRunqueueMs.toFixed(1)),
      timer_worst_blocked_ms: Number(timers.worstBlockedMs.toFixed(1)),
    },
  };
  return [row];
};
