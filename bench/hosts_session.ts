/**
 * The `session_hosts` path of `bench:hosts` (issue 14 item 6): this project's
 * node -> node hop with the producer on host 0 and the consumer on host 1,
 * two network namespaces of `tests/support/netns.ts`, set up exactly as
 * `tests/hosts_test.ts` does it: the executor's Python processes (runners,
 * fork server, hosts link) run in namespace 0 through a wrapper script, a
 * real host agent (`python -m remotemedia_multiprocess.agent`) runs in
 * namespace 1, and the edge between the two nodes crosses as an egress bridge
 * (host 0) -> Zenoh over TCP on the veth -> an ingress bridge (host 1).
 *
 * The node types are `bench:hops`'s (`bench/nodes/bench_nodes.py`):
 * `hop_source` (host 0) allocates the N-byte message in place, its publisher
 * stamps CLOCK_MONOTONIC when it hands it over; `hop_sink` (host "edge")
 * reads `now - stamp` when its `process()` starts, holding the whole message
 * (it touches the last byte), and answers that time and the size it got
 * (which crosses back to Deno over a second bridge, unmeasured). Namespaces
 * share the monotonic clock, so the two stamps compare.
 *
 * Every wait is bounded: a lost message, a node error or a lost host fails
 * the measurement instead of hanging it.
 *
 * @module
 */
import { binary, MultiprocessExecutor, Pipeline } from "../mod.ts";
import type { BinaryData } from "../data/runtime_data/mod.ts";
import type { Network } from "../tests/support/netns.ts";
import { bounded } from "./bounded.ts";
import { python, TIMEOUT } from "./hops.ts";

const root = new URL("../", import.meta.url).pathname;

/** The host name of the consumer node in the pipeline and the executor. */
export const REMOTE_HOST = "edge";

/** Options of {@linkcode openHostsSession}. */
export interface HostsSessionOptions {
  /** The port the agent listens on (host 1's address on the veth). */
  port: number;
  /** Zenoh lease of the agent and of the session's link, in s. @default {10} */
  leaseSecs?: number;
  /**
   * A folder: the session's hosts link (host 0) and the agent (host 1) then
   * load `bench/zenoh/bridge_stamps.py` (through a `sitecustomize.py` on
   * their `PYTHONPATH`), which writes stamps around their bridges there
   * (`bench/hosts_profile.ts`). Off by default.
   */
  stamps?: string;
}

/** A live session whose consumer runs on host 1; see the module doc. */
export interface HostsSession extends AsyncDisposable {
  /**
   * One-way times in µs per size: for each size `warmup + iterations(size)`
   * paced messages, each answered before the next, `gapMs` after the answer.
   */
  measure(
    sizes: number[],
    iterations: (size: number) => number,
    warmup: number,
    gapMs: number,
  ): Promise<Map<number, number[]>>;
  /** The stderr lines of the agent so far (for error messages). */
  readonly agentLog: string[];
  /**
   * Every one-way time in ns the consumer reported, warm-ups included, in
   * the order sent (to join with the bridges' stamps).
   */
  readonly all: number[];
  /** /proc/self/ns/net of the producer's and of the consumer's runner. */
  readonly namespaces: { producer: string; consumer: string };
}

/** source (host 0) -> sink (host "edge"): input `in`, output `out`. */
function pipeline(): Pipeline {
  return new Pipeline("session_hosts")
    .addNode("hop_source", "n0", {})
    .addNode("hop_sink", "n1", {}, { host: REMOTE_HOST })
    .connect("n0", "out", "n1", "in")
    .addInput("in", "n0", "in")
    .addOutput("out", "n1", "out");
}

function pump(stream: ReadableStream<Uint8Array>, into: string[]): void {
  (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      into.push(...chunk.split("\n").filter(Boolean));
    }
  })().catch(() => {});
}

