/**
 * `deno task bench:hosts [--json] [--quick] [--gap-ms N] [--only a,b]
 * [--sizes a,b] [--iterations N] [--rounds N]`: issue 14 item 6, the bridged
 * node -> node hop across hosts beside the numbers it is held to.
 *
 * Every hop is paced (one message at a time, each acknowledged before the
 * next, `--gap-ms` after the acknowledgement), stamped with CLOCK_MONOTONIC
 * when the producer hands it over and read when the consumer holds the whole
 * message; the figure is that one-way time (network namespaces share the
 * monotonic clock, so stamps from two "hosts" on this machine compare):
 *
 * - `zenoh_netns`: plain Zenoh (Python `eclipse-zenoh` 1.10.2, peer mode), a
 *   publisher in network namespace A, a subscriber in namespace B, TCP over
 *   the veth pair between them, reliable, `CongestionControl.BLOCK`
 *   (`bench/zenoh/ping.py` -> `bench/zenoh/echo.py`, which answers a 24-byte
 *   ack). Namespaces from `tests/support/netns.ts` (needs root).
 * - `zenoh_lo`: the same two peers in one namespace over its loopback.
 * - `session_p2p`: this project's node -> node hop on one host (iceoryx2), as
 *   `bench:hops` measures it (`bench/hops_report.ts --only session_p2p`).
 * - `session_hosts`: the same node -> node hop (`hop_source` -> `hop_sink`)
 *   with the producer on host 0 and the consumer on host 1: a real session
 *   whose Python runs in namespace 0 and a real host agent in namespace 1,
 *   the edge carried by the bridges (egress iceoryx2 -> Zenoh, ingress Zenoh
 *   -> iceoryx2) over TCP on the veth (`bench/hosts_session.ts`).
 *
 * `zenoh_netns` and `session_hosts` run interleaved, A/B in one run (the
 * machine is noisy): `--rounds` rounds (default 2), each measuring both paths
 * on a share of the messages, in alternating order (even rounds Zenoh first,
 * odd rounds the session first); the session and its agent stay up across
 * rounds, the Zenoh peers start again for each. The table prints the ratio
 * `session_hosts / zenoh_netns` at p50 and p95 and whether the target
 * (the bridged hop within 1.5x of the bare Zenoh hop, at p50) is met per
 * size.
 *
 * Zenoh is installed into `.cache/zenoh-venv` on first use
 * (`bench/zenoh/venv.ts`). A lost message fails the bench (every wait is
 * bounded); the namespaces are removed at the end, also on failure.
 *
 * @module
 */
import { flagValue, pacedIterations, pacedWarmup, pct } from "./hops.ts";
import { ensureZenoh } from "./zenoh/venv.ts";
import { createNetwork, type Network } from "../tests/support/netns.ts";
import { type HostsSession, openHostsSession } from "./hosts_session.ts";

const args = Deno.args;
const json = args.includes("--json");
const quick = args.includes("--quick");
const flag = (name: string): string | undefined => flagValue(args, name);
/** Pause between two paced messages (after the acknowledgement). */
const gapMs = Number(flag("--gap-ms") ?? 1);
if (!(gapMs >= 0)) throw new RangeError("--gap-ms needs a number >= 0");
const PATHS = [
  "zenoh_netns",
  "zenoh_lo",
  "session_p2p",
  "session_hosts",
] as const;
const only = flag("--only")?.split(",") ?? null;
for (const p of only ?? []) {
  if (!(PATHS as readonly string[]).includes(p)) {
    throw new RangeError(
      `--only: no path "${p}" (known: ${PATHS.join(", ")})`,
    );
  }
}
const want = (path: string): boolean => only === null || only.includes(path);
/** Payload sizes in bytes (issue 14: 1 KiB, 64 KiB, 1 MiB, 16 MiB). */
const sizes = flag("--sizes")?.split(",").map(Number) ??
  [1 << 10, 64 << 10, 1 << 20, 16 << 20];
