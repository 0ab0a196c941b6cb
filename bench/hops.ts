/**
 * The measured hops shared by `bench/ipc_report.ts` and `bench/wake_probe.ts`:
 * the floor (a 1-byte Unix socket ping-pong with a Python peer) and the raw
 * channel round trip (payload Deno -> Python, 128-byte ack back).
 *
 * `launcher` prefixes the Python command (e.g. `["taskset", "-c", "1"]`).
 *
 * @module
 */
import { type Channel, ChannelContext } from "../data/channel/mod.ts";
import { HEADER_LENGTH, writeHeader } from "../data/runtime_data/mod.ts";
import { monotonicNs } from "../data/native.ts";
import { isolationEnv } from "../data/isolation.ts";

const root = new URL("../", import.meta.url).pathname;
/** The project's Python. */
export const python = `${root}.venv/bin/python`;

/** Unmeasured messages before each size (same as WARMUP in ipc_peer.py): the
 * first messages of a size pay for growing the chunks and for page faults. */
export const RAW_WARMUP = 50;
/** Waits of the benchmarks (a lost message fails, never hangs). */
export const TIMEOUT = { timeoutMs: 30_000 };

/** The value after `name` in `args` (`--sizes 64,1024`), if given. */
export function flagValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/**
 * Measured messages per size of a paced hop bench (`bench:hops`,
 * `bench:hosts` and its probes): `--iterations N` when given, else 20 with
 * `--quick`, 100 at 16 MiB and more, 200 below.
 */
export function pacedIterations(
  args: string[],
): (size: number) => number {
  const given = flagValue(args, "--iterations");
  const quick = args.includes("--quick");
  return (size) =>
    given !== undefined
      ? Number(given)
      : quick
      ? 20
      : size >= 16 << 20
      ? 100
      : 200;
}

/** Unmeasured messages first, per size, of a paced hop bench (chunk growth, page faults). */
export function pacedWarmup(args: string[]): number {
  return args.includes("--quick") ? 5 : 20;
}

/** The `p`-th percentile of `xs`. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

function command(launcher: string[], args: string[]): [string, string[]] {
  return launcher.length
    ? [launcher[0], [...launcher.slice(1), python, ...args]]
    : [python, args];
}

/** Round trips in µs of a 1-byte ping-pong over a Unix stream socket. */
export async function floorRoundTrips(
  launcher: string[] = [],
  count = 1800,
  warmup = 200,
): Promise<number[]> {
  const path = `/tmp/rmp-floor-${Deno.pid}-${
    crypto.randomUUID().slice(0, 8)
  }.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const [cmd, args] = command(launcher, [
    `${root}bench/pipe_peer.py`,
    "floor",
    path,
  ]);
  const child = new Deno.Command(cmd, { args }).spawn();
  const conn = await listener.accept();
  const one = new Uint8Array([1]);
  const buf = new Uint8Array(1);
  const us: number[] = [];
  for (let i = 0; i < count + warmup; i++) {
    const t = performance.now();
    await conn.write(one);
    await conn.read(buf);
    if (i >= warmup) us.push((performance.now() - t) * 1000);
  }
  conn.close();
  listener.close();
  await child.status;
  try {
    Deno.removeSync(path);
  } catch { /* removed by close() */ }
  return us;
}

/** A Python `bench/ipc_peer.py` on `ctx`'s isolation. */
export function peer(
  ctx: ChannelContext,
  args: string[],
  launcher: string[] = [],
): Deno.ChildProcess {
  const [cmd, argv] = command(launcher, [`${root}bench/ipc_peer.py`, ...args]);
  return new Deno.Command(cmd, {
    args: argv,
    env: { ...isolationEnv(ctx.isolation), PYTHONPATH: `${root}python` },
    stdout: "piped",
  }).spawn();
}

/** Loans header + `size` bytes, writes the header only, stamps and sends. */
export async function sendStamped(
  pub: ReturnType<Channel["publisher"]>,
  size: number,
  sequence = 0n,
): Promise<bigint> {
  const buf = await pub.loanAsync(HEADER_LENGTH + size);
  const t = monotonicNs();
  writeHeader(buf, {
    kind: "binary",
    payloadLength: size,
    sequence,
    timestampNs: t,
  });
  pub.send();
  return t;
}

/** What {@linkcode shmRoundTrips} measured. */
export interface ShmRoundTrips {
  /** Round trips in µs, per payload size. */
  roundtrip: Map<number, number[]>;
  /** The peer's one-way rows (`deno_to_python`), as JSON objects. */
  pythonRows: Array<Record<string, unknown>>;
}

/**
 * The raw channel hop: for each size, `iterations` payloads Deno -> Python,
 * each acknowledged (128 bytes) before the next, `gapMs` after the ack;
 * Python reports the one-way.
 */
export async function shmRoundTrips(
  sizes: number[],
  iterations: number,
  launcher: string[] = [],
  gapMs = 0,
): Promise<ShmRoundTrips> {
  await using ctx = await ChannelContext.create();
  using d2p = ctx.channel("d2p", { capacity: 2, maxSubscribers: 1 });
  using p2d = ctx.channel("p2d", { capacity: 2, maxSubscribers: 1 });
  using pub = d2p.publisher({
    maxPayloadBytes: HEADER_LENGTH + Math.max(...sizes),
  });
  using sub = p2d.subscriber();
  const child = peer(
    ctx,
    ["d2p", String(iterations), ...sizes.map(String)],
    launcher,
  );
  (await sub.receive(TIMEOUT))!.release(); // the peer is subscribed
  const roundtrip = new Map<number, number[]>();
  for (const size of sizes) {
    const us: number[] = [];
    for (let i = 0; i < iterations + RAW_WARMUP; i++) {
      const t0 = await sendStamped(pub, size);
      const ack = await sub.receive(TIMEOUT);
      const t1 = monotonicNs();
      if (!ack) throw new Error(`no ack for ${size} bytes`);
      ack.release();
      if (i >= RAW_WARMUP) us.push(Number(t1 - t0) / 1000);
      if (gapMs) await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
    roundtrip.set(size, us);
  }
  const out = await child.output();
  if (!out.success) throw new Error("ipc_peer.py d2p failed");
  const pythonRows = new TextDecoder().decode(out.stdout).trim().split("\n")
    .map((line) => JSON.parse(line));
  return { roundtrip, pythonRows };
}
