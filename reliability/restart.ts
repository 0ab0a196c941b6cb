/**
 * Reliability scenario `crash_restart`: crash torture rerun with the restart
 * policy `on-failure`. A random node of a 3-5 node chain dies at a random
 * moment of a stream (kill -9 from outside, a segfault, `os._exit`, SIGABRT,
 * a stopped process caught by the ping check, a hung `process()` caught by
 * `process_timeout_secs`). Every crash must restart that node (one
 * `restarted` event naming it), the session must keep streaming, and every
 * message must be accounted for: received at the output, in order and once,
 * or reported in a `lost` event (sent = received + lost). Nothing of the
 * session is left after it closes. Detection latency: from the crash (the
 * node's own CLOCK_MONOTONIC stamp, or the kill) to the `restarted` event, for
 * crashes that end the process; stopped and hung nodes (found by the 1 s ping
 * and process() bounds) are reported apart.
 *
 * @module
 */
import { rng } from "../tests/support/random.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import type { LostEvent, RestartedEvent, Session } from "../control/session.ts";
import { monotonicNs } from "../data/native.ts";
import { text } from "../data/runtime_data/mod.ts";
import { Pipeline } from "../pipeline/mod.ts";
import {
  descendants,
  filesLeft,
  fullGc,
  percentile,
  processesUsing,
  rssMb,
  type ScenarioOptions,
  type ScenarioResult,
  sleep,
  until,
} from "./_scenario.ts";

const METHODS = ["kill9", "segv", "exit", "abort", "stop", "hang"] as const;
type Method = typeof METHODS[number];

interface Crash {
  at: number;
  victim: string;
  method: Method;
}

/** One run: returns what failed (empty: passed) and the detection latencies. */
async function run(
  executor: MultiprocessExecutor,
  options: ScenarioOptions,
  random: () => number,
  dir: string,
  prefixes: Set<string>,
): Promise<{ failures: string[]; detectMs: number[]; healthMs: number[] }> {
  const nodes = 3 + Math.floor(random() * 3);
  const total = 300;
  const ids = Array.from({ length: nodes }, (_, i) => `r${i}`);
  const pipeline = new Pipeline();
  for (const id of ids) {
    pipeline.addNode("crash_relay", id, {
      dir,
      delay_ms: Math.floor(random() * 3),
    }, {
      restart: { policy: "on-failure", maxRestarts: 10, backoffMs: 20 },
      processTimeoutSecs: 1,
      pingTimeoutSecs: 1,
    });
  }
  for (let i = 1; i < nodes; i++) {
    pipeline.connect(ids[i - 1], "out", ids[i], "in");
  }
  pipeline.addInput("in", ids[0], "in").addOutput(
    "out",
    ids[nodes - 1],
    "out",
  );
  const crashes: Crash[] = Array.from(
    { length: 1 + Math.floor(random() * 2) },
    () => ({
      at: 20 + Math.floor(random() * (total - 60)),
      victim: ids[Math.floor(random() * nodes)],
      method: METHODS[Math.floor(random() * METHODS.length)],
    }),
  ).sort((a, b) => a.at - b.at);
  const what = `${nodes} nodes, crashes ${
    crashes.map((c) => `${c.victim} by ${c.method} at message ${c.at}`).join(
      ", ",
    )
  }`;
  const failures: string[] = [];
  const detectMs: number[] = [];
  const healthMs: number[] = [];
  const session: Session = await executor.createSession(pipeline, {
    modules: ["restart_nodes"],
    modulePaths: [`${options.root}reliability/nodes`],
    printLogs: false,
  });
  prefixes.add(session.isolation.prefix);
  const restarted: Array<RestartedEvent & { atNs: bigint }> = [];
  const lost: LostEvent[] = [];
  const errors: string[] = [];
  session.addEventListener("restarted", (e) => {
    restarted.push({
      ...(e as CustomEvent<RestartedEvent>).detail,
      atNs: monotonicNs(),
    });
  });
  session.addEventListener(
    "lost",
    (e) => lost.push((e as CustomEvent<LostEvent>).detail),
  );
  session.addEventListener(
    "error",
    (e) => errors.push(String((e as CustomEvent<Error>).detail.message)),
  );
  session.addEventListener("unhealthy", () => {});
  const killedAt = new Map<number, bigint>();
  try {
    await session.initialize();
    let received = 0;
    let lastSeen = -1;
    const reader = (async () => {
      for await (const sample of session.receive("out")) {
        received++;
        const data = sample.data;
        if (data.kind !== "text") continue;
        if (data.text.startsWith("m:")) {
          const i = Number(data.text.slice(2));
          if (i <= lastSeen) {
            failures.push(`${what}: message ${i} after ${lastSeen}`);
          }
          lastSeen = i;
        }
      }
    })();
    reader.catch((e) => {
      failures.push(`${what}: receiving failed: ${(e as Error).stack ?? e}`);
    });
    let sent = 0;
    let next = 0;
    for (let i = 0; i < total; i++) {
      // Two crashes may fall on the same message: one after the other.
      while (crashes[next]?.at === i) {
        const crash = crashes[next];
        next++;
        // The previous crash's restart is done: this one hits a live node
        // (a message sent to a restarting node is lost, and counted).
        await until(
          () =>
            restarted.length >= next - 1 &&
            session.status().every((n) => n.state === "ready"),
          20_000,
        );
        if (crash.method === "kill9") {
          const pid = session.status().find((n) => n.nodeId === crash.victim)
            ?.pid;
          if (pid !== undefined) {
            killedAt.set(restarted.length, monotonicNs());
            Deno.kill(pid, "SIGKILL");
          }
        } else {
          await session.send(
            "in",
            text(`crash:${crash.victim}:${crash.method}`),
          );
          sent++;
        }
      }
      await session.send("in", text(`m:${i}`));
      sent++;
    }
    // Every restart done, then flush: the restarted nodes' first messages
    // report what their dead processes had not finished.
    const settled = () =>
      restarted.length >= crashes.length &&
      session.status().every((n) =>
        n.state === "ready" || n.state === "processing"
      );
    if (!await until(settled, 20_000)) {
      failures.push(
        `${what}: ${restarted.length} restarts, states ${
          session.status().map((n) => `${n.nodeId}=${n.state}`).join(" ")
        }`,
      );
    }
    const accounted = () => received + lost.reduce((n, e) => n + e.count, 0);
    for (let f = 0; f < 3 * nodes && accounted() < sent; f++) {
      await session.send("in", text(`f:${f}`));
      sent++;
      await until(() => accounted() >= sent, 300);
    }
    await until(() => accounted() >= sent, 5_000);
    const lostTotal = lost.reduce((n, e) => n + e.count, 0);
    if (received + lostTotal !== sent) {
      failures.push(
        `${what}: sent ${sent}, received ${received}, reported lost ${lostTotal}`,
      );
    }
    if (restarted.length !== crashes.length) {
      failures.push(
        `${what}: ${restarted.length} restarted events for ${crashes.length} crashes`,
      );
    }
    for (const [i, crash] of crashes.entries()) {
      const event = restarted[i];
      if (!event) break;
      if (event.nodeId !== crash.victim) {
        failures.push(
          `${what}: restart ${
            i + 1
          } named "${event.nodeId}", not "${crash.victim}"`,
        );
      }
      const want = crash.method === "stop"
        ? "ping_timeout"
        : crash.method === "hang"
        ? "process_timeout"
        : "exit";
      if (event.reason !== want) {
        failures.push(`${what}: restart ${i + 1} reason ${event.reason}`);
      }
      let crashedAt = killedAt.get(i);
      if (crashedAt === undefined) {
        try {
          crashedAt = BigInt(
            Deno.readTextFileSync(`${dir}/${crash.victim}.crash`).trim(),
          );
        } catch { /* no stamp: no latency for this crash */ }
      }
      if (crashedAt !== undefined) {
        (want === "exit" ? detectMs : healthMs).push(
          Number(event.atNs - crashedAt) / 1e6,
        );
      }
      try {
        Deno.removeSync(`${dir}/${crash.victim}.crash`);
      } catch { /* a kill -9 wrote none */ }
    }
    if (session.failure) {
      failures.push(`${what}: the session failed: ${session.failure.message}`);
    }
    if (errors.length) failures.push(`${what}: node errors: ${errors[0]}`);
  } catch (e) {
    failures.push(`${what}: ${(e as Error).message}`);
  } finally {
    await session.close();
  }
  return { failures, detectMs, healthMs };
}

