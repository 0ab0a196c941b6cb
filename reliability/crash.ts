/**
 * Reliability scenario 1 (issue 13): crash torture and the Deno kill -9.
 *
 * `crash_torture`: a random 3-5 node pipeline (a chain or a tree with
 * fan-out) whose random victim dies at a random moment (before it connects,
 * during init, right after ready, mid-stream under load) by a random method
 * (kill -9, a real segfault, `os._exit`, an uncaught exception, a real
 * MemoryError, a hang in init). Each run checks the named error (class, node,
 * exit code or signal), the detection latency (victim's own timestamp, or the
 * moment Deno sent the kill, to the session's `failed` event), that no process
 * and no file of the session is left after close, and that the next session
 * works. CI-sized: every method x moment that makes sense once, plus random
 * ones (24 runs); `--full`: 200. The seed is printed; `RELIABILITY_SEED`
 * replays it.
 *
 * `deno_kill9`: a child Deno program (fixtures/streaming_owner.ts) streams
 * through a session and is killed with -9 mid-stream; all its processes must
 * be gone within 2 s, and the next `ChannelContext.create()` sweeps its files.
 * CI-sized: 3 runs each with the fork server on and off; `--full`: 20 each.
 *
 * @module
 */
import { rng } from "../tests/support/random.ts";
import {
  descendants,
  filesLeft,
  percentile,
  processesUsing,
  rssMb,
  type Scenario,
  type ScenarioOptions,
  type ScenarioResult,
  sleep,
  until,
} from "./_scenario.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import type { Session } from "../control/session.ts";
import { Pipeline } from "../pipeline/mod.ts";
import { binary, type TextData } from "../data/runtime_data/mod.ts";
import { text } from "../data/runtime_data/mod.ts";
import { ChannelContext } from "../data/channel/mod.ts";
import {
  NodeInitError,
  type NodeProcessError,
  ProcessCrashError,
} from "../errors.ts";

/** How a victim dies. */
export type Method =
  | "kill9"
  | "sigsegv"
  | "os_exit"
  | "exception"
  | "memory_error"
  | "hang_in_init";
/** When it dies. */
export type Moment =
  | "before_connect"
  | "during_init"
  | "after_ready"
  | "mid_stream";

/** Every method x moment that makes sense (see reliability/nodes/crash_nodes.py). */
export const COMBOS: ReadonlyArray<[Method, Moment]> = [
  // From outside, as soon as the session has the victim's pid.
  ["kill9", "before_connect"],
  ["sigsegv", "before_connect"],
  ["kill9", "during_init"],
  ["kill9", "after_ready"],
  ["kill9", "mid_stream"],
  ["sigsegv", "during_init"],
  ["sigsegv", "after_ready"],
  ["sigsegv", "mid_stream"],
  ["os_exit", "during_init"],
  ["os_exit", "after_ready"],
  ["os_exit", "mid_stream"],
  ["exception", "during_init"],
  ["exception", "mid_stream"],
  ["memory_error", "during_init"],
  // A MemoryError in process() is a process_error: the node lives on.
  ["memory_error", "mid_stream"],
  ["hang_in_init", "during_init"],
];

const MODULES = (root: string) => ({
  modules: ["crash_nodes"],
  modulePaths: [`${root}reliability/nodes`],
});
/**
 * The init timeout of the hang runs (the others get 30 s), with the fork
 * server and without. It must leave the other nodes time to finish their
 * start-up under load (3-5 spawned interpreters on 2 busy cores took more
 * than 1.5 s): else they are named too, and the error's node may be theirs.
 */
const HANG_INIT_TIMEOUT_SECS = { fork: 2, spawn: 5 };
/** Most time from a crash to the `failed` event before a run fails. */
const DETECT_BOUND_MS = 5000;
/** How long another session's sweeper may hold our files (see crashRun). */
const SETTLE_MS = 2000;
/** Most time any one wait of a run may take (no hangs). */
const WAIT_MS = 15_000;

/** A wall clock with sub-millisecond resolution, comparable to Python's time.time(). */
function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** One planned run. */
interface Plan {
  index: number;
  method: Method;
  moment: Moment;
  forkServer: boolean;
  nodes: number;
  /** parents[i] is node i's parent (node 0 reads the pipeline input). */
  parents: number[];
  victim: number;
  delayMs: number;
  at: number;
  code: number;
  blocking: boolean;
  /** Payload of each streamed message (mid_stream). */
  payloadBytes: number;
}

