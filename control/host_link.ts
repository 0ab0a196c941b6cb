/**
 * The Deno end of a session's link to its remote hosts (issue 14,
 * docs/hosts-protocol.md): spawns `python -m remotemedia_multiprocess.hosts.link`
 * and turns what it reports into one {@linkcode ProcessHandle} per remote node,
 * so the session supervises a node on another host as it does a local one.
 *
 * The link relays each remote runner's control lines over its own connection
 * to the session's control socket; this side carries the rest as JSON lines:
 * events on the link's stdout (`spawned`, `log`, `exit`, `lost`, `host_lost`,
 * `error`, `start_failed`, `started`, `closed`), commands on its stdin
 * (`kill`, `spawn`, `close`).
 *
 * @module
 */
import { HostLinkError, HostLostError, ProcessSpawnError } from "../errors.ts";
import type { RunnerSpec } from "../protocol/contracts.ts";
import type { HostConfig } from "./config.ts";
import type { HostPlan } from "./_hosts.ts";
import { pumpLines } from "./_lines.ts";
import { MAX_LOG_LINE_BYTES, type ProcessHandle } from "./node_process.ts";

/** What the link reports besides processes. */
export interface HostLinkHandlers {
  /** A host was lost (its agent's token went, or the link process died). */
  onHostLost(error: HostLostError): void;
  /** Messages lost on the way across hosts (a gap the bridges saw). */
  onLost(event: { channel: string; count: number; host: string }): void;
  /** Something of the link or an agent failed outside any node. */
  onError(error: Error): void;
  /** A line of the link's own stderr. */
  onLinkLog(line: string): void;
}

/** Everything {@linkcode HostLink.start} needs. */
export interface HostLinkOptions {
  /** The session id. */
  sessionId: string;
  /** The session's isolation (the bridges' channels live there). */
  isolation: { prefix: string; root: string };
  /** The session's control socket (the link relays runners' lines to it). */
  controlSocket: string;
  /** Where the remote nodes go and which channels cross. */
  plan: HostPlan;
  /** The configured hosts. */
  hosts: Record<string, HostConfig>;
  /** The runner spec of every remote node. */
  specs: Map<string, RunnerSpec>;
  /** Channel capacity and subscribers, as the session created them. */
  channel: { capacity: number; maxSubscribers: number };
  /** The largest message, bytes. */
  maxPayloadBytes: number;
  /** The Python that runs the link (it needs the `hosts` extra). */
  python: string;
  /** The link's environment. */
  env: Record<string, string>;
  /** Event handlers. */
  handlers: HostLinkHandlers;
}

/** The link's spec file (read by hosts/link.py). */
interface LinkSpec {
  session_id: string;
  iox_prefix: string;
  iox_root: string;
  control_socket: string;
  max_payload_bytes: number;
  hosts: Record<string, {
    endpoint: string;
    lease_secs: number;
    connect_timeout_secs: number;
    tls_root_ca?: string;
    tls_cert?: string;
    tls_key?: string;
    nodes: RunnerSpec[];
    channels: { name: string; capacity: number; max_subscribers: number }[];
    bridges: {
      channel: string;
      direction: "out" | "in";
      capacity: number;
      max_subscribers: number;
    }[];
  }>;
}

/** One event line of the link. */
interface LinkEvent {
  type: string;
  node?: string;
  host?: string;
  pid?: number;
  stream?: "stdout" | "stderr";
  line?: string;
  continued?: boolean;
  code?: number | null;
  signal?: string | null;
  channel?: string;
  count?: number;
  reason?: string;
  lease_secs?: number;
  error?: string;
}

const encoder = new TextEncoder();
/**
 * Bound on one event line: a relayed log line is at most
 * MAX_LOG_LINE_BYTES (the agent cuts longer ones), and JSON escaping can
 * make it up to six times longer.
 */
const MAX_EVENT_LINE_BYTES = 8 * MAX_LOG_LINE_BYTES;
/** Bound on the link's own exit after `close` (it bounds its agents' answers at 8 s). */
const CLOSE_TIMEOUT_MS = 12_000;

