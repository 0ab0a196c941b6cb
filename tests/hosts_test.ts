// One pipeline across hosts (issue 14): real network namespaces linked by a
// veth pair (tests/support/netns.ts) stand for two hosts. Host 0 runs this
// session's Python processes (runners, fork server, hosts link: the executor's
// Python is a wrapper that enters namespace 0), host 1 runs a real agent
// (`python -m remotemedia_multiprocess.agent`). Deno itself stays outside
// both: it only talks to its processes over Unix sockets and shared memory.
// Zenoh's own shared memory is off, so every byte between the hosts crosses
// TCP over the veth.
import { assert, assertEquals, assertInstanceOf } from "./support/assert.ts";
import {
  alive,
  executor,
  python,
  root,
  settleWithin,
  waitUntil,
} from "./support/sessions.ts";
import { canMakeNetns, createNetwork, type Network } from "./support/netns.ts";
import {
  binary,
  type LogEvent,
  type MultiprocessExecutor,
  Pipeline,
  type RuntimeData,
  type Session,
  text,
} from "../mod.ts";
import type { AddNodeOptions } from "../pipeline/schema.ts";
import { sweepStaleIsolations } from "../data/isolation.ts";
import { MAX_LOG_LINE_BYTES } from "../control/node_process.ts";
import {
  BackpressureTimeoutError,
  HostLostError,
  ProcessCrashError,
} from "../errors.ts";

const ignore = !canMakeNetns();
const PORT = 7447;
const LEASE_SECS = 3;
const modules = {
  modules: ["hosts_nodes"],
  modulePaths: [`${root}tests/nodes`],
  printLogs: false,
};

/** Two hosts, an agent on host 1, and an executor whose Python runs on host 0. */
interface Hosts extends AsyncDisposable {
  net: Network;
  agent: Deno.ChildProcess;
  agentPid: number;
  /** /proc/self/ns/net as a process on host 0 / host 1 reads it. */
  nsLocal: string;
  nsRemote: string;
  ex: MultiprocessExecutor;
  agentLog: string[];
}

async function netnsOf(net: Network, host: number): Promise<string> {
  const out = await net.exec(host, ["readlink", "/proc/self/ns/net"]);
  assert(out.success, out.stderr);
  return out.stdout.trim();
}

async function startAgent(
  net: Network,
  log: string[],
  args: string[] = [],
  scheme = "tcp",
): Promise<{ child: Deno.ChildProcess; pid: number }> {
  const child = net.spawn(1, [
    python,
    "-m",
    "remotemedia_multiprocess.agent",
    "--listen",
    `${scheme}/${net.address(0, 1)}:${PORT}`,
    "--lease-secs",
    String(LEASE_SECS),
    ...args,
  ], { stdout: "piped", stderr: "piped" });
  pump(child.stderr, log);
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let text = "";
  const deadline = Date.now() + 20_000;
  while (!text.includes("\n")) {
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, Math.max(0, deadline - Date.now()));
    const { value, done } = await reader.read();
    clearTimeout(timer);
    if (done) {
      throw new Error(`The agent ended before listening:\n${log.join("\n")}`);
    }
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const pid = JSON.parse(text.split("\n")[0]).pid as number;
  return { child, pid };
}

function pump(stream: ReadableStream<Uint8Array>, into: string[]): void {
  (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      into.push(...chunk.split("\n").filter(Boolean));
    }
  })().catch(() => {});
}

/** TLS set-up of {@linkcode hosts}: the agent's arguments, the host's options. */
interface TlsSetup {
  agentArgs: string[];
  host: Record<string, string | number>;
}

