/**
 * `deno task bench:hops [--json] [--quick] [--no-dora] [--gap-ms N]`: the
 * hop benchmark of issue 9, in one run.
 *
 * Every hop is paced (one message at a time, each acknowledged before the
 * next, `--gap-ms` apart), produced in place (`Session.allocate` in Deno,
 * `self.allocate` in a node, a loan for the raw hop), stamped with
 * CLOCK_MONOTONIC when the producer hands it over (the publisher stamps a
 * zero `timestampNs` at send time) and read when the consumer holds the
 * whole payload (it touches one byte):
 *
 * - `raw_d2p` / `raw_p2d`: the raw channel hop, no session, as in
 *   `bench/ipc_report.ts` (Deno <-> `bench/ipc_peer.py`).
 * - `session_d2p`: Deno -> a `hop_sink` node, read when its `process()`
 *   starts.
 * - `session_p2p`: a `hop_source` node -> a `hop_sink` node.
 * - `session_p2d`: a `hop_source` node -> Deno, read when `receive()` yields.
 * - `chain4`: four nodes, `hop_source` -> `hop_relay` -> `hop_relay` ->
 *   `hop_sink` (three node -> node hops; the relays allocate their output
 *   in place and carry the first stamp), from the source's stamp to the
 *   sink's `process()`.
 * - `dora_p2p`: the same node -> node hop on dora-rs 1.1.0
 *   (`bench/dora/`, `send_output_raw`), the peer anchor; installed into
 *   `.cache/bench-dora-venv` on first use (`--no-dora` skips it).
 *
 * A lost message fails the bench (every wait is bounded).
 *
 * @module
 */
import { binary, MultiprocessExecutor, Pipeline } from "../mod.ts";
import type { BinaryData } from "../data/runtime_data/mod.ts";
import { ChannelContext } from "../data/channel/mod.ts";
import { HEADER_LENGTH } from "../data/runtime_data/mod.ts";
import { monotonicNs } from "../data/native.ts";
import { bounded } from "./bounded.ts";
import {
  pacedIterations,
  pacedWarmup,
  pct,
  peer,
  python,
  RAW_WARMUP,
  sendStamped,
  shmRoundTrips,
  TIMEOUT,
} from "./hops.ts";
import { doraHops } from "./dora_hops.ts";

const args = Deno.args;
const json = args.includes("--json");
const quick = args.includes("--quick");
const withDora = !args.includes("--no-dora");
const gapArg = args.indexOf("--gap-ms");
/** Pause between two paced messages (after the acknowledgement). */
const gapMs = gapArg >= 0 ? Number(args[gapArg + 1]) : 1;
if (!(gapMs >= 0)) throw new RangeError("--gap-ms needs a number >= 0");
const onlyArg = args.indexOf("--only");
/** `--only a,b`: measure these paths only. */
const only = onlyArg >= 0 ? new Set(args[onlyArg + 1].split(",")) : null;
const want = (path: string): boolean =>
  (only === null || only.has(path)) && (path !== "dora_p2p" || withDora);

const root = new URL("../", import.meta.url).pathname;
const sizesArg = args.indexOf("--sizes");
/** `--sizes 64,1048576`: these payload sizes only. */
const sizes = sizesArg >= 0
  ? args[sizesArg + 1].split(",").map(Number)
  : [64, 64 << 10, 1 << 20, 16 << 20, 64 << 20];
/** Measured messages per size. */
const iterations = pacedIterations(args);
/** Unmeasured messages first (chunk growth, page faults). */
const WARMUP = pacedWarmup(args);

/** One `--json` row. */
interface Row {
  bench: "hops";
  path: string;
  bytes: number;
  p50_us: number;
  p95_us: number;
  p99_us: number;
}
const rows: Row[] = [];
function row(path: string, bytes: number, us: number[]): void {
  push({
    bench: "hops",
    path,
    bytes,
    p50_us: +pct(us, 50).toFixed(1),
    p95_us: +pct(us, 95).toFixed(1),
    p99_us: +pct(us, 99).toFixed(1),
  });
}
function push(r: Row): void {
  rows.push(r);
  if (json) console.log(JSON.stringify(r));
}
const pause = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

