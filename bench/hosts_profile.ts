/**
 * `deno run -A bench/hosts_profile.ts [--harness] [--json] [--quick]
 * [--variant defer_credit] [--gap-ms N] [--sizes a,b] [--iterations N]`:
 * where the time of the
 * bridged hop of `bench:hosts` (`session_hosts`) goes, stage by stage.
 *
 * By default it measures the real thing: the `session_hosts` session of
 * `bench/hosts_session.ts` (producer node on host 0, consumer node on host 1,
 * a real agent), whose hosts link and agent load
 * `bench/zenoh/bridge_stamps.py`: CLOCK_MONOTONIC stamps around the calls of
 * the bridges of `python/remotemedia_multiprocess/hosts/bridge.py`, their
 * code unchanged. `--harness` measures the same `Egress` and `Ingress`
 * outside a session (`bench/zenoh/bridge_profile.py`: each in its own
 * process and namespace, a bare producer and consumer on either side), to
 * tell the bridges' cost from the session's; `--variant defer_credit` there
 * tries the ingress's credit put off its Zenoh callback (0.5 ms later, from a
 * thread), an experiment on the bridge, not its code.
 *
 * Stages, one after the other (their p50s add up to about `total`'s):
 *
 * - `iox_in`: the producer's stamp -> the egress's `receive_raw` returns
 *   (iceoryx2 hop, egress thread woken);
 * - `egress_copy`: -> the egress calls `put` (delivery check, `bytes(view)`
 *   copy out of the sample, release);
 * - `zbytes`: -> `zenoh.ZBytes(payload)` built (the copy `put(bytes)` makes);
 * - `wire`: -> the ingress's Zenoh callback starts (Zenoh: serialization,
 *   TCP over the veth, reassembly, the callback's thread); what
 *   `zenoh_netns` measures, whose payload is a prebuilt `ZBytes`;
 * - `to_bytes`: -> `try_send_wire` starts (`payload.to_bytes()`, the
 *   sequence check);
 * - `forward`: -> `try_send_wire` returns (loan, copy into it, send,
 *   notify);
 * - `iox_out`: -> the consumer holds the message (its `process()` starts in
 *   the session; `receive` returns in the harness);
 *
 * and, besides them: `put_call` (the egress's `put` call itself, which
 * returns while the bytes may still be on their way) and `credit` (the
 * ingress's credit `put` after forwarding, in its Zenoh callback, while the
 * consumer wakes).
 *
 * @module
 */
import { flagValue, pacedIterations, pacedWarmup, pct } from "./hops.ts";
import { createNetwork, type Network } from "../tests/support/netns.ts";
import { openHostsSession } from "./hosts_session.ts";

const args = Deno.args;
const json = args.includes("--json");
const harness = args.includes("--harness");
const flag = (name: string): string | undefined => flagValue(args, name);
/** `--variant defer_credit`: the harness's experiment (see bridge_profile.py). */
const variant = flag("--variant");
if (variant !== undefined && (!harness || variant !== "defer_credit")) {
  throw new RangeError("--variant defer_credit needs --harness");
}
const gapMs = Number(flag("--gap-ms") ?? 1);
const sizes = flag("--sizes")?.split(",").map(Number) ??
  [1 << 10, 64 << 10, 1 << 20, 16 << 20];
const iterations = pacedIterations(args);
const WARMUP = pacedWarmup(args);
/** As the bench session (`channelCapacity: 2`). */
const CAPACITY = 2;
const PORT = 7449;
const root = new URL("../", import.meta.url).pathname;
const python = `${root}.venv/bin/python`;

/** Stage name -> [from stamp, to stamp] (indices of t0..t9). */
const STAGES: [string, number, number][] = [
  ["total", 0, 9],
  ["iox_in", 0, 1],
  ["egress_copy", 1, 2],
  ["zbytes", 2, 3],
  ["wire", 3, 5],
  ["to_bytes", 5, 6],
  ["forward", 6, 7],
  ["iox_out", 7, 9],
  ["put_call", 3, 4],
  ["credit", 7, 8],
];

