/**
 * `deno run -A bench/hosts_chunk_probe.ts [--json] [--quick] [--gap-ms N]
 * [--sizes a,b] [--iterations N] [--chunks a,b] [--rounds N] [--env K=V]`:
 * what a bridge would gain by cutting big messages into several Zenoh
 * samples, measured on plain Zenoh between two network namespaces with the
 * copies the bridges of `python/remotemedia_multiprocess/hosts/bridge.py`
 * make in Python
 * (`bench/zenoh/chunk_probe.py`; no iceoryx2, no session):
 *
 * - `bare`: a prebuilt `ZBytes`, nothing copied at either end
 *   (`zenoh_netns` of `bench:hosts`);
 * - `fresh`: a new `ZBytes` per message, built before the stamp, nothing
 *   copied after it (is a fresh buffer slower to send than a reused one?);
 * - `sender`: today's bridge copies at the sender only;
 * - `whole`: today's bridge copies: `bytes(view)` + `put` (its `ZBytes`
 *   copy) at the sender, `to_bytes()` + a copy into the destination at the
 *   receiver, one sample per message;
 * - `chunked_<n>`: the same copies per `n`-byte chunk, one sample each.
 *
 * The modes run interleaved, in `--rounds` rounds (default 2), each in the
 * other order. One-way time from before the first copy to the whole message
 * in the destination buffer, p50 / p95 µs.
 *
 * @module
 */
import { flagValue, pacedIterations, pacedWarmup, pct } from "./hops.ts";
import { ensureZenoh } from "./zenoh/venv.ts";
import { createNetwork } from "../tests/support/netns.ts";

const args = Deno.args;
const json = args.includes("--json");
const flag = (name: string): string | undefined => flagValue(args, name);
const gapMs = Number(flag("--gap-ms") ?? 1);
const sizes = flag("--sizes")?.split(",").map(Number) ??
  [1 << 20, 16 << 20];
const chunks = flag("--chunks")?.split(",").map(Number) ??
  [60_000, 256 << 10, 1 << 20];
const rounds = Number(flag("--rounds") ?? 2);
/** `--env K=V` (repeatable): environment of both peers (e.g. glibc's
 * `MALLOC_MMAP_THRESHOLD_`, to try keeping big buffers off fresh mmaps). */
const env: Record<string, string> = {};
args.forEach((a, i) => {
  if (a !== "--env") return;
  const [k, ...v] = args[i + 1].split("=");
  env[k] = v.join("=");
});
const iterations = pacedIterations(args);
const WARMUP = pacedWarmup(args);
const PORT = 7450;
const root = new URL("../", import.meta.url).pathname;
const modes = [
  "bare",
  "fresh",
  "sender",
  "whole",
  ...chunks.map((c) => `chunked_${c}`),
];

const python = await ensureZenoh(json ? () => {} : console.error);
await using net = await createNetwork(2);
const endpoint = `tcp/${net.address(0, 1)}:${PORT}`;
const samples = new Map<string, Map<number, number[]>>();

async function run(mode: string, r: number): Promise<void> {
  const count = (s: number): number => {
    const n = iterations(s);
    return Math.floor(n / rounds) + (r < n % rounds ? 1 : 0);
  };
  const bound = 60_000 +
    sizes.reduce((t, s) => t + (count(s) + WARMUP) * (gapMs + 300), 0);
  const echo = net.spawn(1, [
    python,
    `${root}bench/zenoh/chunk_probe.py`,
    "echo",
    endpoint,
    String(bound / 1000),
    String(Math.max(...sizes)),
  ], { stdout: "piped", stderr: "inherit", env });
  try {
    const reader = echo.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    const timer = setTimeout(() => reader.cancel(), 30_000);
    const { value } = await reader.read();
    clearTimeout(timer);
    reader.releaseLock();
    if (!value?.startsWith("ready")) throw new Error("the echo did not start");
    const [kind, chunk] = mode.startsWith("chunked_")
      ? ["chunked", mode.slice(8)]
      : [mode, "0"];
    const out = await net.exec(0, [
      python,
      `${root}bench/zenoh/chunk_probe.py`,
      "ping",
      endpoint,
      String(WARMUP),
      String(gapMs),
      kind,
      chunk,
      ...sizes.map((s) => `${s}:${count(s)}`),
    ], { timeoutMs: bound, env });
    if (!out.success) {
      throw new Error(`chunk_probe.py ping ${mode} failed:\n${out.stderr}`);
    }
    const into = samples.get(mode) ?? new Map<number, number[]>();
    samples.set(mode, into);
    for (const line of out.stdout.trim().split("\n")) {
      const r = JSON.parse(line) as { bytes: number; one_way_us: number[] };
      into.set(r.bytes, [...(into.get(r.bytes) ?? []), ...r.one_way_us]);
    }
  } finally {
    try {
      echo.kill("SIGKILL");
    } catch { /* exited */ }
    await echo.status;
  }
}

for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
    await run(mode, r);
  }
}

const cell = (us: number[]): string =>
  `${pct(us, 50).toFixed(1)} / ${pct(us, 95).toFixed(1)}`;
if (json) {
  for (const mode of modes) {
    for (const size of sizes) {
      const us = samples.get(mode)!.get(size)!;
      console.log(JSON.stringify({
        bench: "hosts_chunks",
        mode,
        bytes: size,
        p50_us: +pct(us, 50).toFixed(1),
        p95_us: +pct(us, 95).toFixed(1),
      }));
    }
  }
} else {
  console.log(
    `Zenoh across namespaces with a bridge's Python copies, one-way p50 / p95 µs (${rounds} interleaved rounds${
      Object.keys(env).length ? `; env ${JSON.stringify(env)}` : ""
    })`,
  );
  console.log(
    ["mode".padEnd(16), ...sizes.map((s) => String(s).padEnd(20))].join(" | "),
  );
  for (const mode of modes) {
    console.log(
      [
        mode.padEnd(16),
        ...sizes.map((s) => cell(samples.get(mode)!.get(s)!).padEnd(20)),
      ].join(" | "),
    );
  }
}