/** Starts the agent in host 1; resolves once it listens (bounded). */
async function startAgent(
  net: Network,
  port: number,
  leaseSecs: number,
  log: string[],
  env: Record<string, string>,
): Promise<Deno.ChildProcess> {
  const child = net.spawn(1, [
    python,
    "-m",
    "remotemedia_multiprocess.agent",
    "--listen",
    `tcp/${net.address(0, 1)}:${port}`,
    "--lease-secs",
    String(leaseSecs),
  ], { stdout: "piped", stderr: "piped", env });
  pump(child.stderr, log);
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  const timer = setTimeout(() => reader.cancel().catch(() => {}), 30_000);
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(
          `The host agent did not start listening within 30 s:\n${
            log.join("\n")
          }`,
        );
      }
      text += value;
    }
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    throw e;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  child.stdout.cancel().catch(() => {});
  const first = JSON.parse(text.split("\n")[0]);
  if (first.type !== "listening") {
    throw new Error(`The host agent said ${text.split("\n")[0]}`);
  }
  return child;
}

async function netnsOf(net: Network, host: number): Promise<string> {
  const out = await net.exec(host, ["readlink", "/proc/self/ns/net"]);
  if (!out.success) throw new Error(`readlink in host ${host}: ${out.stderr}`);
  return out.stdout.trim();
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The agent in host 1, an executor whose Python runs in host 0, and the
 * session `hop_source` (host 0) -> `hop_sink` (host 1), initialized. Checks
 * that the two runners really are in the two namespaces. Dispose it to close
 * the session and the executor and stop the agent (the network is the
 * caller's).
 */
export async function openHostsSession(
  net: Network,
  options: HostsSessionOptions,
): Promise<HostsSession> {
  const leaseSecs = options.leaseSecs ?? 10;
  const dir = await Deno.makeTempDir({ prefix: "rmp-bench-hosts-" });
  const agentLog: string[] = [];
  let agent: Deno.ChildProcess | null = null;
  let executor: MultiprocessExecutor | null = null;
  const cleanup = async (): Promise<void> => {
    try {
      await executor?.close();
    } finally {
      if (agent) {
        try {
          agent.kill("SIGTERM");
        } catch { /* already gone */ }
        const ended = await Promise.race([
          agent.status.then(() => true),
          pause(8_000).then(() => false),
        ]);
        if (!ended) {
          try {
            agent.kill("SIGKILL");
          } catch { /* gone */ }
          await agent.status;
        }
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  };
  try {
    const wrapper = `${dir}/python`;
    let exports = "";
    const agentEnv: Record<string, string> = {};
    if (options.stamps !== undefined) {
      const site = `${dir}/site`;
      await Deno.mkdir(site);
      await Deno.writeTextFile(
        `${site}/sitecustomize.py`,
        [
          "import importlib.util",
          `spec = importlib.util.spec_from_file_location("bridge_stamps", ${
            JSON.stringify(`${root}bench/zenoh/bridge_stamps.py`)
          })`,
          "module = importlib.util.module_from_spec(spec)",
          "spec.loader.exec_module(module)",
          "module.install()",
          "",
        ].join("\n"),
      );
      exports = `export RMP_BENCH_STAMPS='${options.stamps}'\n` +
        `export PYTHONPATH='${site}'\${PYTHONPATH:+:\$PYTHONPATH}\n`;
      agentEnv.RMP_BENCH_STAMPS = options.stamps;
      agentEnv.PYTHONPATH = [site, Deno.env.get("PYTHONPATH")].filter(Boolean)
        .join(":");
    }
    await Deno.writeTextFile(
      wrapper,
      `#!/bin/sh\n${exports}exec ip netns exec ${net.ns(0)} ${python} "$@"\n`,
    );
    await Deno.chmod(wrapper, 0o755);
    agent = await startAgent(net, options.port, leaseSecs, agentLog, agentEnv);
    executor = new MultiprocessExecutor({
      python: { executable: wrapper },
      initTimeoutSecs: 60,
      channelCapacity: 2, // as bench:hops
      hosts: {
        [REMOTE_HOST]: {
          endpoint: `tcp/${net.address(0, 1)}:${options.port}`,
          leaseSecs,
          connectTimeoutSecs: 15,
        },
      },
    });
    // A node error or a lost host fails the bench at once.
    let fail: (e: Error) => void = () => {};
    const failed = new Promise<never>((_, reject) => (fail = reject));
    failed.catch(() => {}); // observed by the races below
    const session = await executor.createSession(pipeline(), {
      modules: ["bench_nodes"],
      modulePaths: [`${root}bench/nodes`],
      printLogs: false,
      onError: (e) => fail(e),
    });
    session.addEventListener(
      "failed",
      (e) => fail((e as CustomEvent<Error>).detail),
    );
    await bounded(
      Promise.race([session.initialize(), failed]),
      90_000,
      "session_hosts: session start",
    );
    // The consumer really runs on the other host.
    const nsLocal = await netnsOf(net, 0);
    const nsRemote = await netnsOf(net, 1);
    // Each runner's /proc/<pid>/ns/net (netns share the PID namespace).
    const nsOfNode = (node: string): string => {
      const pid = session.status().find((s) => s.nodeId === node)?.pid;
      if (!pid) throw new Error(`session_hosts: node ${node} has no pid`);
      return Deno.readLinkSync(`/proc/${pid}/ns/net`);
    };
    const placed = { n0: nsOfNode("n0"), n1: nsOfNode("n1") };
    if (
      placed.n0 !== nsLocal || placed.n1 !== nsRemote || nsLocal === nsRemote
    ) {
      throw new Error(
        `session_hosts: the producer runs in ${placed.n0}, the consumer in ${placed.n1}; wanted ${nsLocal} and ${nsRemote}`,
      );
    }
    const out = session.receive("out", { timeoutMs: TIMEOUT.timeoutMs });
    const trigger = new Uint8Array(8);
    const all: number[] = [];
    return {
      agentLog,
      all,
      namespaces: { producer: nsLocal, consumer: nsRemote },
      async measure(sizes, iterations, warmup, gapMs) {
        const result = new Map<number, number[]>();
        for (const size of sizes) {
          new DataView(trigger.buffer).setBigUint64(0, BigInt(size), true);
          const us: number[] = [];
          for (let i = 0; i < iterations(size) + warmup; i++) {
            await Promise.race([
              bounded(
                session.send("in", binary(trigger)),
                TIMEOUT.timeoutMs,
                `session_hosts: the trigger for ${size} bytes`,
              ),
              failed,
            ]);
            const next = await Promise.race([
              bounded(
                out.next(),
                TIMEOUT.timeoutMs,
                `session_hosts: the answer for ${size} bytes (agent log:\n${
                  agentLog.join("\n")
                })`,
              ),
              failed,
            ]);
            if (next.done) throw new Error("session_hosts: the session ended");
            const data = next.value.data as BinaryData;
            const v = new DataView(
              data.data.buffer,
              data.data.byteOffset,
              data.data.byteLength,
            );
            const ns = Number(v.getBigUint64(0, true));
            const got = Number(v.getBigUint64(8, true));
            if (got !== size) {
              throw new Error(`session_hosts: the consumer got ${got} bytes`);
            }
            all.push(ns);
            if (i >= warmup) us.push(ns / 1000);
            if (gapMs) await pause(gapMs);
          }
          result.set(size, us);
        }
        const { lost } = await bounded(
          session.stats(),
          TIMEOUT.timeoutMs,
          "session_hosts: the session's stats",
        );
        if (lost) throw new Error(`session_hosts: ${lost} message(s) lost`);
        return result;
      },
      async [Symbol.asyncDispose]() {
        await out.return().catch(() => {});
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup().catch(() => {});
    throw e;
  }
}