// -- raw channel hops ---------------------------------------------------------
if (want("raw_d2p")) {
  const { pythonRows } = await shmRoundTrips(sizes, iterations(64), [], gapMs);
  for (const r of pythonRows) {
    const { bytes, p50_us, p95_us, p99_us } = r as unknown as Row;
    push({ bench: "hops", path: "raw_d2p", bytes, p50_us, p95_us, p99_us });
  }
}
if (want("raw_p2d")) {
  await using ctx = await ChannelContext.create();
  using d2p = ctx.channel("d2p", { capacity: 2, maxSubscribers: 1 });
  using p2d = ctx.channel("p2d", { capacity: 2, maxSubscribers: 1 });
  using pub = d2p.publisher({ maxPayloadBytes: HEADER_LENGTH + 128 });
  using sub = p2d.subscriber();
  const n = iterations(64);
  const child = peer(ctx, ["p2d", String(n), ...sizes.map(String)]);
  for (const size of sizes) {
    const us: number[] = [];
    for (let i = 0; i < n + RAW_WARMUP; i++) {
      const s = await sub.receive(TIMEOUT);
      const now = monotonicNs();
      if (!s) throw new Error(`raw_p2d: no message of ${size} bytes`);
      const b = s.bytes;
      const v = new DataView(b.buffer, b.byteOffset, HEADER_LENGTH);
      const ts = v.getBigUint64(48, true);
      if (Number(v.getBigUint64(16, true)) !== size) {
        throw new Error(`raw_p2d: expected ${size} bytes`);
      }
      s.release();
      if (gapMs) await pause(gapMs);
      await sendStamped(pub, 0); // the ack: Python sends the next one
      if (i >= RAW_WARMUP) us.push(Number(now - ts) / 1000);
    }
    row("raw_p2d", size, us);
  }
  if (!(await child.output()).success) {
    throw new Error("ipc_peer.py p2d failed");
  }
}

// -- session hops ---------------------------------------------------------------

type SessionPath = "session_d2p" | "session_p2p" | "session_p2d" | "chain4";

/** The pipeline of `path`: input `in`, output `out`. */
function hopPipeline(path: SessionPath): Pipeline {
  const chain: string[] = {
    session_d2p: ["hop_sink"],
    session_p2p: ["hop_source", "hop_sink"],
    session_p2d: ["hop_source"],
    chain4: ["hop_source", "hop_relay", "hop_relay", "hop_sink"],
  }[path];
  const p = new Pipeline(path);
  chain.forEach((type, i) => p.addNode(type, `n${i}`));
  for (let i = 1; i < chain.length; i++) {
    p.connect(`n${i - 1}`, "out", `n${i}`, "in");
  }
  return p.addInput("in", "n0", "in").addOutput(
    "out",
    `n${chain.length - 1}`,
    "out",
  );
}

/** Latencies in µs of `path`, per size. */
async function sessionHops(path: SessionPath): Promise<Map<number, number[]>> {
  await using executor = new MultiprocessExecutor({
    python: { executable: python },
    channelCapacity: 2,
  });
  // A node error fails the bench at once (not after the wait's bound).
  let fail: (e: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => (fail = reject));
  await using session = await executor.createSession(hopPipeline(path), {
    modules: ["bench_nodes"],
    modulePaths: [`${root}bench/nodes`],
    printLogs: false,
    onError: (e) => fail(e),
  });
  await session.initialize();
  const out = session.receive("out", { timeoutMs: TIMEOUT.timeoutMs });
  const result = new Map<number, number[]>();
  const trigger = new Uint8Array(8);
  for (const size of sizes) {
    new DataView(trigger.buffer).setBigUint64(0, BigInt(size), true);
    const template = path === "session_d2p"
      ? binary(new Uint8Array(size))
      : null;
    const us: number[] = [];
    for (let i = 0; i < iterations(size) + WARMUP; i++) {
      if (template) {
        const m = await session.allocate("in", template);
        await session.send("in", m); // stamped here, by the publisher
      } else {
        await session.send("in", binary(trigger));
      }
      const next = await Promise.race([
        bounded(
          out.next(),
          TIMEOUT.timeoutMs,
          `${path}: the answer for ${size} bytes`,
        ),
        failed,
      ]);
      const now = monotonicNs();
      if (next.done) throw new Error(`${path}: the session ended`);
      const data = next.value.data as BinaryData;
      let ns: number;
      if (path === "session_p2d") {
        if (data.data.byteLength !== size) {
          throw new Error(`${path}: got ${data.data.byteLength} bytes`);
        }
        void data.data[size - 1]; // touch one byte
        ns = Number(now - data.timestampNs);
      } else {
        const v = new DataView(
          data.data.buffer,
          data.data.byteOffset,
          data.data.byteLength,
        );
        ns = Number(v.getBigUint64(0, true));
        const got = Number(v.getBigUint64(8, true));
        if (got !== size) throw new Error(`${path}: node got ${got} bytes`);
      }
      if (i >= WARMUP) us.push(ns / 1000);
      if (gapMs) await pause(gapMs);
    }
    result.set(size, us);
  }
  if (path === "session_p2p" && !quick) {
    // An idle node must use no CPU: past the status thread's idle second,
    // the runners' CPU time over 3 s.
    await pause(1500);
    const pids = session.status().map((n) => n.pid!).filter(Boolean);
    const before = pids.map(cpuTicks);
    await pause(3000);
    idleCpu = pids.map((pid, i) => cpuTicks(pid) - before[i]);
  }
  await out.return();
  return result;
}