/** Stamps t0..t9 of each measured message (warm-ups dropped), per size. */
async function harnessStamps(net: Network): Promise<Map<number, number[][]>> {
  const bound = 60_000 +
    sizes.reduce((t, s) => t + (iterations(s) + WARMUP) * (gapMs + 300), 0);
  const out = await net.exec(0, [
    python,
    `${root}bench/zenoh/bridge_profile.py`,
    "driver",
    net.ns(0),
    net.ns(1),
    net.address(0, 1),
    String(PORT),
    String(CAPACITY),
    String(WARMUP),
    String(gapMs),
    ...sizes.map((s) => `${s}:${iterations(s)}`),
  ], {
    timeoutMs: bound,
    env: variant ? { RMP_PROFILE_VARIANT: variant } : {},
  });
  if (!out.success) {
    throw new Error(
      `bench/zenoh/bridge_profile.py failed (exit ${out.code}):\n${out.stderr}`,
    );
  }
  const result = new Map<number, number[][]>();
  for (const line of out.stdout.trim().split("\n")) {
    const r = JSON.parse(line) as { bytes: number; stamps: number[][] };
    result.set(r.bytes, r.stamps);
  }
  return result;
}

/** The same stamps from a real `session_hosts` session. */
async function sessionStamps(net: Network): Promise<Map<number, number[][]>> {
  const folder = await Deno.makeTempDir({ prefix: "rmp-bench-stamps-" });
  try {
    let all: number[];
    {
      await using hosts = await openHostsSession(net, {
        port: PORT,
        stamps: folder,
      });
      await hosts.measure(sizes, iterations, WARMUP, gapMs);
      all = hosts.all;
      await new Promise((r) => setTimeout(r, 1000)); // the stamps' flush
    }
    const egress: (string | number)[][] = [];
    const ingress = new Map<number, number[]>();
    for (const entry of Deno.readDirSync(folder)) {
      const rows = Deno.readTextFileSync(`${folder}/${entry.name}`).trim()
        .split("\n").map((l) => JSON.parse(l) as [string, ...number[]]);
      for (const row of rows) {
        if (!row[0].startsWith("n0.")) continue; // the consumer's answer
        if (entry.name.startsWith("egress-")) egress.push(row);
        else ingress.set(row[1], row.slice(1) as number[]);
      }
    }
    if (egress.length !== all.length || ingress.size !== all.length) {
      throw new Error(
        `${all.length} messages, but ${egress.length} egress and ${ingress.size} ingress stamps`,
      );
    }
    const result = new Map<number, number[][]>();
    let k = 0;
    for (const size of sizes) {
      const stamps: number[][] = [];
      for (let i = 0; i < iterations(size) + WARMUP; i++, k++) {
        const [, t0, t1, t2, t3, t4] = egress[k] as [string, ...number[]];
        const fwd = ingress.get(t0);
        if (!fwd) throw new Error(`no ingress stamps for message ${k}`);
        const [, t5, t6, t7, t8] = fwd;
        if (i >= WARMUP) {
          stamps.push([t0, t1, t2, t3, t4, t5, t6, t7, t8, t0 + all[k]]);
        }
      }
      result.set(size, stamps);
    }
    return result;
  } finally {
    await Deno.remove(folder, { recursive: true }).catch(() => {});
  }
}

await using net = await createNetwork(2);
const measured = harness ? await harnessStamps(net) : await sessionStamps(net);
const table: { bytes: number; stages: Record<string, [number, number]> }[] = [];
for (const [bytes, stamps] of measured) {
  const r = { bytes, stamps };
  const stages: Record<string, [number, number]> = {};
  for (const [name, a, b] of STAGES) {
    const us = r.stamps.map((t) => (t[b] - t[a]) / 1000);
    stages[name] = [+pct(us, 50).toFixed(1), +pct(us, 95).toFixed(1)];
  }
  table.push({ bytes: r.bytes, stages });
  if (json) {
    for (const [name] of STAGES) {
      console.log(JSON.stringify({
        bench: "hosts_profile",
        setup: harness ? "harness" : "session",
        stage: name,
        bytes: r.bytes,
        p50_us: stages[name][0],
        p95_us: stages[name][1],
      }));
    }
  }
}
if (!json) {
  console.log(
    `bridged hop by stage (${
      harness
        ? `harness${variant ? ` (${variant})` : ""}: bridges without a session`
        : "session_hosts"
    }), p50 / p95 µs (paced, ${gapMs} ms apart; ${
      iterations(1)
    } messages per size below 16 MiB, ${WARMUP} warm-up)`,
  );
  console.log(
    ["stage".padEnd(12), ...table.map((t) => String(t.bytes).padEnd(18))]
      .join(" | "),
  );
  for (const [name] of STAGES) {
    console.log(
      [
        name.padEnd(12),
        ...table.map((t) =>
          `${t.stages[name][0]} / ${t.stages[name][1]}`.padEnd(18)
        ),
      ].join(" | "),
    );
  }
}
