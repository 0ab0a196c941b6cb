/**
 * `deno task bench:ipc [--json]`: the data-plane benchmark of issue 2.
 *
 * - `shm` rows: the raw channel hop (data/channel/mod.ts <-> bench/ipc_peer.py),
 *   no session. The producer loans header + payload, writes only the 128-byte
 *   header in place (the payload bytes are never written or read: the bench
 *   measures the hop, which does not depend on them), stamps `timestampNs`
 *   with the shared CLOCK_MONOTONIC right before `send()`, and the consumer
 *   computes now - stamp once it holds the sample. Messages are paced (each
 *   one is acknowledged before the next), so there is no queueing. Deno
 *   waits with `await receive()` (event-driven), Python with a blocking
 *   `receive()` (GIL released).
 *   - `deno_to_python`: one-way, measured by Python.
 *   - `python_to_deno`: one-way, measured by Deno.
 *   - `roundtrip`: payload Deno -> Python, 128-byte ack back, from the stamp
 *     to the ack in Deno's hands.
 * - `shm_session` rows: the same payloads through a session and one Python
 *   node: `roundtrip_echo` (`send()` copies into the loan and the `echo` node
 *   copies it back) and `roundtrip_in_place` (Deno allocates its input in
 *   shared memory and the `inplace_forward` node its output: no copy).
 * - `pipe` rows: the payload over Deno.Command stdin, Python reads it all and
 *   answers one byte on stdout.
 * - `floor`: a 1-byte ping-pong over a Unix stream socket.
 * - `ipc_throughput` rows: 1 KiB messages for about 1 s with backpressure
 *   (`msgs_per_s`; no percentiles).
 */
import { binary, MultiprocessExecutor, Pipeline } from "../mod.ts";
import { ChannelContext } from "../data/channel/mod.ts";
import { HEADER_LENGTH, writeHeader } from "../data/runtime_data/mod.ts";
import { monotonicNs } from "../data/native.ts";
import { bounded } from "./bounded.ts";
import {
  floorRoundTrips,
  pct,
  peer,
  python,
  RAW_WARMUP,
  sendStamped,
  shmRoundTrips,
  TIMEOUT,
} from "./hops.ts";

const json = Deno.args.includes("--json");
const root = new URL("../", import.meta.url).pathname;
const sizes = [64, 1024, 64 << 10, 1 << 20, 10 << 20, 64 << 20];
const iterations = (size: number) =>
  size >= 10 << 20 ? 30 : size >= 1 << 20 ? 100 : 400;

const RAW_ITERATIONS = 1000;
type Row = {
  bench: string;
  transport: string;
  direction: string;
  bytes: number;
  p50_us: number;
  p95_us: number;
  p99_us: number;
};
const rows: Row[] = [];
function emit(r: Row): void {
  rows.push(r);
  if (json) console.log(JSON.stringify(r));
}
function row(
  transport: string,
  direction: string,
  bytes: number,
  us: number[],
): void {
  emit({
    bench: "ipc",
    transport,
    direction,
    bytes,
    p50_us: +pct(us, 50).toFixed(1),
    p95_us: +pct(us, 95).toFixed(1),
    p99_us: +pct(us, 99).toFixed(1),
  });
}
const throughput: Record<string, number> = {};

// Floor: 1-byte ping-pong over a Unix stream socket.
row("floor", "roundtrip", 1, await floorRoundTrips());