function round(x: number | null): number | string {
  return x === null ? "-" : Math.round(x * 10) / 10;
}

/** The scenario. */
export async function scenario(
  options: ScenarioOptions,
): Promise<ScenarioResult[]> {
  const runs = options.full ? 200 : 10;
  const seed = Number(Deno.env.get("RELIABILITY_SEED") ?? Date.now() % 1e9);
  options.log(`crash_restart: seed ${seed} (RELIABILITY_SEED to replay)`);
  const random = rng(seed);
  const dir = Deno.makeTempDirSync({ prefix: "rmp-restart-" });
  const prefixes = new Set<string>();
  const failures: string[] = [];
  const detectMs: number[] = [];
  const healthMs: number[] = [];
  let passed = 0;
  const gc = fullGc();
  let rssStart = rssMb();
  const executor = new MultiprocessExecutor({
    python: { executable: options.python },
    pingIntervalSecs: 0.2,
    initTimeoutSecs: 30,
  });
  try {
    for (let i = 0; i < runs; i++) {
      const result = await run(executor, options, random, dir, prefixes);
      if (i === 0) {
        gc();
        rssStart = rssMb();
      }
      detectMs.push(...result.detectMs);
      healthMs.push(...result.healthMs);
      if (result.failures.length === 0) passed++;
      failures.push(...result.failures.map((f) => `run ${i + 1}: ${f}`));
    }
  } finally {
    await executor.close();
    Deno.removeSync(dir, { recursive: true });
  }
  await until(
    () => processesUsing(prefixes).length === 0 && descendants().length === 0,
    3000,
  );
  await sleep(50);
  const left = filesLeft(prefixes);
  if (left.length) failures.push(`files left: ${left.slice(0, 5).join(", ")}`);
  return [{
    scenario: "crash_restart",
    runs,
    passed,
    detect_p50_ms: percentile(detectMs, 50),
    detect_p95_ms: percentile(detectMs, 95),
    procs_left: new Set([...processesUsing(prefixes), ...descendants()]).size,
    shm_left: left.length,
    rss_growth_mb: (gc(), rssMb() - rssStart),
    failures,
    extra: {
      seed,
      exit_crashes: detectMs.length,
      // A stopped or hung node is found by its health check: the bound is 1 s.
      health_crashes: healthMs.length,
      health_detect_p50_ms: round(percentile(healthMs, 50)),
      health_detect_p95_ms: round(percentile(healthMs, 95)),
    },
  }];
}