function plan(
  random: () => number,
  index: number,
  combo?: [Method, Moment],
): Plan {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const [method, moment] = combo ?? pick(COMBOS);
  const nodes = 3 + Math.floor(random() * 3);
  const chain = random() < 0.5;
  const parents = [-1];
  for (let i = 1; i < nodes; i++) {
    parents.push(chain ? i - 1 : Math.floor(random() * i));
  }
  return {
    index,
    method,
    moment,
    forkServer: random() < 0.6,
    nodes,
    parents,
    victim: Math.floor(random() * nodes),
    delayMs: Math.floor(random() * 150),
    at: 1 + Math.floor(random() * 40),
    code: 2 + Math.floor(random() * 100),
    blocking: random() < 0.5,
    payloadBytes: pick([256, 4096, 65536, 1 << 20]),
  };
}

function describe(p: Plan): string {
  const shape = p.parents.slice(1).map((parent, i) => `${parent}>${i + 1}`)
    .join(",");
  const when = p.moment === "mid_stream"
    ? ` at message ${p.at} of ${p.payloadBytes} B`
    : p.moment === "before_connect"
    ? ""
    : ` after ${p.delayMs} ms`;
  const server = p.forkServer ? "on" : "off";
  return `run ${p.index} (${p.method} ${p.moment}${when}, victim n${p.victim} of ${p.nodes} [${shape}], fork server ${server})`;
}

/** The pipeline of `p`; returns it with its output names. */
function pipelineOf(p: Plan, stamp: string): [Pipeline, string[]] {
  const pipeline = new Pipeline();
  for (let i = 0; i < p.nodes; i++) {
    const victim = i === p.victim;
    pipeline.addNode("crash_node", `n${i}`, {
      method: victim ? p.method : "none",
      moment: victim ? p.moment : "none",
      delay_ms: p.delayMs,
      at: p.at,
      code: p.code,
      stamp: victim ? stamp : "",
      blocking: victim && p.blocking ? 1 : 0,
    });
  }
  pipeline.addInput("in", "n0", "in");
  const outputs: string[] = [];
  for (let i = 1; i < p.nodes; i++) {
    pipeline.connect(`n${p.parents[i]}`, "out", `n${i}`, "in");
  }
  for (let i = 0; i < p.nodes; i++) {
    if (!p.parents.includes(i)) {
      outputs.push(`o${i}`);
      pipeline.addOutput(`o${i}`, `n${i}`, "out");
    }
  }
  return [pipeline, outputs];
}

function pidAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