if (sizes.some((s) => !Number.isInteger(s) || s < 1)) {
  throw new RangeError("--sizes needs positive integers");
}
/** Measured messages per size. */
const iterations = pacedIterations(args);
/** Unmeasured messages first, per size and round (as in bench:hops). */
const WARMUP = pacedWarmup(args);
/** Interleaved rounds of `zenoh_netns` and `session_hosts`. */
const rounds = Number(flag("--rounds") ?? 2);
if (!Number.isInteger(rounds) || rounds < 1) {
  throw new RangeError("--rounds needs an integer >= 1");
}
/** Round `r`'s share of the measured messages of `size`. */
const share = (r: number) => (size: number): number => {
  const n = iterations(size);
  return Math.floor(n / rounds) + (r < n % rounds ? 1 : 0);
};
/** The target: session_hosts p50 within this factor of zenoh_netns. */
const TARGET = 1.5;
const root = new URL("../", import.meta.url).pathname;
const PORT = 7447;
/** The host agent's port (host 1), beside the Zenoh echo's. */
const AGENT_PORT = 7448;

/** One `--json` row. */
interface Row {
  bench: "hosts";
  path: string;
  bytes: number;
  p50_us: number;
  p95_us: number;
}
const rows: Row[] = [];
function row(path: string, bytes: number, us: number[]): void {
  const r: Row = {
    bench: "hosts",
    path,
    bytes,
    p50_us: +pct(us, 50).toFixed(1),
    p95_us: +pct(us, 95).toFixed(1),
  };
  rows.push(r);
  if (json) console.log(JSON.stringify(r));
}