/** A remote node's process as the session sees it. */
class RemoteProcess {
  readonly status: Promise<{ code: number | null; signal: string | null }>;
  readonly #resolve: (
    s: { code: number | null; signal: string | null },
  ) => void;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  #out!: ReadableStreamDefaultController<Uint8Array>;
  #err!: ReadableStreamDefaultController<Uint8Array>;
  done = false;

  constructor(readonly pid: number) {
    const { promise, resolve } = Promise.withResolvers<
      { code: number | null; signal: string | null }
    >();
    this.status = promise;
    this.#resolve = resolve;
    this.stdout = new ReadableStream({ start: (c) => void (this.#out = c) });
    this.stderr = new ReadableStream({ start: (c) => void (this.#err = c) });
  }

  /** A relayed line; a `continued` one (a part of a longer line) has no newline. */
  line(stream: "stdout" | "stderr", line: string, continued: boolean): void {
    if (this.done) return;
    (stream === "stdout" ? this.#out : this.#err).enqueue(
      encoder.encode(continued ? line : `${line}\n`),
    );
  }

  exit(code: number | null, signal: string | null): void {
    if (this.done) return;
    this.done = true;
    this.#out.close();
    this.#err.close();
    this.#resolve({ code, signal });
  }
}

/**
 * A running link. {@linkcode HostLink.start} resolves once every agent has
 * started its nodes.
 *
 * @example
 * ```ts ignore
 * const link = await HostLink.start(options);
 * const handle = link.handle("asr");
 * await link.close();
 * ```
 */
export class HostLink {
  readonly #child: Deno.ChildProcess;
  readonly #options: HostLinkOptions;
  readonly #procs = new Map<string, RemoteProcess>();
  readonly #spawns = new Map<string, PromiseWithResolvers<void>>();
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #started = Promise.withResolvers<void>();
  readonly #exited: Promise<Deno.CommandStatus>;
  readonly #lost = new Set<string>();
  #closing = false;
  #stderrTail: string[] = [];

  private constructor(child: Deno.ChildProcess, options: HostLinkOptions) {
    this.#child = child;
    this.#options = options;
    this.#writer = child.stdin.getWriter();
    const reading = Promise.all([
      // An event is one JSON line; a longer line than any event is not one.
      pumpLines(child.stdout, (line, continued) => {
        if (continued) options.handlers.onLinkLog(line);
        else if (line) this.#onEvent(line);
      }, MAX_EVENT_LINE_BYTES),
      pumpLines(child.stderr, (line) => {
        this.#stderrTail = [...this.#stderrTail, line].slice(-20);
        options.handlers.onLinkLog(line);
      }, MAX_LOG_LINE_BYTES),
    ]);
    this.#exited = child.status.then(async (status) => {
      await reading;
      this.#onLinkExit(status);
      return status;
    });
  }

  /**
   * Spawns the link and waits until every remote node is spawned.
   *
   * @throws {HostLostError} reason `unreachable` when an agent did not answer.
   * @throws {ProcessSpawnError} when the link cannot run or an agent refused.
   */
  static async start(options: HostLinkOptions): Promise<HostLink> {
    const specPath = `${options.isolation.root}link-spec.json`;
    await Deno.writeTextFile(specPath, JSON.stringify(linkSpec(options)));
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(options.python, {
        args: ["-m", "remotemedia_multiprocess.hosts.link", "--spec", specPath],
        env: options.env,
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (cause) {
      throw new ProcessSpawnError(
        `Cannot start the hosts link with ${options.python}: ${cause}`,
        { path: options.python, cause },
      );
    }
    const link = new HostLink(child, options);
    try {
      await link.#started.promise;
    } catch (e) {
      await link.close();
      throw e;
    }
    return link;
  }

  /** The handle of remote node `nodeId` (after start or a respawn). */
  handle(nodeId: string): ProcessHandle {
    const proc = this.#procs.get(nodeId);
    if (!proc) throw new RangeError(`No remote node "${nodeId}" was spawned`);
    return {
      pid: proc.pid,
      stdout: proc.stdout,
      stderr: proc.stderr,
      status: proc.status,
      kill: (signal) => this.#send({ type: "kill", node: nodeId, signal }),
    };
  }

  /** Asks the node's agent to start it again (a restart); resolves with its handle. */
  async respawn(nodeId: string, attempt: number): Promise<ProcessHandle> {
    const spawned = Promise.withResolvers<void>();
    this.#spawns.set(nodeId, spawned);
    await this.#send({ type: "spawn", node: nodeId, attempt });
    const ended = this.#exited.then(() => {
      throw new ProcessSpawnError(
        `Cannot restart node "${nodeId}" on host "${
          this.#hostOf(nodeId)
        }": the hosts link ended`,
        { path: this.#options.python },
      );
    });
    try {
      await Promise.race([spawned.promise, ended]);
    } finally {
      this.#spawns.delete(nodeId);
    }
    return this.handle(nodeId);
  }

  /** Stops the link: every agent stops its nodes and removes its files (bounded). */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      await this.#send({ type: "close" });
      await this.#writer.close().catch(() => {});
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.#exited.then(() => false),
      new Promise<boolean>((r) =>
        timer = setTimeout(() => r(true), CLOSE_TIMEOUT_MS)
      ),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
      await this.#exited;
    }
  }

  #hostOf(nodeId: string): string | undefined {
    for (const [host, ids] of this.#options.plan.nodes) {
      if (ids.includes(nodeId)) return host;
    }
    return undefined;
  }

  async #send(command: Record<string, unknown>): Promise<void> {
    try {
      await this.#writer.write(encoder.encode(`${JSON.stringify(command)}\n`));
    } catch { /* the link is gone: its exit is reported */ }
  }

  #onEvent(line: string): void {
    let e: LinkEvent;
    try {
      e = JSON.parse(line);
    } catch {
      this.#options.handlers.onLinkLog(line);
      return;
    }
    const h = this.#options.handlers;
    const hostConfig = (host?: string) =>
      host ? this.#options.hosts[host] : undefined;
    switch (e.type) {
      case "spawned": {
        const proc = new RemoteProcess(e.pid ?? 0);
        this.#procs.set(e.node!, proc);
        this.#spawns.get(e.node!)?.resolve();
        break;
      }
      case "log":
        this.#procs.get(e.node!)?.line(
          e.stream ?? "stderr",
          e.line ?? "",
          e.continued === true,
        );
        break;
      case "exit":
        this.#procs.get(e.node!)?.exit(e.code ?? null, e.signal ?? null);
        break;
      case "lost":
        h.onLost({ channel: e.channel!, count: e.count!, host: e.host! });
        break;
      case "started":
        this.#started.resolve();
        break;
      case "start_failed":
        this.#started.reject(
          e.reason === "unreachable"
            ? new HostLostError({
              host: e.host!,
              reason: "unreachable",
              endpoint: hostConfig(e.host)?.endpoint,
              detail: e.error,
            })
            : new ProcessSpawnError(
              `Host "${e.host}" refused the session: ${e.error}`,
              { path: hostConfig(e.host)?.endpoint ?? "" },
            ),
        );
        break;
      case "host_lost":
        if (this.#closing || this.#lost.has(e.host!)) break;
        this.#lost.add(e.host!);
        h.onHostLost(
          new HostLostError({
            host: e.host!,
            reason: e.reason === "lease_expired"
              ? "lease_expired"
              : "agent_exited",
            leaseSecs: e.lease_secs,
            endpoint: hostConfig(e.host)?.endpoint,
          }),
        );
        this.#endHost(e.host!);
        break;
      case "error":
        if (e.node && this.#spawns.has(e.node)) {
          this.#spawns.get(e.node)!.reject(
            new ProcessSpawnError(
              `Host "${e.host}" could not restart node "${e.node}": ${e.error}`,
              { path: hostConfig(e.host)?.endpoint ?? "" },
            ),
          );
          break;
        }
        h.onError(
          new HostLinkError(e.error ?? "The hosts link failed", {
            host: e.host,
            nodeId: e.node || undefined,
          }),
        );
        break;
    }
  }

  /** Every node of `host` ends with it (no exit will come from there). */
  #endHost(host: string): void {
    for (const id of this.#options.plan.nodes.get(host) ?? []) {
      this.#procs.get(id)?.exit(null, null);
    }
  }

  #onLinkExit(status: Deno.CommandStatus): void {
    const tail = this.#stderrTail.join("\n  ");
    if (!this.#closing) {
      const noZenoh = /No module named '?zenoh/.test(tail);
      const why = noZenoh
        ? `it needs eclipse-zenoh: pip install 'remotemedia-multiprocess[hosts]' into ${this.#options.python}`
        : `it exited with code ${status.code}${
          status.signal ? ` (${status.signal})` : ""
        }${tail ? `; its last stderr lines:\n  ${tail}` : ""}`;
      this.#started.reject(
        new ProcessSpawnError(`The hosts link failed: ${why}`, {
          path: this.#options.python,
        }),
      );
      for (const host of this.#options.plan.nodes.keys()) {
        if (this.#lost.has(host)) continue;
        this.#lost.add(host);
        this.#options.handlers.onHostLost(
          new HostLostError({
            host,
            reason: "link_exited",
            detail: `the hosts link process ${why}`,
          }),
        );
      }
    } else {
      this.#started.reject(new Error("The hosts link closed"));
    }
    for (const host of this.#options.plan.nodes.keys()) this.#endHost(host);
  }
}