function readStamp(path: string): number | undefined {
  try {
    const v = Number(Deno.readTextFileSync(path));
    return Number.isFinite(v) && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves with `promise`'s value, or undefined after `ms`. */
async function within<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Drains every output until the session ends; counts what came. */
function drain(session: Session, outputs: string[]): {
  received: () => number;
  done: Promise<void>;
} {
  let n = 0;
  const done = Promise.all(outputs.map(async (o) => {
    try {
      for await (const _ of session.receive(o)) n++;
    } catch { /* the session's failure: checked elsewhere */ }
  })).then(() => {});
  return { received: () => n, done };
}

/** What one run found. */
interface RunResult {
  ok: boolean;
  problems: string[];
  detectMs?: number;
  procsLeft: number;
  shmLeft: number;
  /** before_connect: the victim had not said hello when it was killed. */
  reallyBeforeHello?: boolean;
  /** What passed but is worth counting (e.g. `others_late`). */
  notes?: string[];
}

/** The error the run expects, as a check of the session's failure. */
function checkError(
  p: Plan,
  error: unknown,
  victim: string,
  notes: string[],
): string[] {
  const problems: string[] = [];
  const name = (error as Error)?.constructor?.name ?? String(error);
  const crash = (signal: string | null, code: number | null) => {
    if (!(error instanceof ProcessCrashError)) {
      problems.push(`expected ProcessCrashError, got ${name}: ${error}`);
      return;
    }
    if (error.nodeId !== victim) {
      problems.push(`the error names "${error.nodeId}", not "${victim}"`);
    }
    if (error.signal !== signal || error.exitCode !== code) {
      problems.push(
        `expected signal ${signal} / code ${code}, got ${error.signal} / ${error.exitCode}`,
      );
    }
  };
  const init = (text: string | undefined, timedOut: boolean) => {
    if (!(error instanceof NodeInitError)) {
      problems.push(`expected NodeInitError, got ${name}: ${error}`);
      return;
    }
    // A timeout names every node still starting: on a loaded machine a
    // spawned runner may still be importing when the victim's timeout fires,
    // and the error's node may be that one. The victim must still be named.
    const alsoLate = timedOut && error.nodeId !== victim &&
      error.message.includes(`"${victim}"`) &&
      error.message.includes(`"${error.nodeId}"`);
    if (alsoLate) notes.push("others_late");
    else if (error.nodeId !== victim) {
      problems.push(
        `the error names "${error.nodeId}", not "${victim}": ${error.message}`,
      );
    }
    if (error.timedOut !== timedOut) {
      problems.push(`timedOut is ${error.timedOut}`);
    }
    if (text && !error.message.includes(text)) {
      problems.push(`the message lacks "${text}": ${error.message}`);
    }
  };
  switch (p.method) {
    case "kill9":
      crash("SIGKILL", null);
      break;
    case "sigsegv":
      crash("SIGSEGV", null);
      break;
    case "os_exit":
      crash(null, p.code);
      break;
    case "exception":
      if (p.moment === "during_init") {
        init("initialize() failed on purpose", false);
      } else crash(null, 1);
      break;
    case "memory_error":
      init("MemoryError", false);
      break;
    case "hang_in_init":
      init(undefined, true);
      break;
  }
  return problems;
}

/** The next session on `ex` works: one message through one node. */
async function nextSessionWorks(
  ex: MultiprocessExecutor,
  root: string,
): Promise<string | undefined> {
  const pipeline = new Pipeline().addNode("crash_node", "n")
    .addInput("in", "n", "in").addOutput("out", "n", "out");
  let session: Session | undefined;
  try {
    session = await ex.createSession(pipeline, {
      ...MODULES(root),
      printLogs: false,
    });
    const s = session;
    const ok = await within(
      (async () => {
        await s.initialize();
        const out = s.receive("out");
        await s.send("in", text("next"));
        const got = await out.next();
        // Read before return(): it releases the sample.
        const echoed = !got.done &&
          (got.value.data as TextData).text === "next";
        await out.return();
        return echoed;
      })(),
      WAIT_MS,
    );
    if (!ok) return "the next session did not echo within its bound";
    return undefined;
  } catch (e) {
    return `the next session failed: ${e}`;
  } finally {
    await session?.close();
  }
}

/** One crash torture run. */
async function crashRun(
  p: Plan,
  ex: MultiprocessExecutor,
  options: ScenarioOptions,
  stampDir: string,
  baseline: Set<number>,
): Promise<RunResult> {
  const problems: string[] = [];
  const notes: string[] = [];
  const stamp = `${stampDir}/run${p.index}`;
  const [pipeline, outputs] = pipelineOf(p, stamp);
  const victim = `n${p.victim}`;
  let failedAt: number | undefined;
  let failure: unknown;
  const nodeErrors: Array<{ at: number; error: NodeProcessError }> = [];
  let helloSeen = false;
  let session: Session | undefined;
  let prefix: string | undefined;
  let pids: number[] = [];
  let crashAt: number | undefined;
  let reallyBeforeHello: boolean | undefined;
  try {
    session = await ex.createSession(pipeline, {
      ...MODULES(options.root),
      printLogs: false,
      onProgress: (e) => {
        if (e.nodeId === victim && e.phase !== "starting") helloSeen = true;
      },
      onError: (error) => nodeErrors.push({ at: wallMs(), error }),
    });
    const s = session;
    prefix = s.isolation.prefix;
    s.addEventListener("failed", (e) => {
      failedAt ??= wallMs();
      failure = (e as CustomEvent).detail;
    });
    if (s.failure) {
      // Failed inside createSession (before a listener could hear it).
      failedAt = wallMs();
      failure = s.failure;
    }
    pids = s.status().map((n) => n.pid).filter((x) => x !== undefined);
    if (p.moment === "before_connect") {
      const pid = s.status()[p.victim].pid!;
      reallyBeforeHello = !helloSeen;
      crashAt = wallMs();
      Deno.kill(pid, p.method === "kill9" ? "SIGKILL" : "SIGSEGV");
    }
    const init = s.initialize().then(() => true, () => false);
    if (p.moment === "mid_stream") {
      const ready = await within(init, WAIT_MS);
      if (!ready) problems.push(`not ready: ${s.failure ?? "init timed out"}`);
      else {
        const flow = drain(s, outputs);
        const payload = binary(new Uint8Array(p.payloadBytes));
        const survives = p.method === "memory_error";
        const deadline = performance.now() + WAIT_MS;
        let sent = 0;
        try {
          // Streams until the failure (or, for a survivable error, until it
          // was reported and 20 messages more went through).
          while (performance.now() < deadline) {
            await s.send("in", payload);
            sent++;
            if (survives && nodeErrors.length && sent > p.at + 20) break;
          }
        } catch { /* the failure */ }
        if (survives) {
          const before = flow.received();
          const more = await until(() => flow.received() >= before + 1, 5000);
          if (s.failure) problems.push(`the session failed: ${s.failure}`);
          if (!nodeErrors.length) problems.push("no MemoryError was reported");
          else {
            const e = nodeErrors[0].error;
            if (e.nodeId !== victim) problems.push(`error names ${e.nodeId}`);
            if (!e.message.includes("MemoryError")) {
              problems.push(`not a MemoryError: ${e.message}`);
            }
            const crashed = readStamp(stamp);
            if (crashed) failedAt = nodeErrors[0].at, crashAt = crashed;
          }
          if (!more && !s.failure) {
            problems.push("the stream stopped after the MemoryError");
          }
        }
        await s.close();
        await within(flow.done, WAIT_MS);
      }
    } else {
      await within(init, WAIT_MS);
      if (p.moment === "after_ready" && !s.ready && !s.failure) {
        problems.push("neither ready nor failed");
      }
    }
    if (p.method !== "memory_error" || p.moment !== "mid_stream") {
      await until(() => failure !== undefined, WAIT_MS);
      if (failure === undefined) problems.push("the session did not fail");
      else problems.push(...checkError(p, failure, victim, notes));
      crashAt ??= readStamp(stamp);
      if (p.method === "hang_in_init") {
        // The crash is the timeout itself: measure how late it fired.
        crashAt = undefined;
      }
    }
  } catch (e) {
    problems.push(`the run threw: ${(e as Error).stack ?? e}`);
  } finally {
    await session?.close().catch(() => {});
  }
  // Nothing of the session left: its processes, and its files. Other
  // sessions' sweepers open every isolation's lock file for a moment (and
  // may be removing these files right now): a user or a file that goes
  // within SETTLE_MS is theirs, not a leftover.
  if (prefix) {
    await until(() => processesUsing([prefix!]).length === 0, SETTLE_MS);
    await until(() => filesLeft([prefix!]).length === 0, SETTLE_MS);
  }
  const stray = [
    ...pids.filter(pidAlive),
    ...(prefix ? processesUsing([prefix]) : []),
    ...descendants().filter((pid) => !baseline.has(pid)),
  ];
  const procsLeft = new Set(stray).size;
  if (procsLeft) problems.push(`processes left: ${[...new Set(stray)]}`);
  const files = prefix ? filesLeft([prefix]) : [];
  if (files.length) problems.push(`files left: ${files.join(" ")}`);
  let detectMs: number | undefined;
  if (crashAt !== undefined && failedAt !== undefined) {
    detectMs = Math.max(0, failedAt - crashAt);
    if (detectMs > DETECT_BOUND_MS) {
      problems.push(`detected after ${detectMs.toFixed(0)} ms`);
    }
  } else if (
    p.method !== "hang_in_init" && failure !== undefined &&
    !(p.method === "exception" && p.moment === "during_init")
  ) {
    problems.push("no crash timestamp");
  }
  const next = await nextSessionWorks(ex, options.root);
  if (next) problems.push(next);
  return {
    ok: problems.length === 0,
    problems,
    detectMs,
    procsLeft,
    shmLeft: files.length,
    reallyBeforeHello,
    notes,
  };
}

/** The `crash_torture` row alone. */
export async function crashTorture(
  options: ScenarioOptions,
): Promise<ScenarioResult> {
  const seed = Number(Deno.env.get("RELIABILITY_SEED") ?? (Date.now() % 1e9));
  options.log(
    `crash_torture: seed ${seed} (RELIABILITY_SEED=${seed} replays it)`,
  );
  const random = rng(seed);
  const runs = options.full ? 200 : 24;
  const plans: Plan[] = [];
  for (let i = 0; i < runs; i++) {
    plans.push(plan(random, i, i < COMBOS.length ? COMBOS[i] : undefined));
  }
  // Both fork server modes see each combination over the CI run.
  const stampDir = await Deno.makeTempDir({ prefix: "rmp-crash-stamps-" });
  const executors = new Map<string, MultiprocessExecutor>();
  const executorFor = (p: Plan) => {
    const key = `${p.forkServer}/${p.method === "hang_in_init"}`;
    let ex = executors.get(key);
    if (!ex) {
      ex = new MultiprocessExecutor({
        python: { executable: options.python },
        initTimeoutSecs: p.method === "hang_in_init"
          ? HANG_INIT_TIMEOUT_SECS[p.forkServer ? "fork" : "spawn"]
          : 30,
        forkServer: p.forkServer,
      });
      executors.set(key, ex);
    }
    return ex;
  };
  const failures: string[] = [];
  const detect: number[] = [];
  let passed = 0;
  let procsLeft = 0;
  let shmLeft = 0;
  let beforeHello = 0;
  let beforeConnectRuns = 0;
  let othersLate = 0;
  let rssStart: number | undefined;
  try {
    for (const p of plans) {
      const ex = executorFor(p);
      // Warm the executor (its fork server) so it is part of the baseline.
      const warm = await nextSessionWorks(ex, options.root);
      if (warm) {
        failures.push(`${describe(p)}: before the run, ${warm}`);
        continue;
      }
      rssStart ??= rssMb();
      const baseline = new Set(descendants());
      const r = await crashRun(p, ex, options, stampDir, baseline);
      if (r.ok) passed++;
      else failures.push(`${describe(p)}: ${r.problems.join("; ")}`);
      if (r.detectMs !== undefined) detect.push(r.detectMs);
      if (r.reallyBeforeHello !== undefined) {
        beforeConnectRuns++;
        if (r.reallyBeforeHello) beforeHello++;
      }
      procsLeft += r.procsLeft;
      shmLeft += r.shmLeft;
      if (r.notes?.includes("others_late")) othersLate++;
      if ((p.index + 1) % 8 === 0) {
        options.log(
          `crash_torture: ${p.index + 1}/${runs} runs, ${passed} passed`,
        );
      }
    }
  } finally {
    for (const ex of executors.values()) await ex.close();
    await Deno.remove(stampDir, { recursive: true }).catch(() => {});
  }
  return {
    scenario: "crash_torture",
    runs,
    passed,
    detect_p50_ms: percentile(detect, 50),
    detect_p95_ms: percentile(detect, 95),
    procs_left: procsLeft,
    shm_left: shmLeft,
    rss_growth_mb: rssStart === undefined ? null : rssMb() - rssStart,
    failures,
    extra: {
      seed,
      combos: COMBOS.length,
      before_connect_killed_before_hello: `${beforeHello}/${beforeConnectRuns}`,
      hang_timeouts_naming_other_late_nodes_too: othersLate,
    },
  };
}

/** What the streaming owner prints once it streams. */
interface OwnerLine {
  prefix: string;
  pids: number[];
  received: number;
}

async function readLine(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<string | undefined> {
  const decoder = new TextDecoder();
  let pending = "";
  const deadline = performance.now() + ms;
  while (!pending.includes("\n")) {
    const left = deadline - performance.now();
    if (left <= 0) return undefined;
    const chunk = await within(reader.read(), left);
    if (!chunk || chunk.done) return undefined;
    pending += decoder.decode(chunk.value, { stream: true });
  }
  return pending.slice(0, pending.indexOf("\n"));
}

async function denoKill9Run(
  forkServer: boolean,
  options: ScenarioOptions,
): Promise<RunResult & { sweptByOthers?: boolean }> {
  const problems: string[] = [];
  const script = `${options.root}reliability/fixtures/streaming_owner.ts`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, forkServer ? "fork" : "spawn"],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let gone: number[] = [];
  let detectMs: number | undefined;
  let info: OwnerLine | undefined;
  let sweptByOthers = false;
  try {
    const line = await readLine(reader, 30_000);
    if (!line) {
      problems.push("the owner printed nothing within 30 s");
      return { ok: false, problems, procsLeft: 0, shmLeft: 0, sweptByOthers };
    }
    info = JSON.parse(line) as OwnerLine;
    // Every process of the owner: its runners, its fork server, and anything
    // a runner started.
    const all = new Set([...info.pids, ...descendants(child.pid)]);
    await sleep(50 + Math.random() * 200);
    const killedAt = performance.now();
    Deno.kill(child.pid, "SIGKILL");
    await child.status;
    const allGone = await until(
      () => [...all].every((p) => !pidAlive(p)),
      2000,
    );
    detectMs = performance.now() - killedAt;
    gone = [...all].filter(pidAlive);
    if (!allGone) {
      problems.push(`still alive 2 s after the kill: ${gone}`);
      // Not left behind for the others on this machine.
      for (const pid of gone) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone meanwhile */ }
      }
      await until(() => gone.every((p) => !pidAlive(p)), 2000);
    }
    // The owner's processes are checked above; any other user is another
    // session's sweeper with the lock file open for a moment.
    const prefix = info.prefix;
    await until(
      () => processesUsing([prefix]).every((p) => !all.has(p)),
      SETTLE_MS,
    );
    const using = processesUsing([prefix]).filter((p) => all.has(p));
    if (using.length) {
      problems.push(`processes still use the isolation: ${using}`);
    }
    // Another session on this machine may have swept them already (then
    // the sweep below proves nothing, but nothing failed either).
    sweptByOthers = filesLeft([prefix]).length === 0;
    // A sweeper of another session may hold the lock at the moment ours
    // looks (it skips a lock it cannot take): the next start, or the one
    // after it, must remove them, within the settle time.
    const deadline = performance.now() + SETTLE_MS;
    while (filesLeft([prefix]).length > 0 && performance.now() < deadline) {
      const ctx = await ChannelContext.create();
      await ctx.close();
      if (filesLeft([prefix]).length > 0) await sleep(100);
    }
    const left = filesLeft([prefix]);
    if (left.length) {
      problems.push(`the next context did not sweep: ${left.join(" ")}`);
    }
  } catch (e) {
    problems.push(`the run threw: ${(e as Error).stack ?? e}`);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await reader.cancel().catch(() => {});
  }
  const shmLeft = info ? filesLeft([info.prefix]).length : 0;
  const procsLeft = info ? [...info.pids].filter(pidAlive).length : 0;
  return {
    ok: problems.length === 0,
    problems,
    detectMs,
    procsLeft,
    shmLeft,
    sweptByOthers,
  };
}