// Pipe baseline.
{
  const child = new Deno.Command(python, {
    args: [`${root}bench/pipe_peer.py`, "pipe"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  for (const size of sizes) {
    const msg = new Uint8Array(8 + size);
    new DataView(msg.buffer).setBigUint64(0, BigInt(size), true);
    const us: number[] = [];
    for (let i = 0; i < iterations(size) + 5; i++) {
      const t = performance.now();
      await writer.write(msg);
      await reader.read();
      if (i >= 5) us.push((performance.now() - t) * 1000);
    }
    row("pipe", "roundtrip", size, us);
  }
  await writer.close();
  await child.status;
}

// Raw channel hop, Deno -> Python (one-way measured by Python) and the round
// trip with a small ack (measured by Deno).
{
  const { roundtrip, pythonRows } = await shmRoundTrips(sizes, RAW_ITERATIONS);
  for (const [size, us] of roundtrip) row("shm", "roundtrip", size, us);
  for (const r of pythonRows) {
    emit({ bench: "ipc", transport: "shm", ...r } as Row);
  }
}

// Raw channel hop, Python -> Deno (one-way measured by Deno).
{
  await using ctx = await ChannelContext.create();
  using d2p = ctx.channel("d2p", { capacity: 2, maxSubscribers: 1 });
  using p2d = ctx.channel("p2d", { capacity: 2, maxSubscribers: 1 });
  using pub = d2p.publisher({ maxPayloadBytes: HEADER_LENGTH + 128 });
  using sub = p2d.subscriber();
  const child = peer(ctx, [
    "p2d",
    String(RAW_ITERATIONS),
    ...sizes.map(String),
  ]);
  for (const size of sizes) {
    const us: number[] = [];
    for (let i = 0; i < RAW_ITERATIONS + RAW_WARMUP; i++) {
      const s = await sub.receive(TIMEOUT);
      const now = monotonicNs();
      if (!s) throw new Error(`no message of ${size} bytes`);
      const b = s.bytes;
      const v = new DataView(b.buffer, b.byteOffset, HEADER_LENGTH);
      const ts = v.getBigUint64(48, true);
      if (Number(v.getBigUint64(16, true)) !== size) {
        throw new Error(`expected ${size} bytes`);
      }
      s.release();
      await sendStamped(pub, 0);
      if (i >= RAW_WARMUP) us.push(Number(now - ts) / 1000);
    }
    row("shm", "python_to_deno", size, us);
  }
  if (!(await child.output()).success) {
    throw new Error("ipc_peer.py p2d failed");
  }
}

// Throughput, 1 KiB, about 1 s each way, with backpressure (capacity 8).
{
  await using ctx = await ChannelContext.create();
  using d2p = ctx.channel("tput_d2p", { capacity: 8, maxSubscribers: 1 });
  using p2d = ctx.channel("tput_p2d", { capacity: 8, maxSubscribers: 1 });
  using pub = d2p.publisher();
  using sub = p2d.subscriber();
  const child = peer(ctx, ["tput_d2p"]);
  (await sub.receive(TIMEOUT))!.release();
  const start = performance.now();
  let count = 0;
  while (performance.now() - start < 1000) {
    const buf = await pub.loanAsync(HEADER_LENGTH + 1024);
    writeHeader(buf, { kind: "binary", payloadLength: 1024 });
    pub.send();
    count++;
  }
  await sendStamped(pub, 0);
  const done = await sub.receive(TIMEOUT);
  const seconds = (performance.now() - start) / 1000;
  if (!done) throw new Error("no throughput ack");
  const got = new DataView(done.bytes.buffer, done.bytes.byteOffset)
    .getBigUint64(24, true);
  done.release();
  if (Number(got) !== count) {
    throw new Error(`sent ${count}, Python received ${got}`);
  }
  throughput.deno_to_python = Math.round(count / seconds);
  await child.output();
}
{
  await using ctx = await ChannelContext.create();
  using d2p = ctx.channel("tput_d2p", { capacity: 8, maxSubscribers: 1 });
  using p2d = ctx.channel("tput_p2d", { capacity: 8, maxSubscribers: 1 });
  using _pub = d2p.publisher();
  using sub = p2d.subscriber();
  const child = peer(ctx, ["tput_p2d", "1.0"]);
  let count = 0;
  let start = 0;
  while (true) {
    const s = await sub.receive(TIMEOUT);
    if (!s) throw new Error("throughput stream stalled");
    if (count === 0) start = performance.now();
    const v = new DataView(s.bytes.buffer, s.bytes.byteOffset, HEADER_LENGTH);
    const empty = v.getBigUint64(16, true) === 0n;
    const sent = v.getBigUint64(24, true);
    s.release();
    if (empty) {
      if (Number(sent) !== count) {
        throw new Error(`Python sent ${sent}, Deno received ${count}`);
      }
      break;
    }
    count++;
  }
  // The first message starts the clock, so count - 1 intervals.
  throughput.python_to_deno = Math.round(
    (count - 1) / ((performance.now() - start) / 1000),
  );
  await child.output();
}
for (const [direction, rate] of Object.entries(throughput)) {
  if (json) {
    console.log(JSON.stringify({
      bench: "ipc_throughput",
      transport: "shm",
      direction,
      bytes: 1024,
      msgs_per_s: rate,
    }));
  }
}

/**
 * Round trips through a session and one Python node. `inPlace`: Deno
 * allocates its input in shared memory (payload untouched) and the node
 * allocates its output; otherwise `send()` copies a payload into the loan and
 * the `echo` node copies it back.
 */
async function sessionRoundTrips(
  nodeType: string,
  inPlace: boolean,
  direction: string,
): Promise<void> {
  await using executor = new MultiprocessExecutor({
    python: { executable: python },
  });
  const pipeline = new Pipeline().addNode(nodeType, "n")
    .addInput("in", "n", "in").addOutput("out", "n", "out");
  await using session = await executor.createSession(pipeline, {
    modules: ["demo_nodes", "bench_nodes"],
    modulePaths: [`${root}examples/nodes`, `${root}bench/nodes`],
    printLogs: false,
  });
  await session.initialize();
  const out = session.receive("out");
  for (const size of sizes) {
    const data = binary(new Uint8Array(size - 128 > 0 ? size - 128 : 1));
    const us: number[] = [];
    for (let i = 0; i < iterations(size) + 5; i++) {
      const t = performance.now();
      await session.send(
        "in",
        inPlace ? await session.allocate("in", data) : data,
      );
      await bounded(
        out.next(),
        TIMEOUT.timeoutMs,
        `session ${direction} of ${size} bytes`,
      );
      if (i >= 5) us.push((performance.now() - t) * 1000);
    }
    row("shm_session", direction, size, us);
  }
  await out.return();
}
await sessionRoundTrips("echo", false, "roundtrip_echo");
await sessionRoundTrips("inplace_forward", true, "roundtrip_in_place");

if (!json) {
  const get = (transport: string, direction: string, bytes: number): Row =>
    rows.find((r) =>
      r.transport === transport && r.direction === direction &&
      r.bytes === bytes
    )!;
  const floor = get("floor", "roundtrip", 1);
  const pair = (r: Row): string => `${r.p50_us} / ${r.p95_us}`;
  const ok = (b: boolean): string => (b ? "ok" : "MISS");
  console.log(
    `floor (1-byte Unix socket ping-pong) p50 / p95: ${pair(floor)} µs`,
  );
  console.log(
    "targets: D->P p95 <= 50 µs; P->D <= floor; RT <= 1.5x floor (p50 and " +
      "p95); 64 MiB p50 <= 2x 64 B p50; pipe/shm RT at 10 MiB >= 200x",
  );
  console.log(
    "bytes      | D->P one-way     | P->D one-way     | RT (ack)         | " +
      "session echo     | session in place | pipe RT            | pipe/RT",
  );
  for (const size of sizes) {
    const d = get("shm", "deno_to_python", size);
    const p = get("shm", "python_to_deno", size);
    const r = get("shm", "roundtrip", size);
    const e = get("shm_session", "roundtrip_echo", size);
    const ip = get("shm_session", "roundtrip_in_place", size);
    const pp = get("pipe", "roundtrip", size);
    const ratio = pp.p50_us / r.p50_us;
    console.log(
      `${String(size).padEnd(10)} | ${
        `${pair(d)} ${ok(d.p95_us <= 50)}`.padEnd(16)
      } | ${
        `${pair(p)} ${ok(p.p50_us <= floor.p50_us && p.p95_us <= floor.p95_us)}`
          .padEnd(16)
      } | ${
        `${pair(r)} ${
          ok(
            r.p50_us <= 1.5 * floor.p50_us && r.p95_us <= 1.5 * floor.p95_us,
          )
        }`.padEnd(16)
      } | ${pair(e).padEnd(16)} | ${pair(ip).padEnd(16)} | ${
        pair(pp).padEnd(18)
      } | ${ratio.toFixed(1)}x${
        size === 10 << 20 ? ` ${ok(ratio >= 200)}` : ""
      }`,
    );
  }
  for (const dir of ["deno_to_python", "roundtrip", "python_to_deno"]) {
    const small = get("shm", dir, 64).p50_us;
    const big = get("shm", dir, 64 << 20).p50_us;
    console.log(
      `${dir}: 64 MiB p50 / 64 B p50 = ${
        (big / small).toFixed(2)
      } (target <= 2) ${ok(big <= 2 * small)}`,
    );
  }
  for (const [dir, rate] of Object.entries(throughput)) {
    console.log(
      `throughput 1 KiB ${dir}: ${rate} msgs/s (target >= 50000) ${
        ok(rate >= 50_000)
      }`,
    );
  }
}