async function hosts(
  extra: Record<string, unknown> = {},
  tls?: (dir: string, address: string) => Promise<TlsSetup>,
): Promise<Hosts> {
  const net = await createNetwork(2);
  try {
    const dir = await Deno.makeTempDir({ prefix: "rmp-hosts-test-" });
    const wrapper = `${dir}/python`;
    await Deno.writeTextFile(
      wrapper,
      `#!/bin/sh\nexec ip netns exec ${net.ns(0)} ${python} "$@"\n`,
    );
    await Deno.chmod(wrapper, 0o755);
    const agentLog: string[] = [];
    const setup = await tls?.(dir, net.address(0, 1));
    const scheme = setup ? "tls" : "tcp";
    const { child, pid } = await startAgent(
      net,
      agentLog,
      setup?.agentArgs,
      scheme,
    );
    const ex = executor({
      python: { executable: wrapper },
      hosts: {
        edge: {
          endpoint: `${scheme}/${net.address(0, 1)}:${PORT}`,
          leaseSecs: LEASE_SECS,
          connectTimeoutSecs: 15,
          ...setup?.host,
        },
      },
      ...extra,
    });
    const result: Hosts = {
      net,
      agent: child,
      agentPid: pid,
      nsLocal: await netnsOf(net, 0),
      nsRemote: await netnsOf(net, 1),
      ex,
      agentLog,
      async [Symbol.asyncDispose]() {
        await ex.close();
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        await Promise.race([child.status, sleep(8_000)]);
        await net.close();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
    return result;
  } catch (e) {
    await net.close();
    throw e;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The isolation files of prefixes starting with `start` (shm and /tmp/rmp). */
function isolationFiles(start: string): string[] {
  const found: string[] = [];
  for (const dir of ["/dev/shm", "/tmp/rmp"]) {
    try {
      for (const e of Deno.readDirSync(dir)) {
        if (e.name.startsWith(start)) found.push(`${dir}/${e.name}`);
      }
    } catch { /* no such folder */ }
  }
  return found;
}

/** a (here) -> b (on host "edge") -> c (here). */
function chain(
  bOptions: AddNodeOptions = {},
): Pipeline {
  return new Pipeline()
    .addNode("where", "a", {})
    .addNode("where", "b", {}, { host: "edge", ...bOptions })
    .addNode("where", "c", {})
    .addInput("in", "a", "in")
    .connect("a", "out", "b", "in")
    .connect("b", "out", "c", "in")
    .addOutput("out", "c", "out");
}

/** A ready session of `pipeline` (default {@linkcode chain}) and its PIDs. */
async function ready(
  h: Hosts,
  pipeline: Pipeline = chain(),
): Promise<{ session: Session; pids: number[] }> {
  const session = await h.ex.createSession(pipeline, modules);
  await session.initialize();
  return { session, pids: session.status().map((s) => s.pid!) };
}

function textOf(data: RuntimeData): string {
  assert(data.kind === "text", `text, not ${data.kind}`);
  return data.text;
}

function failure(session: Session): Promise<Error> {
  return new Promise((resolve) =>
    session.addEventListener(
      "failed",
      (e) => resolve((e as CustomEvent<Error>).detail),
      { once: true },
    )
  );
}

/** Everything of the session and of the agent's side is gone. */
async function assertNothingLeft(
  h: Hosts,
  session: Session,
  pids: number[],
): Promise<void> {
  const localPrefix = session.isolation.prefix;
  const remotePrefix = `rmp${h.agentPid}x`;
  const gone = await waitUntil(
    () =>
      pids.every((p) => !alive(p)) &&
      isolationFiles(localPrefix).length === 0 &&
      isolationFiles(remotePrefix).length === 0,
    10_000,
  );
  assert(
    gone,
    `left behind: pids ${pids.filter(alive)}, files ${[
      ...isolationFiles(localPrefix),
      ...isolationFiles(remotePrefix),
    ]}\nagent log:\n${h.agentLog.join("\n")}`,
  );
}

Deno.test({
  name:
    "hosts: the middle node runs on the other host; text and binary cross intact, in order",
  ignore,
  async fn() {
    await using h = await hosts();
    const { session, pids } = await ready(h);
    const outputs = session.receive("out");
    for (let i = 0; i < 20; i++) {
      await session.send("in", text(`m${i}`));
      const got = textOf((await outputs.next()).value!.data).split("|");
      // c | b | a | message: a and c here, b on the other host.
      assertEquals(got.length, 7);
      assertEquals([got[0], got[2], got[4], got[6]], [
        h.nsLocal,
        h.nsRemote,
        h.nsLocal,
        `m${i}`,
      ]);
    }
    assert(h.nsLocal !== h.nsRemote);
    assertEquals(session.status().map((s) => s.host), [
      undefined,
      "edge",
      undefined,
    ]);
    const stats = await session.stats();
    const b = stats.processes.find((p) => p.nodeId === "b")!;
    // Its counters come over the relay; its memory is not measured from here.
    assertEquals([b.host, b.received, b.sent, b.rssBytes], [
      "edge",
      20,
      20,
      undefined,
    ]);
    for (const size of [1, 1024, 65536, 1 << 20, 4 << 20]) {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = (i * 7 + size) & 0xff;
      await session.send("in", binary(bytes));
      const got = (await outputs.next()).value!.data;
      assert(got.kind === "binary", got.kind);
      assertEquals(got.data.length, size);
      assertEquals(new Uint8Array(got.data), bytes);
    }
    assertEquals((await session.stats()).lost, 0);
    await outputs.return(undefined);
    await session.close();
    await assertNothingLeft(h, session, pids);
  },
});

Deno.test({
  name:
    "hosts: a stalled remote consumer ends in BackpressureTimeoutError; nothing is dropped",
  ignore,
  async fn() {
    const gate = await Deno.makeTempFile();
    await Deno.remove(gate);
    await using h = await hosts({ publishTimeoutSecs: 1, channelCapacity: 4 });
    const pipeline = new Pipeline()
      .addNode("gate", "b", { open_file: gate }, { host: "edge" })
      .addInput("in", "b", "in")
      .addOutput("out", "b", "out");
    const session = await h.ex.createSession(pipeline, modules);
    await session.initialize();
    let sent = 0;
    let error: unknown;
    const started = performance.now();
    while (sent < 100) {
      try {
        await session.send("in", text(`m${sent}`));
        sent++;
      } catch (e) {
        error = e;
        break;
      }
    }
    assertInstanceOf(error, BackpressureTimeoutError);
    // Bounded buffering: the node's one message, its channel (4), the wire
    // and ingress (4 credits), Deno's channel (4).
    assert(sent <= 1 + 4 + 4 + 4, `sent ${sent} before the timeout`);
    assert(performance.now() - started < 15_000);
    await Deno.writeTextFile(gate, "");
    const outputs = session.receive("out");
    for (let i = 0; i < sent; i++) {
      assertEquals(textOf((await outputs.next()).value!.data), `m${i}`);
    }
    await outputs.return(undefined);
    assertEquals((await session.stats()).lost, 0);
    await session.close();
    await Deno.remove(gate).catch(() => {});
  },
});

Deno.test({
  name:
    "hosts: kill -9 of a remote node is a ProcessCrashError naming the host",
  ignore,
  async fn() {
    await using h = await hosts();
    const { session, pids } = await ready(h);
    const remotePid = session.status().find((s) => s.nodeId === "b")!.pid!;
    const failed = failure(session);
    Deno.kill(remotePid, "SIGKILL");
    const error = await failed;
    assertInstanceOf(error, ProcessCrashError);
    assertEquals([error.nodeId, error.host, error.signal], [
      "b",
      "edge",
      "SIGKILL",
    ]);
    assert(error.message.includes('on host "edge"'), error.message);
    await session.close();
    await assertNothingLeft(h, session, pids);
  },
});

Deno.test({
  name:
    "hosts: a killed agent fails the session with HostLostError; its nodes go with it",
  ignore,
  async fn() {
    await using h = await hosts();
    const { session, pids } = await ready(h);
    const failed = failure(session);
    const killedAt = performance.now();
    Deno.kill(h.agentPid, "SIGKILL");
    const error = await failed;
    assertInstanceOf(error, HostLostError);
    assertEquals([error.host, error.reason], ["edge", "agent_exited"]);
    assert(performance.now() - killedAt < LEASE_SECS * 1000 + 2000);
    await session.close();
    // The agent's runners end on their control socket's end of file; its
    // files stay for the next sweep (an agent killed -9 cannot remove them).
    const remote = pids.filter((_, i) => session.status()[i].nodeId === "b");
    assert(
      await waitUntil(() => remote.every((p) => !alive(p)), 5_000),
      "the remote runner outlived its agent",
    );
    assertEquals(isolationFiles(session.isolation.prefix), []);
    // What the killed agent left, the next agent on that host sweeps.
    const next = await startAgent(h.net, h.agentLog);
    try {
      assert(
        await waitUntil(
          () => isolationFiles(`rmp${h.agentPid}x`).length === 0,
          5_000,
        ),
        `left by the killed agent: ${isolationFiles(`rmp${h.agentPid}x`)}`,
      );
    } finally {
      next.child.kill("SIGTERM");
      await next.child.status;
    }
  },
});

Deno.test({
  name:
    "hosts: a remote node killed under on-failure is restarted on its host and the stream goes on",
  ignore,
  async fn() {
    await using h = await hosts();
    const session = await h.ex.createSession(
      chain({ restart: { policy: "on-failure", backoffMs: 50 } }),
      modules,
    );
    const restarted: unknown[] = [];
    session.addEventListener("restarted", (e) => restarted.push(e));
    session.addEventListener("lost", () => {});
    await session.initialize();
    const b = () => session.status().find((s) => s.nodeId === "b")!;
    const firstPid = b().pid!;
    const outputs = session.receive("out");
    await session.send("in", text("before"));
    assert(textOf((await outputs.next()).value!.data).endsWith("|before"));
    Deno.kill(firstPid, "SIGKILL");
    assert(
      await waitUntil(
        () => b().restarts === 1 && b().state === "ready",
        20_000,
      ),
      `not restarted: ${JSON.stringify(session.status())}`,
    );
    assertEquals(restarted.length, 1);
    const secondPid = b().pid!;
    assert(secondPid !== firstPid && alive(secondPid));
    await session.send("in", text("after"));
    const got = textOf((await outputs.next()).value!.data).split("|");
    assertEquals([got[2], got[3], got[6]], [
      h.nsRemote,
      String(secondPid),
      "after",
    ]);
    await outputs.return(undefined);
    const pids = session.status().map((s) => s.pid!);
    await session.close();
    await assertNothingLeft(h, session, pids);
  },
});

Deno.test({
  name:
    "hosts: the Deno process killed -9: its link, the remote node and the remote files go; local files go at the next sweep",
  ignore,
  async fn() {
    await using h = await hosts();
    const wrapper = h.ex.config.python.executable;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${root}tests/fixtures/hosts_program.ts`,
        wrapper,
        `tcp/${h.net.address(0, 1)}:${PORT}`,
        `${root}tests/nodes`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const log: string[] = [];
    pump(child.stderr, log);
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let out = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    clearTimeout(timer);
    assert(out.includes("\n"), `the program ended early:\n${log.join("\n")}`);
    const { prefix, pids } = JSON.parse(out.split("\n")[0]) as {
      prefix: string;
      pids: number[];
    };
    const links = linkPids(prefix);
    assertEquals(links.length, 1, "one hosts link runs");
    const remotePrefix = `rmp${h.agentPid}x`;
    assert(isolationFiles(remotePrefix).length > 0, "the agent's isolation");
    child.kill("SIGKILL");
    await child.status;
    reader.cancel().catch(() => {});
    assert(
      await waitUntil(
        () =>
          [...pids, ...links].every((p) => !alive(p)) &&
          isolationFiles(remotePrefix).length === 0,
        10_000,
      ),
      `left behind: pids ${[...pids, ...links].filter(alive)}, files ${
        isolationFiles(remotePrefix)
      }\nagent log:\n${h.agentLog.join("\n")}`,
    );
    // Once the last holder of the dead owner's lock has exited, a sweep (any
    // new session's) takes the files. A killed process's group leader can
    // read as a zombie while its other threads still exit holding the lock,
    // so the sweep is retried briefly.
    assert(
      await waitUntil(() => {
        sweepStaleIsolations({ prefixes: [prefix] });
        return isolationFiles(prefix).length === 0;
      }, 5_000),
      `not swept: ${isolationFiles(prefix)}`,
    );
  },
});

/** PIDs of hosts link processes of isolation `prefix` (from /proc). */
function linkPids(prefix: string): number[] {
  const found: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (
        cmd.includes("remotemedia_multiprocess.hosts.link") &&
        cmd.includes(prefix)
      ) found.push(Number(e.name));
    } catch { /* gone */ }
  }
  return found;
}

Deno.test({
  name:
    "hosts: a remote node killed mid-stream under on-failure: sent = received + lost, the loss counted on its host",
  ignore,
  async fn() {
    await using h = await hosts({ channelCapacity: 4 });
    const pipeline = new Pipeline()
      .addNode("supervised", "n", { delay_ms: 15 }, {
        host: "edge",
        restart: { policy: "on-failure", backoffMs: 10 },
      })
      .addInput("in", "n", "in")
      .addOutput("out", "n", "out");
    const session = await h.ex.createSession(pipeline, {
      ...modules,
      modules: ["supervision_nodes"],
    });
    session.addEventListener("restarted", () => {});
    const lost: { nodeId?: string; channel: string; count: number }[] = [];
    session.addEventListener(
      "lost",
      (e) => lost.push((e as CustomEvent<typeof lost[0]>).detail),
    );
    await session.initialize();
    const TOTAL = 80;
    let received = 0;
    const reader = (async () => {
      for await (
        const sample of session.receive("out", { timeoutMs: 20_000 })
      ) {
        received++;
        if (Number(textOf(sample.data).slice(2)) === TOTAL - 1) return;
      }
    })();
    const n = () => session.status()[0];
    for (let i = 0; i < TOTAL; i++) {
      await session.send("in", text(`m:${i}`));
      if (i === 30) {
        Deno.kill(n().pid!, "SIGKILL");
        assert(
          await waitUntil(
            () => n().restarts === 1 && n().state === "ready",
            20_000,
          ),
          `not restarted: ${JSON.stringify(session.status())}`,
        );
      }
    }
    await (await settleWithin(reader, 30_000, "the reader")).status;
    const reported = lost.reduce((sum, e) => sum + e.count, 0);
    assert(reported > 0, "the kill lost the messages in flight");
    assertEquals(received + reported, TOTAL, `lost ${JSON.stringify(lost)}`);
    assertEquals((await session.stats()).lost, reported);
    await session.close();
  },
});

Deno.test({
  name:
    "hosts: a remote node's long log line arrives in bounded parts, as a local one's",
  ignore,
  async fn() {
    await using h = await hosts();
    const pipeline = new Pipeline()
      .addNode("line_printer", "n", {}, { host: "edge" })
      .addInput("in", "n", "in")
      .addOutput("out", "n", "out");
    const session = await h.ex.createSession(pipeline, {
      ...modules,
      modules: ["exec_nodes"],
    });
    const events: LogEvent[] = [];
    session.addEventListener("log", (e) => {
      const detail = (e as CustomEvent<LogEvent>).detail;
      if (detail.stream === "stdout") events.push(detail);
    });
    await session.initialize();
    const n = 4 * 1024 * 1024 + 5;
    await session.send("in", text(String(n)));
    const outputs = session.receive("out");
    assertEquals(textOf((await outputs.next()).value!.data), String(n));
    await outputs.return(undefined);
    const total = () => events.reduce((sum, e) => sum + e.line.length, 0);
    assert(await waitUntil(() => total() >= n, 10_000), `got ${total()}`);
    assertEquals(total(), n);
    assert(events.every((e) => e.line.length <= MAX_LOG_LINE_BYTES));
    assertEquals(events.length, Math.ceil(n / MAX_LOG_LINE_BYTES));
    assert(events.slice(0, -1).every((e) => e.continued));
    assert(!events.at(-1)!.continued);
    assert(events[1].line.startsWith("6789"), events[1].line.slice(0, 10));
    await session.close();
  },
});

Deno.test({
  name:
    "hosts: the link taken down fails the session within the lease; both sides clean up",
  ignore,
  async fn() {
    await using h = await hosts();
    const { session, pids } = await ready(h);
    const failed = failure(session);
    const downAt = performance.now();
    await h.net.linkDown(0, 1);
    const error = await failed;
    const detectedMs = performance.now() - downAt;
    assertInstanceOf(error, HostLostError);
    assertEquals([error.host, error.reason], ["edge", "lease_expired"]);
    assert(
      detectedMs < LEASE_SECS * 1000 * 1.5 + 1000,
      `detected after ${detectedMs} ms (lease ${LEASE_SECS} s)`,
    );
    await session.close();
    // The agent stops the session's nodes when the link's token expires.
    await assertNothingLeft(h, session, pids);
    await h.net.linkUp(0, 1);
  },
});

Deno.test({
  name:
    "hosts: no agent at the endpoint fails session start with HostLostError (unreachable)",
  ignore,
  async fn() {
    const ex = executor({
      hosts: {
        edge: { endpoint: "tcp/127.0.0.1:7", connectTimeoutSecs: 2 },
      },
    });
    try {
      const started = performance.now();
      let error: unknown;
      try {
        await ex.createSession(chain(), modules);
      } catch (e) {
        error = e;
      }
      assertInstanceOf(error, HostLostError);
      assertEquals(error.reason, "unreachable");
      assert(error.message.includes("remotemedia_multiprocess.agent"));
      assert(performance.now() - started < 15_000);
    } finally {
      await ex.close();
    }
  },
});

/** A CA and a certificate for `address` signed by it (openssl). */
async function certificates(dir: string, address: string): Promise<TlsSetup> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
  };
  await run([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=rmp test CA",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  ]);
  await run([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    `/CN=${address}`,
    "-keyout",
    "agent.key",
    "-out",
    "agent.csr",
  ]);
  await Deno.writeTextFile(
    `${dir}/san.ext`,
    `subjectAltName=IP:${address}\n`,
  );
  await run([
    "x509",
    "-req",
    "-in",
    "agent.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "san.ext",
    "-out",
    "agent.pem",
  ]);
  return {
    agentArgs: [
      "--tls-cert",
      `${dir}/agent.pem`,
      "--tls-key",
      `${dir}/agent.key`,
    ],
    host: { tlsRootCa: `${dir}/ca.pem` },
  };
}

Deno.test({
  name:
    "hosts: a tls/ endpoint: the agent's certificate is checked against tls_root_ca",
  ignore: ignore || !hasOpenssl(),
  async fn() {
    await using h = await hosts({}, certificates);
    const session = await h.ex.createSession(chain(), modules);
    await session.initialize();
    const outputs = session.receive("out");
    await session.send("in", text("over tls"));
    const got = textOf((await outputs.next()).value!.data).split("|");
    assertEquals([got[2], got[6]], [h.nsRemote, "over tls"]);
    await outputs.return(undefined);
    await session.close();
  },
});

Deno.test({
  name:
    "hosts: a tls/ endpoint whose certificate another CA signed is refused (unreachable)",
  ignore: ignore || !hasOpenssl(),
  async fn() {
    await using h = await hosts(
      { initTimeoutSecs: 30 },
      async (dir, address) => {
        const setup = await certificates(dir, address);
        const other = await Deno.makeTempDir({ dir });
        await certificates(other, address);
        return {
          agentArgs: setup.agentArgs,
          host: { tlsRootCa: `${other}/ca.pem`, connectTimeoutSecs: 3 },
        };
      },
    );
    let error: unknown;
    const t0 = performance.now();
    try {
      await h.ex.createSession(chain(), modules);
    } catch (e) {
      error = e;
    }
    assertInstanceOf(error, HostLostError);
    assertEquals(error.reason, "unreachable");
    // Within its connect_timeout_secs (3 s), plus start-up and clean-up.
    assert(performance.now() - t0 < 10_000, `${performance.now() - t0} ms`);
  },
});

function hasOpenssl(): boolean {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}
