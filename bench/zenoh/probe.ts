/**
 * `deno run -A bench/zenoh/probe.ts stall|lease [--json]`: two behaviours of
 * plain Zenoh (Python `eclipse-zenoh` 1.10.2, default transport settings) that
 * the multi-host design of issue 14 depends on, measured between two network
 * namespaces (tests/support/netns.ts; needs root):
 *
 * - `stall`: a subscriber whose callback sleeps 15 s while the publisher puts
 *   1000 x 1 MiB, reliable, `CongestionControl.BLOCK`: how many puts return
 *   before one blocks, how long it blocks, and how many samples arrive.
 * - `lease`: the time from `ip link set ... down` to a watcher seeing the far
 *   peer's liveliness token deleted.
 *
 * @module
 */
import { createNetwork, type Network } from "../../tests/support/netns.ts";
import { ensureZenoh } from "./venv.ts";
import { monotonicNs } from "../../data/native.ts";

const here = new URL("./", import.meta.url).pathname;
const mode = Deno.args[0];
if (mode !== "stall" && mode !== "lease") {
  throw new RangeError(
    `Usage: probe.ts stall|lease (got ${mode ?? "nothing"})`,
  );
}
const json = Deno.args.includes("--json");

/** Line readers, one per child (a stream can be piped only once). */
const readers = new Map<
  Deno.ChildProcess,
  { reader: ReadableStreamDefaultReader<string>; buf: string }
>();

/** Reads `child`'s stdout lines until `onLine` says stop (bounded). */
async function lines(
  child: Deno.ChildProcess,
  onLine: (line: string) => boolean,
  timeoutMs: number,
): Promise<void> {
  let r = readers.get(child);
  if (!r) {
    r = {
      reader: child.stdout.pipeThrough(new TextDecoderStream()).getReader(),
      buf: "",
    };
    readers.set(child, r);
  }
  const deadline = Date.now() + timeoutMs;
  while (true) {
    let nl;
    while ((nl = r.buf.indexOf("\n")) >= 0) {
      const line = r.buf.slice(0, nl);
      r.buf = r.buf.slice(nl + 1);
      if (onLine(line)) return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`${mode}: no answer from a peer in ${timeoutMs} ms`),
          ),
        Math.max(0, deadline - Date.now()),
      );
    });
    const { value, done } = await Promise.race([r.reader.read(), timeout])
      .finally(() => clearTimeout(timer));
    if (done) throw new Error(`${mode}: a peer ended early`);
    r.buf += value;
  }
}

function spawn(net: Network, host: number, args: string[]): Deno.ChildProcess {
  return net.spawn(host, args, { stdout: "piped", stderr: "inherit" });
}

const python = await ensureZenoh(json ? () => {} : console.error);
await using net = await createNetwork(2);
const endpoint = `tcp/${net.address(0, 1)}:7447`;
let result: Record<string, unknown>;
if (mode === "stall") {
  const stallS = 15;
  const sub = spawn(net, 1, [
    python,
    `${here}stall_probe.py`,
    "sub",
    endpoint,
    String(stallS),
  ]);
  await lines(sub, (l) => l === "ready", 30_000);
  const pub = await net.exec(0, [
    python,
    `${here}stall_probe.py`,
    "pub",
    endpoint,
    "1000",
    String(1 << 20),
  ], { timeoutMs: 120_000 });
  if (!pub.success) throw new Error(`stall: publisher failed: ${pub.stderr}`);
  let received = -1;
  await lines(sub, (l) => {
    received = JSON.parse(l).received;
    return true;
  }, 120_000);
  result = {
    probe: "stall",
    stall_s: stallS,
    bytes: 1 << 20,
    ...JSON.parse(pub.stdout),
    received,
  };
} else {
  const token = spawn(net, 1, [
    python,
    `${here}lease_probe.py`,
    "token",
    endpoint,
  ]);
  await lines(token, (l) => l === "ready", 30_000);
  const watch = spawn(net, 0, [
    python,
    `${here}lease_probe.py`,
    "watch",
    endpoint,
    "60",
  ]);
  await lines(watch, (l) => JSON.parse(l).kind === "put", 30_000);
  const down = monotonicNs();
  await net.linkDown(0, 1);
  let deleted = 0n;
  await lines(watch, (l) => {
    const r = JSON.parse(l);
    if (r.kind === "delete") deleted = BigInt(r.monotonic_ns);
    return r.kind === "delete";
  }, 60_000);
  result = {
    probe: "lease",
    link_down_to_token_deleted_ms: Number(deleted - down) / 1e6,
  };
}
console.log(JSON.stringify(result));
