/**
 * The numbered, checksummed stream of the load, backpressure and soak
 * scenarios (the format is in reliability/nodes/load_nodes.py): sizes from a
 * seeded PRNG, a sender, a checking reader, and the shared-memory and timer
 * probes those scenarios sample.
 *
 * @module
 */
import { rng } from "../tests/support/random.ts";
export { rng };
import { crc32 } from "node:zlib";
import { MultiprocessExecutor } from "../control/executor.ts";
import type { Session } from "../control/session.ts";
import { Pipeline } from "../pipeline/mod.ts";
import { binary, json } from "../data/runtime_data/mod.ts";
import type { BinaryData, JsonData } from "../data/runtime_data/mod.ts";
import type { NodeProcessError } from "../errors.ts";

/** The scenarios' node module. */
export function loadModules(root: string): {
  modules: string[];
  modulePaths: string[];
  printLogs: boolean;
} {
  return {
    modules: ["load_nodes"],
    modulePaths: [`${root}reliability/nodes`],
    printLogs: false,
  };
}

/** An executor on `python` (30 s init and publish bounds unless overridden). */
export function loadExecutor(
  python: string,
  extra: Record<string, unknown> = {},
): MultiprocessExecutor {
  return new MultiprocessExecutor({
    python: { executable: python },
    initTimeoutSecs: 30,
    publishTimeoutSecs: 30,
    ...extra,
  });
}

/** in -> `types[0]` -> ... -> out, the nodes named n1, n2, ... */
export function chain(
  types: string[],
  config: Record<string, number> = {},
): Pipeline {
  let p = new Pipeline();
  types.forEach((t, i) => p = p.addNode(t, `n${i + 1}`, config));
  p = p.addInput("in", "n1", "in");
  for (let i = 1; i < types.length; i++) {
    p = p.connect(`n${i}`, "out", `n${i + 1}`, "in");
  }
  return p.addOutput("out", `n${types.length}`, "out");
}

/** `count` sizes log-uniform on [1, max] bytes. */
export function logUniformSizes(
  random: () => number,
  count: number,
  max: number,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(Math.exp(random() * Math.log(max + 1)));
    out.push(Math.max(1, Math.min(max, n)));
  }
  return out;
}

/** Random bytes that payloads are sliced from (`size` + 1 MiB of them). */
export function randomPool(seed: number, size: number): Uint8Array {
  const words = new Uint32Array((size + (1 << 20) + 3) >>> 2);
  const random = rng(seed);
  for (let i = 0; i < words.length; i++) words[i] = random() * 4294967296;
  return new Uint8Array(words.buffer);
}

const PREFIX = 12;

/** Writes message `seq`'s number and checksum into `payload` (whose bytes
 * after the prefix are already there). */
function stamp(payload: Uint8Array, seq: number): void {
  const n = payload.length;
  if (n >= PREFIX) {
    const v = new DataView(payload.buffer, payload.byteOffset, PREFIX);
    v.setBigUint64(0, BigInt(seq), true);
    v.setUint32(8, crc32(payload.subarray(PREFIX)), true);
  } else {
    for (let i = 0; i < n; i++) payload[i] = (seq + 131 * i) & 0xff;
  }
}

/** What is wrong with message `seq` of payload `payload`, or null. */
export function checkPayload(seq: number, payload: Uint8Array): string | null {
  const n = payload.length;
  if (n >= PREFIX) {
    const v = new DataView(payload.buffer, payload.byteOffset, PREFIX);
    const own = Number(v.getBigUint64(0, true));
    if (own !== seq) return `header sequence ${seq} but payload says ${own}`;
    const want = v.getUint32(8, true);
    const got = crc32(payload.subarray(PREFIX));
    return got === want
      ? null
      : `#${seq} (${n} B): crc32 ${got.toString(16)}, payload says ${
        want.toString(16)
      }`;
  }
  for (let i = 0; i < n; i++) {
    if (payload[i] !== ((seq + 131 * i) & 0xff)) {
      return `#${seq} (${n} B): byte ${i} is ${payload[i]}`;
    }
  }
  return null;
}

/** Payloads at least this big are written in place (`session.allocate`). */
const IN_PLACE_MIN = 64 * 1024;