/** The link's spec from the session's plan. */
function linkSpec(o: HostLinkOptions): LinkSpec {
  const hosts: LinkSpec["hosts"] = {};
  const settings = {
    capacity: o.channel.capacity,
    max_subscribers: o.channel.maxSubscribers,
  };
  for (const [host, ids] of o.plan.nodes) {
    const c = o.hosts[host];
    const nodes = ids.map((id) => o.specs.get(id)!);
    const names = new Set<string>();
    for (const n of nodes) {
      for (const chs of Object.values(n.inputs)) {
        chs.forEach((ch) => names.add(ch));
      }
      for (const ch of Object.values(n.outputs)) names.add(ch);
    }
    const bridges = o.plan.bridges.filter((b) => b.host === host);
    for (const b of bridges) names.add(b.channel);
    hosts[host] = {
      endpoint: c.endpoint,
      lease_secs: c.leaseSecs,
      connect_timeout_secs: c.connectTimeoutSecs,
      ...(c.tlsRootCa ? { tls_root_ca: c.tlsRootCa } : {}),
      ...(c.tlsCert ? { tls_cert: c.tlsCert } : {}),
      ...(c.tlsKey ? { tls_key: c.tlsKey } : {}),
      nodes,
      channels: [...names].map((name) => ({ name, ...settings })),
      bridges: bridges.map((b) => ({
        channel: b.channel,
        direction: b.direction,
        ...settings,
      })),
    };
  }
  return {
    session_id: o.sessionId,
    iox_prefix: o.isolation.prefix,
    iox_root: o.isolation.root,
    control_socket: o.controlSocket,
    max_payload_bytes: o.maxPayloadBytes,
    hosts,
  };
}