/** The `deno_kill9` row alone. */
export async function denoKill9(
  options: ScenarioOptions,
): Promise<ScenarioResult> {
  const perMode = options.full ? 20 : 3;
  const failures: string[] = [];
  const detect: number[] = [];
  const byMode: Record<string, number[]> = { fork: [], spawn: [] };
  let passed = 0;
  let procsLeft = 0;
  let shmLeft = 0;
  let sweptByOthers = 0;
  for (let i = 0; i < perMode * 2; i++) {
    const forkServer = i % 2 === 0;
    const r = await denoKill9Run(forkServer, options);
    if (r.ok) passed++;
    else {
      failures.push(
        `run ${i} (fork server ${forkServer ? "on" : "off"}): ${
          r.problems.join("; ")
        }`,
      );
    }
    if (r.detectMs !== undefined) {
      detect.push(r.detectMs);
      byMode[forkServer ? "fork" : "spawn"].push(r.detectMs);
    }
    procsLeft += r.procsLeft;
    shmLeft += r.shmLeft;
    if (r.sweptByOthers) sweptByOthers++;
  }
  return {
    scenario: "deno_kill9",
    runs: perMode * 2,
    passed,
    detect_p50_ms: percentile(detect, 50),
    detect_p95_ms: percentile(detect, 95),
    procs_left: procsLeft,
    shm_left: shmLeft,
    rss_growth_mb: null,
    failures,
    extra: {
      swept_by_another_session_first: sweptByOthers,
      fork_server_on_max_ms: Math.max(...byMode.fork).toFixed(1),
      fork_server_off_max_ms: Math.max(...byMode.spawn).toFixed(1),
    },
  };
}

/** The two rows: `crash_torture` and `deno_kill9`. */
export const scenario: Scenario = async (options) => [
  await crashTorture(options),
  await denoKill9(options),
];