/** Sends messages 1..sizes.length on input "in", then the end marker. */
export async function sendStream(
  session: Session,
  sizes: number[],
  pool: Uint8Array,
  random: () => number,
): Promise<void> {
  for (let i = 0; i < sizes.length; i++) {
    const seq = i + 1;
    const n = sizes[i];
    const at = Math.floor(random() * (pool.length - n + 1));
    const source = pool.subarray(at, at + n);
    const options = { sequence: BigInt(seq) };
    if (n >= IN_PLACE_MIN) {
      const msg = await session.allocate("in", binary(source));
      msg.sequence = BigInt(seq); // allocate() leaves it unset (0)
      msg.data.set(source);
      stamp(msg.data, seq);
      await session.send("in", msg);
    } else {
      const payload = source.slice();
      stamp(payload, seq);
      await session.send("in", binary(payload, options));
    }
  }
  await session.send("in", json({ end: sizes.length }));
}

/** What the reader of a stream found. */
export interface StreamReport {
  /** Data messages received. */
  received: number;
  /** Problems (lost, duplicated, reordered, corrupted, missing end), the first 10. */
  problems: string[];
  /** The checking nodes' counts from the end marker. */
  hops: Array<{ node: string; received: number }>;
}

/** Reads output "out" until the end marker of a stream of `sizes`,
 * checking each message is the next one with the right size and checksum;
 * `onMessage` runs after each (e.g. to sleep). Each wait is at most `waitMs`. */
export async function readStream(
  session: Session,
  sizes: number[],
  waitMs: number,
  onMessage?: (seq: number) => void | Promise<void>,
): Promise<StreamReport> {
  const report: StreamReport = { received: 0, problems: [], hops: [] };
  const problem = (p: string) => {
    if (report.problems.length < 10) report.problems.push(p);
  };
  let last = 0;
  try {
    for await (const sample of session.receive("out", { timeoutMs: waitMs })) {
      const data = sample.data;
      if (data.kind === "json") {
        const end = (data as JsonData).value as {
          end: number;
          hops?: StreamReport["hops"];
        };
        report.hops = end.hops ?? [];
        break;
      }
      const seq = Number(data.sequence);
      report.received++;
      if (seq !== last + 1) {
        problem(
          seq <= last
            ? `#${seq} after #${last} (duplicated or reordered)`
            : `#${seq} after #${last} (${seq - last - 1} lost)`,
        );
      }
      last = Math.max(last, seq);
      const payload = (data as BinaryData).data;
      if (data.kind !== "binary") problem(`#${seq} is ${data.kind}`);
      else if (payload.length !== sizes[seq - 1]) {
        problem(`#${seq}: ${payload.length} B, sent ${sizes[seq - 1]} B`);
      } else {
        const bad = checkPayload(seq, payload);
        if (bad) problem(bad);
      }
      await onMessage?.(seq);
    }
  } catch (e) {
    problem(`reading stopped after #${last}: ${(e as Error).message}`);
  }
  if (last !== sizes.length) {
    problem(`the last message read was #${last} of ${sizes.length}`);
  }
  for (const hop of report.hops) {
    if (hop.received !== sizes.length) {
      problem(`node ${hop.node} counted ${hop.received} of ${sizes.length}`);
    }
  }
  return report;
}

/** Streams `sizes` through an initialized session and returns what went
 * wrong (empty: nothing lost, duplicated, reordered or corrupted). Node
 * errors are heard by `heard` (see {@linkcode listenErrors}). */
export async function streamOnce(
  session: Session,
  sizes: number[],
  pool: Uint8Array,
  seed: number,
  waitMs: number,
  onMessage?: (seq: number) => void | Promise<void>,
): Promise<{ problems: string[]; report: StreamReport }> {
  const problems: string[] = [];
  const sending = sendStream(session, sizes, pool, rng(seed)).catch((e) => {
    problems.push(`sending failed: ${(e as Error).message}`);
  });
  const report = await readStream(session, sizes, waitMs, onMessage);
  await sending;
  problems.push(...report.problems);
  return { problems, report };
}

/** Collects the node errors of a session (an unheard one would only be
 * printed; here each fails the run). */