/** User + system CPU time of `pid` in clock ticks (/proc/PID/stat). */
function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime
}
/** CPU ticks (1/100 s) each idle `session_p2p` runner used over 3 s. */
let idleCpu = null as number[] | null;

for (
  const path of [
    "session_d2p",
    "session_p2p",
    "session_p2d",
    "chain4",
  ] as SessionPath[]
) {
  if (!want(path)) continue;
  for (const [size, us] of await sessionHops(path)) row(path, size, us);
}

// -- dora-rs ----------------------------------------------------------------------
if (want("dora_p2p")) {
  const dora = await doraHops(sizes, {
    iterations: iterations(64),
    warmup: WARMUP,
    gapMs,
    quiet: json,
  });
  for (const [size, us] of dora) row("dora_p2p", size, us);
}

// -- table ------------------------------------------------------------------------
if (!json) {
  const get = (path: string, bytes: number): Row | undefined =>
    rows.find((r) => r.path === path && r.bytes === bytes);
  const cell = (r: Row | undefined): string =>
    r ? `${r.p50_us} / ${r.p95_us} / ${r.p99_us}` : "-";
  const paths = [
    "raw_d2p",
    "raw_p2d",
    "session_d2p",
    "session_p2d",
    "session_p2p",
    "chain4",
    "dora_p2p",
  ];
  console.log(
    `hops, p50 / p95 / p99 µs (paced, ${gapMs} ms apart; ${
      iterations(64)
    } messages per size below 16 MiB)`,
  );
  console.log(
    ["bytes".padEnd(9), ...paths.map((p) => p.padEnd(22))].join(" | "),
  );
  for (const size of sizes) {
    console.log(
      [
        String(size).padEnd(9),
        ...paths.map((p) => cell(get(p, size)).padEnd(22)),
      ].join(" | "),
    );
  }
  const ok = (b: boolean): string => (b ? "ok" : "MISS");
  /** `a / b` p50 against `limit` ("-" when a row is missing). */
  const ratio = (
    label: string,
    a: Row | undefined,
    b: Row | undefined,
    limit: number,
    atLeast = false,
  ): string => {
    if (!a || !b) return `${label} -`;
    const r = a.p50_us / b.p50_us;
    const pass = atLeast ? r >= limit : r <= limit;
    return `${label} ${r.toFixed(2)}x ${atLeast ? ">=" : "<="} ${limit} ${
      ok(pass)
    }`;
  };
  if (idleCpu) {
    console.log(
      `idle runners (session_p2p, 3 s after 1.5 s idle): ${
        idleCpu.map((t) => `${t * 10} ms`).join(", ")
      } of CPU`,
    );
  }
  console.log("targets (p50 ratios):");
  for (const size of sizes) {
    const p = get("session_p2p", size);
    const parts = [
      p
        ? `p2p p50 ${p.p50_us} <= 80 ${
          ok(p.p50_us <= 80)
        }, p95 ${p.p95_us} <= 150 ${ok(p.p95_us <= 150)}`
        : "p2p -",
      ratio("p2p/p2p(64 B)", p, get("session_p2p", 64), 1.3),
      ratio("dora/p2p", get("dora_p2p", size), p, 6, true),
      ratio("d2p/raw", get("session_d2p", size), get("raw_d2p", size), 1.5),
      ratio("p2d/raw", get("session_p2d", size), get("raw_p2d", size), 1.5),
      ratio("chain4/p2p", get("chain4", size), p, 4.5),
    ];
    console.log(`${String(size).padEnd(9)} ${parts.join("; ")}`);
  }
}