/** Waits (bounded) for the child's first stdout line to be `ready`. */
async function ready(child: Deno.ChildProcess, what: string): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => reader.cancel(), 30_000);
  try {
    const { value } = await reader.read();
    if (!value?.startsWith("ready")) {
      throw new Error(`${what} did not start (exit: ${await child.status})`);
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}

/**
 * One Zenoh run: the echo in host `far` listening on `address`, the ping in
 * host `near`; returns the one-way latencies in µs per size.
 */
async function zenohHops(
  net: Network,
  python: string,
  near: number,
  far: number,
  address: string,
  count: (size: number) => number = iterations,
): Promise<Map<number, number[]>> {
  const endpoint = `tcp/${address}:${PORT}`;
  const plan = sizes.map((s) => `${s}:${count(s)}`);
  const bound = 60_000 +
    sizes.reduce((t, s) => t + (count(s) + WARMUP) * (gapMs + 200), 0);
  const echo = net.spawn(
    far,
    [python, `${root}bench/zenoh/echo.py`, endpoint, String(bound / 1000)],
    { stdout: "piped", stderr: "inherit" },
  );
  try {
    await ready(echo, `bench/zenoh/echo.py in ${net.ns(far)}`);
    const out = await net.exec(near, [
      python,
      `${root}bench/zenoh/ping.py`,
      endpoint,
      String(WARMUP),
      String(gapMs),
      ...plan,
    ], { timeoutMs: bound });
    if (!out.success) {
      throw new Error(
        `bench/zenoh/ping.py to ${endpoint} failed (exit ${out.code}):\n${out.stderr}`,
      );
    }
    const result = new Map<number, number[]>();
    for (const line of out.stdout.trim().split("\n")) {
      const r = JSON.parse(line) as { bytes: number; one_way_us: number[] };
      result.set(r.bytes, r.one_way_us);
    }
    return result;
  } finally {
    try {
      echo.kill("SIGKILL");
    } catch { /* exited */ }
    await echo.status;
  }
}

if (want("zenoh_netns") || want("zenoh_lo") || want("session_hosts")) {
  const zenohPython = want("zenoh_netns") || want("zenoh_lo")
    ? await ensureZenoh(json ? () => {} : console.error)
    : "";
  await using net = await createNetwork(2);
  // zenoh_netns and session_hosts: A/B rounds in alternating order.
  const samples = new Map<string, Map<number, number[]>>();
  const add = (path: string, got: Map<number, number[]>): void => {
    const into = samples.get(path) ?? new Map<number, number[]>();
    samples.set(path, into);
    for (const [size, us] of got) {
      into.set(size, [...(into.get(size) ?? []), ...us]);
    }
  };
  let hosts: HostsSession | null = null;
  try {
    if (want("session_hosts")) {
      hosts = await openHostsSession(net, { port: AGENT_PORT });
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0
        ? ["zenoh_netns", "session_hosts"]
        : ["session_hosts", "zenoh_netns"];
      for (const path of order.filter(want)) {
        if (path === "zenoh_netns") {
          add(
            path,
            await zenohHops(
              net,
              zenohPython,
              0,
              1,
              net.address(0, 1),
              share(r),
            ),
          );
        } else {
          add(path, await hosts!.measure(sizes, share(r), WARMUP, gapMs));
        }
      }
    }
  } finally {
    await hosts?.[Symbol.asyncDispose]();
  }
  for (const path of ["zenoh_netns", "session_hosts"].filter(want)) {
    for (const size of sizes) row(path, size, samples.get(path)!.get(size)!);
  }
  if (want("zenoh_lo")) {
    const got = await zenohHops(net, zenohPython, 0, 0, "127.0.0.1");
    for (const size of sizes) row("zenoh_lo", size, got.get(size)!);
  }
}

if (want("session_p2p")) {
  // bench:hops measures this hop already; run it for these sizes and counts.
  const counts = [...new Set(sizes.map(iterations))];
  for (const count of counts) {
    const these = sizes.filter((s) => iterations(s) === count);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${root}bench/hops_report.ts`,
        "--json",
        "--no-dora",
        ...(quick ? ["--quick"] : []),
        "--only",
        "session_p2p",
        "--sizes",
        these.join(","),
        "--iterations",
        String(count),
        "--gap-ms",
        String(gapMs),
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(300_000),
    }).output();
    if (!out.success) {
      throw new Error(
        `bench/hops_report.ts --only session_p2p failed (exit ${out.code}):\n${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
    for (
      const line of new TextDecoder().decode(out.stdout).trim().split("\n")
    ) {
      const r = JSON.parse(line);
      const entry: Row = {
        bench: "hosts",
        path: "session_p2p",
        bytes: r.bytes,
        p50_us: r.p50_us,
        p95_us: r.p95_us,
      };
      rows.push(entry);
      if (json) console.log(JSON.stringify(entry));
    }
  }
}

if (!json) {
  const get = (path: string, bytes: number): Row | undefined =>
    rows.find((r) => r.path === path && r.bytes === bytes);
  const paths = PATHS.filter(want);
  const ratios = want("zenoh_netns") && want("session_hosts");
  console.log(
    `hosts, one-way p50 / p95 µs (paced, ${gapMs} ms apart; ${
      iterations(1)
    } messages per size below 16 MiB, ${
      iterations(16 << 20)
    } at 16 MiB, ${WARMUP} warm-up; zenoh_netns and session_hosts in ${rounds} interleaved round(s))`,
  );
  const ratioHead = ratios
    ? ["hosts/netns p50".padEnd(15), "p95".padEnd(5), "target"]
    : [];
  console.log(
    ["bytes".padEnd(9), ...paths.map((p) => p.padEnd(18)), ...ratioHead].join(
      " | ",
    ),
  );
  for (const size of sizes) {
    const cells = [
      String(size).padEnd(9),
      ...paths.map((p) => {
        const r = get(p, size);
        return (r ? `${r.p50_us} / ${r.p95_us}` : "-").padEnd(18);
      }),
    ];
    if (ratios) {
      const h = get("session_hosts", size)!;
      const z = get("zenoh_netns", size)!;
      const p50 = h.p50_us / z.p50_us;
      cells.push(
        `${p50.toFixed(2)}x`.padEnd(15),
        `${(h.p95_us / z.p95_us).toFixed(2)}x`.padEnd(5),
        p50 <= TARGET ? "met" : "missed",
      );
    }
    console.log(cells.join(" | "));
  }
  console.log(
    `target of issue 14: session_hosts (the bridged node -> node hop across` +
      ` namespaces) within ${TARGET}x of zenoh_netns at p50, at each size`,
  );
}