export function listenErrors(): {
  errors: string[];
  onError: (e: NodeProcessError) => void;
} {
  const errors: string[] = [];
  return {
    errors,
    onError: (e) => {
      if (errors.length < 10) errors.push(`node ${e.nodeId}: ${e.message}`);
    },
  };
}

/** Number and total size of the /dev/shm files whose names start with one
 * of `prefixes` (every rmp file when `prefixes` is undefined). */
export function shmUsage(
  prefixes?: Iterable<string>,
): { files: number; bytes: number } {
  const wanted = prefixes ? [...prefixes] : ["rmp"];
  let files = 0;
  let bytes = 0;
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync("/dev/shm")];
  } catch { /* none */ }
  for (const e of entries) {
    if (!wanted.some((p) => e.name.startsWith(p))) continue;
    try {
      bytes += Deno.statSync(`/dev/shm/${e.name}`).size;
      files++;
    } catch { /* removed meanwhile */ }
  }
  return { files, bytes };
}

/** Entries under /tmp/rmp whose names start with one of `prefixes`
 * (recursively: the root's service files too). */
export function rmpEntries(prefixes?: Iterable<string>): number {
  const wanted = prefixes ? [...prefixes] : ["rmp"];
  const count = (dir: string): number => {
    let n = 0;
    try {
      for (const e of Deno.readDirSync(dir)) {
        n++;
        if (e.isDirectory) n += count(`${dir}/${e.name}`);
      }
    } catch { /* removed meanwhile */ }
    return n;
  };
  let n = 0;
  try {
    for (const e of Deno.readDirSync("/tmp/rmp")) {
      if (!wanted.some((p) => e.name.startsWith(p))) continue;
      n++;
      if (e.isDirectory) n += count(`/tmp/rmp/${e.name}`);
    }
  } catch { /* none */ }
  return n;
}

/** The main thread's time on a CPU and waiting for one (run queue), ms,
 * from /proc (zeros where it is unreadable). */
function schedstat(): { cpuMs: number; runqueueMs: number } {
  try {
    const [cpu, wait] = Deno.readTextFileSync(
      `/proc/${Deno.pid}/task/${Deno.pid}/schedstat`,
    ).split(" ").map(Number);
    return { cpuMs: cpu / 1e6, runqueueMs: wait / 1e6 };
  } catch {
    return { cpuMs: 0, runqueueMs: 0 };
  }
}

/** What a {@linkcode timerProbe} measured. */
export interface TimerReport {
  /** The worst lateness of a tick, ms. */
  worstMs: number;
  /** Ticks seen. */
  ticks: number;
  /** During the worst gap: the main thread's CPU time (a busy event loop)
   * and its run-queue wait (a machine with no CPU to spare), ms. */
  worstCpuMs: number;
  worstRunqueueMs: number;
  /** The worst lateness less the run-queue wait in that gap: time the
   * event loop was blocked or busy (not the machine's doing), ms. */
  worstBlockedMs: number;
}

/** A `periodMs` `setInterval` that records how late each tick was, and
 * for the worst gap whether the main thread was running (busy event loop)
 * or waiting for a CPU; `stop()` returns the report. */
export function timerProbe(periodMs = 10): { stop: () => TimerReport } {
  let last = performance.now();
  let lastSched = schedstat();
  const report: TimerReport = {
    worstMs: 0,
    ticks: 0,
    worstCpuMs: 0,
    worstRunqueueMs: 0,
    worstBlockedMs: 0,
  };
  const id = setInterval(() => {
    const now = performance.now();
    const sched = schedstat();
    const late = now - last - periodMs;
    if (late > report.worstMs) {
      report.worstMs = late;
      report.worstCpuMs = sched.cpuMs - lastSched.cpuMs;
      report.worstRunqueueMs = sched.runqueueMs - lastSched.runqueueMs;
    }
    report.worstBlockedMs = Math.max(
      report.worstBlockedMs,
      late - (sched.runqueueMs - lastSched.runqueueMs),
    );
    last = now;
    lastSched = sched;
    report.ticks++;
  }, periodMs);
  return {
    stop: () => {
      clearInterval(id);
      return { ...report };
    },
  };
}
