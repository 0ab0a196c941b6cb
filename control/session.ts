/**
 * A running pipeline: one Python process per node, the channels between them,
 * and the Deno ends of the pipeline inputs and outputs.
 *
 * @module
 */
import { envPython } from "./_python_envs.ts";
import {
  type Channel,
  ChannelContext,
  type Publisher,
  type Sample,
  type Subscriber,
} from "../data/channel/mod.ts";
import { readEnv, type RuntimeConfig } from "./config.ts";
import { channelStats, type NodeCounters } from "./_session_stats.ts";
import { CHANNEL_DEFAULT_MAX_SUBSCRIBERS } from "../protocol/contracts.ts";
import {
  runnerSpec,
  type SpecContext,
  writeRunnerSpec,
  writeRunnerSpecs,
} from "./_runner_spec.ts";
import { ControlServer, type RunnerMessage } from "./control_server.ts";
import {
  INSPECT_SOCKET_NAME,
  type InspectReply,
  InspectServer,
} from "./inspect_server.ts";
import {
  ChannelError,
  NodeHealthError,
  NodeInitError,
  NodeProcessError,
  ProcessCrashError,
  ReceiveTimeoutError,
  SessionClosedError,
} from "../errors.ts";
import { type Isolation, isolationEnv } from "../data/isolation.ts";
import type { NodeDefinition, Pipeline } from "../pipeline/mod.ts";
import {
  type NodeExit,
  NodeProcess,
  residentBytes,
  spawnNodeProcess,
} from "./node_process.ts";
import type { RuntimeData } from "../data/runtime_data/mod.ts";
import { type ForkServer, LogSink } from "./fork_server.ts";
import { nodeBaseEnv } from "./_node_env.ts";
import { type HostPlan, planHosts, remoteHost } from "./_hosts.ts";
import { HostLink } from "./host_link.ts";

/** The state of one node. */
export type NodeState =
  | "idle"
  | "initializing"
  | "ready"
  | "processing"
  | "restarting"
  | "stopping"
  | "stopped"
  | "error";

/** One progress event of a node's start-up. */
export interface ProgressEvent {
  /** The node. */
  nodeId: string;
  /** `starting` (process spawned), `loading` (in `initialize()`), `ready`, `failed`. */
  phase: "starting" | "loading" | "ready" | "failed";
  /** Fraction done, 0 to 1, when the node reported one. */
  fraction: number | null;
  /** The node's last message. */
  message: string;
  /** Milliseconds since the session started spawning. */
  elapsedMs: number;
  /** True when the node said nothing new and the executor repeats its last state. */
  heartbeat: boolean;
}

/** A status change of one node. */
export interface StatusEvent {
  /** The node. */
  nodeId: string;
  /** The new state. */
  state: NodeState;
  /** The state before. */
  previous: NodeState;
}

/** A line a node printed. */
export interface LogEvent {
  /** The node. */
  nodeId: string;
  /** Which pipe. */
  stream: "stdout" | "stderr";
  /** The line, without its newline. */
  line: string;
  /**
   * True when the line was longer than `MAX_LOG_LINE_BYTES` (64 KiB) and
   * continues in the next event of the same stream.
   */
  continued: boolean;
}

/** A node's process ended and its restart policy starts it again. */
export interface RestartedEvent {
  /** The node. */
  nodeId: string;
  /** 1 for the node's first restart, 2 for the second, ... */
  attempt: number;
  /** The exit code of the process that ended, or null when a signal ended it. */
  exitCode: number | null;
  /** The signal that ended it (for example "SIGKILL"), or null. */
  signal: string | null;
  /** Why it ended: `exit` on its own, or the health check that killed it. */
  reason: "exit" | "process_timeout" | "ping_timeout" | "init_timeout";
  /** Milliseconds before the new process is started (the policy's backoff). */
  backoffMs: number;
}

/** A node failed a health check (see {@linkcode NodeHealthError}). */
export interface UnhealthyEvent {
  /** The node. */
  nodeId: string;
  /** Which check. */
  reason: "process_timeout" | "ping_timeout";
  /** The bound it broke, seconds. */
  timeoutSecs: number;
  /** What happens now: the session fails, or the node is killed and restarted. */
  action: "fail" | "restart";
}

/**
 * Messages that a reader missed: a gap in its publisher's delivery counter,
 * seen when the next message arrived. After a restart, the restarted node's
 * first message on each input reports the messages its dead process had not
 * finished and those sent while it was down.
 */
export interface LostEvent {
  /** The node that missed them, or undefined for a pipeline output read by Deno. */
  nodeId?: string;
  /** The pipeline output that missed them, when Deno was the reader. */
  output?: string;
  /**
   * The remote host whose link they were lost on (a gap between the two ends
   * of a bridge, docs/hosts-protocol.md), when neither a node nor Deno missed them.
   */
  host?: string;
  /** The channel. */
  channel: string;
  /** How many. */
  count: number;
}

/** A snapshot of one node. */
export interface NodeStatus {
  /** The node id. */
  nodeId: string;
  /** The node type. */
  type: string;
  /** Its state. */
  state: NodeState;
  /** Its process id, once spawned (on its host, for a node on another host). */
  pid?: number;
  /** The host it runs on (`host` in the pipeline); undefined: this one. */
  host?: string;
  /** Its last progress. */
  progress: { fraction: number | null; message: string };
  /** How its process ended, once it has (its current process, after restarts). */
  exit?: NodeExit;
  /** How many times its restart policy restarted it. */
  restarts: number;
}

/** Statistics of one channel. */
export interface ChannelStats {
  /** The channel name. */
  name: string;
  /** Messages published. */
  messages: number;
  /** Bytes published (headers included). */
  bytes: number;
  /** Messages published but not yet taken by the slowest reader. */
  occupancy: number;
}

/** Statistics of one node process. */
export interface ProcessStats {
  /** The node id. */
  nodeId: string;
  /** Its process id (on its host, for a node on another host). */
  pid: number;
  /** The host it runs on; undefined: this one. */
  host?: string;
  /** Resident memory in bytes, when the process is alive here (undefined on another host). */
  rssBytes?: number;
  /** The node's state. */
  state: NodeState;
  /** Messages the node received and sent (when it answered in time). */
  received?: number;
  /** Messages the node sent. */
  sent?: number;
}

/** A snapshot of a session's channels and processes. */
export interface SessionStats {
  /** Per channel. */
  channels: ChannelStats[];
  /** Per node process. */
  processes: ProcessStats[];
  /** Messages reported lost so far (the sum of every `lost` event). */
  lost: number;
}

/** Options of `MultiprocessExecutor.createSession`. */
export interface SessionOptions {
  /** Called for every progress event (also dispatched as `progress` events). */
  onProgress?: (event: ProgressEvent) => void;
  /**
   * Called for every error a node's `process()` raised (also dispatched as
   * `error` events). An error that no callback or `error` listener hears is
   * printed to stderr with the node id and the traceback.
   */
  onError?: (error: NodeProcessError) => void;
  /** Aborting it closes the session. */
  signal?: AbortSignal;
  /**
   * Python modules that register the pipeline's node types.
   * @default {[]}
   */
  modules?: string[];
  /**
   * Folders to import those modules from (added to the runner's sys.path).
   * @default {[]}
   */
  modulePaths?: string[];
  /**
   * Print node output to stderr as `[node] line` (it is always dispatched
   * as `log` events too).
   * @default {true}
   */
  printLogs?: boolean;
}

interface NodeEntry {
  id: string;
  type: string;
  state: NodeState;
  pid?: number;
  process?: NodeProcess;
  fraction: number | null;
  message: string;
  lastProgressAt: number;
  connected: boolean;
  /** Resolves with the runner's hello. */
  hello: PromiseWithResolvers<void>;
  disconnected: PromiseWithResolvers<void>;
  initError?: { error: string; traceback: string };
  /** The last lines of its stderr, for a crash report. */
  stderrTail: string[];
  statsWaiters: Map<number, (m: RunnerMessage & { type: "stats" }) => void>;
  lastStats?: NodeCounters;
  /** Its pipeline definition (restart policy, health bounds). */
  def: NodeDefinition;
  /** True once it was ready (restart policies apply from then on). */
  everReady: boolean;
  /** Restarts made, and when (performance.now()), for the policy's window. */
  restarts: number;
  restartTimes: number[];
  /** Set when the executor killed it for a failed health check. */
  killedFor?: RestartedEvent["reason"];
  /** The ping in flight: its id and when it was sent. */
  ping?: { id: number; sentAt: number };
  /** Bounds the running process() call (process_timeout_secs). */
  processTimer?: ReturnType<typeof setTimeout>;
  /** Bounds a restarted process's initialize(). */
  initTimer?: ReturnType<typeof setTimeout>;
}

/** Options of {@linkcode Session.receive}. */
export interface SessionReceiveOptions {
  /** Aborting it ends the wait: the iteration throws the signal's reason. */
  signal?: AbortSignal;
  /**
   * Most milliseconds to wait for each next sample; the iteration then throws
   * `ReceiveTimeoutError`.
   * @default {no bound: the wait ends with a sample, the signal, close() or a failure}
   */
  timeoutMs?: number;
}

/** @internal What the executor hands a session. */
export interface SessionInit {
  pipeline: Pipeline;
  config: RuntimeConfig;
  options: SessionOptions;
  pythonPathEntries: string[];
  /** Forks runners instead of spawning them, when given. */
  forkServer?: () => Promise<ForkServer | undefined>;
}

const HEARTBEAT_MS = 1000;
/** One subscriber slot more than the protocol's default, kept for a read-only tap. */
const MAX_SUBSCRIBERS = CHANNEL_DEFAULT_MAX_SUBSCRIBERS + 1;
/** After a runner's exit, how long its hello may still be in flight. */
const HELLO_GRACE_MS = 20;
/** After a runner's exit, how long its control connection may take to end. */
const DISCONNECT_GRACE_MS = 500;
/** Lines of a node's stderr kept for its crash report. */
const STDERR_TAIL_LINES = 20;
/** Most time a node still in `initialize()` gets to stop before SIGKILL. */
const INIT_STOP_GRACE_MS = 500;
/** A restart policy's defaults (docs/pipeline-schema.md, "Supervision"). */
const RESTART_DEFAULTS = { max_restarts: 3, window_secs: 60, backoff_ms: 100 };
/** The longest backoff before a restart. */
const MAX_BACKOFF_MS = 10_000;
/** A runner reports a process() call as processing this long after it started. */
const STATUS_AFTER_MS = 20;
/** Event types that are printed when nobody listens for them. */
const PRINTED_WHEN_UNHEARD = ["error", "lost", "restarted", "unhealthy"];

/**
 * A running pipeline. Made by `MultiprocessExecutor.createSession`, which
 * spawns every node process at once; `initialize()` resolves when every node
 * has finished its own `initialize()`. Dispatches `progress`, `status`,
 * `error` (a node's `process()` raised; printed when nobody listens), `log`,
 * `failed` (the session failed: `detail` is the error, e.g. a
 * `ProcessCrashError`; every process is then being stopped) and `closed`
 * (`detail` is the failure, if any) events.
 *
 * @example
 * ```ts ignore
 * import { MultiprocessExecutor, Pipeline } from "@remotemedia/multiprocess";
 * const pipeline = new Pipeline().addNode("echo", "e").addInput("in", "e", "in").addOutput("out", "e", "out");
 * await using session = await new MultiprocessExecutor().createSession(pipeline, { modules: ["echo_nodes"] });
 * await session.initialize();
 * ```
 */
export class Session extends EventTarget implements AsyncDisposable {
  /** The session id (32 hex characters). */
  readonly id: string;
  readonly #pipeline: Pipeline;
  readonly #config: RuntimeConfig;
  #options: SessionOptions;
  readonly #nodes = new Map<string, NodeEntry>();
  readonly #abort = new AbortController();
  readonly #ready = Promise.withResolvers<void>();
  readonly #closedPromise = Promise.withResolvers<void>();
  readonly #inputs = new Map<string, Publisher>();
  readonly #outputs = new Map<string, Subscriber>();
  readonly #channels: Channel[] = [];
  #context!: ChannelContext;
  #control!: ControlServer;
  #inspectServer: InspectServer | undefined;
  readonly #forkServer: SessionInit["forkServer"];
  #logs: LogSink | undefined;
  #startedAt = performance.now();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #initTimer: ReturnType<typeof setTimeout> | undefined;
  #failure: Error | undefined;
  #closing: Promise<void> | undefined;
  #statsId = 0;
  #isReady = false;
  /** Listeners of the events in PRINTED_WHEN_UNHEARD, by type: what nobody hears is printed. */
  readonly #listeners = new Map<
    string,
    Map<EventListenerOrEventListenerObject, { once: boolean }>
  >(PRINTED_WHEN_UNHEARD.map((t) => [t, new Map()]));
  #unheardHintShown = false;
  /** How the session starts runners, kept for restarts. */
  #spawnEnv: Record<string, string> = {};
  #specContext: SpecContext | undefined;
  /** Where nodes run and which channels cross hosts (empty: all local). */
  #hostPlan: HostPlan = { nodes: new Map(), bridges: [] };
  /** The link to the remote hosts, when some node runs on one. */
  #hostLink: HostLink | undefined;
  /** Its start, until it resolves (a failed session start still closes it). */
  #hostLinkStarting: Promise<HostLink> | undefined;
  #healthTimer: ReturnType<typeof setInterval> | undefined;
  #pingId = 0;
  #lost = 0;
  /** Per pipeline output, the lost count of its subscriber already reported. */
  readonly #outputLost = new Map<string, number>();

  /** @internal use `MultiprocessExecutor.createSession`. */
  constructor(id: string, init: SessionInit) {
    super();
    this.id = id;
    this.#pipeline = init.pipeline;
    this.#config = init.config;
    this.#options = init.options;
    this.#forkServer = init.forkServer;
    this.#ready.promise.catch(() => {});
    for (const node of init.pipeline.toJSON().nodes) {
      this.#nodes.set(node.id, {
        id: node.id,
        type: node.type,
        state: "idle",
        fraction: null,
        message: "",
        lastProgressAt: 0,
        connected: false,
        hello: Promise.withResolvers<void>(),
        stderrTail: [],
        disconnected: Promise.withResolvers<void>(),
        statsWaiters: new Map(),
        def: node,
        everReady: false,
        restarts: 0,
        restartTimes: [],
      });
    }
  }

  /**
   * Adds an event listener (see the class description for the events).
   * `error` listeners are counted: an error no listener hears is printed.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget.addEventListener`.
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    const capture = typeof options === "boolean" ? options : options?.capture;
    const listeners = this.#listeners.get(type);
    if (!listeners || listener === null || capture) return;
    const opts = typeof options === "object" ? options : {};
    if (opts.signal?.aborted) return;
    if (!listeners.has(listener)) {
      listeners.set(listener, { once: opts.once ?? false });
      opts.signal?.addEventListener(
        "abort",
        () => listeners.delete(listener),
        { once: true },
      );
    }
  }

  /**
   * Removes an event listener.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget.removeEventListener`.
   */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
    const capture = typeof options === "boolean" ? options : options?.capture;
    if (listener !== null && !capture) {
      this.#listeners.get(type)?.delete(listener);
    }
  }

  /** The Python environment of node `id` (undefined: the default). */
  #nodeEnv(id: string): string | undefined {
    return this.#pipeline.toJSON().nodes.find((n) => n.id === id)?.env;
  }

  /** @internal Creates channels, spawns every node at once. */
  async start(pythonPathEntries: string[]): Promise<void> {
    const signal = this.#options.signal;
    signal?.throwIfAborted();
    this.#context = await ChannelContext.create();
    const root = this.#context.isolation.root;
    try {
      this.#control = ControlServer.listen(`${root}control.sock`, {
        onMessage: (id, m) => this.#onMessage(id, m),
        onDisconnect: (id) => this.#nodes.get(id)?.disconnected.resolve(),
        onProtocolError: (id, line) =>
          this.#log(id ?? "?", "stderr", `[protocol] ${line}`),
      });
      try {
        this.#inspectServer = InspectServer.listen(
          `${root}${INSPECT_SOCKET_NAME}`,
          { inspect: () => this.#inspectReply() },
        );
      } catch { /* inspection is optional: the session runs without it */ }
      await this.#openChannels();
      const specs = this.#writeSpecs();
      this.#spawnEnv = {
        ...nodeBaseEnv(),
        ...this.#config.python.env,
        ...isolationEnv(this.#context.isolation),
        PYTHONUNBUFFERED: "1",
        PYTHONPATH: [...pythonPathEntries, readEnv("PYTHONPATH") ?? ""]
          .filter(Boolean).join(":"),
      };
      this.#hostPlan = planHosts(this.#pipeline);
      // The remote hosts start while the local nodes do (a host link
      // waits for its agents; its failure fails the session below).
      const linking = this.#hostPlan.nodes.size
        ? this.#startHostLink()
        : undefined;
      linking?.catch(() => {});
      this.#hostLinkStarting = linking;
      const server = await this.#forkServer?.();
      this.#startedAt = performance.now();
      // Every node is initializing before any runner exists: a forked
      // runner's hello and ready may arrive before the fork answers are read.
      for (const [id] of specs) {
        const node = this.#nodes.get(id)!;
        this.#setState(node, "initializing");
        this.#progress(node, "starting", false);
      }
      let forked: Map<string, NodeProcess> | undefined;
      if (server) {
        // The server is the default interpreter: a node of another Python
        // environment is spawned with its own interpreter below.
        const entries = [...specs].filter(([id]) =>
          this.#forkable(id) && !this.#isRemote(id)
        );
        const handles = await Promise.allSettled(
          entries.map(([id, specPath]) => this.#fork(server, id, specPath)),
        );
        forked = new Map();
        for (const [i, [id]] of entries.entries()) {
          const h = handles[i];
          if (h.status === "fulfilled") forked.set(id, h.value);
        }
        const failed = handles.find((h) => h.status === "rejected");
        if (failed) {
          for (const [id, p] of forked) this.#nodes.get(id)!.process = p;
          throw (failed as PromiseRejectedResult).reason;
        }
      }
      for (const [id, specPath] of specs) {
        if (this.#isRemote(id)) continue;
        this.#watch(
          this.#nodes.get(id)!,
          forked?.get(id) ?? this.#spawn(id, specPath),
        );
      }
      if (linking) {
        this.#hostLink = await linking;
        for (const ids of this.#hostPlan.nodes.values()) {
          for (const id of ids) {
            this.#watch(this.#nodes.get(id)!, this.#remote(id));
          }
        }
      }
    } catch (e) {
      await this.#fail(e as Error);
      throw e;
    }
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS / 2);
    this.#healthTimer = setInterval(
      () => this.#checkPings(),
      this.#config.pingIntervalSecs * 1000,
    );
    this.#initTimer = setTimeout(
      () => this.#initTimedOut(),
      this.#config.initTimeoutSecs * 1000,
    );
    if (signal) this.#closeOnAbort(signal);
  }

  /** The host node `id` is placed on (undefined: this one). */
  #hostOf(id: string): string | undefined {
    const node = this.#nodes.get(id);
    return node && remoteHost(node.def);
  }

  /** True when node `id` is placed on another host. */
  #isRemote(id: string): boolean {
    return this.#hostOf(id) !== undefined;
  }

  /** Starts the link to the remote hosts; resolves once their nodes are spawned. */
  #startHostLink(): Promise<HostLink> {
    const specs = new Map(
      [...this.#hostPlan.nodes.values()].flat().map((
        id,
      ) => [id, runnerSpec(this.#specContext!, id)]),
    );
    return HostLink.start({
      sessionId: this.id,
      isolation: this.#context.isolation,
      controlSocket: this.#control.path,
      plan: this.#hostPlan,
      hosts: this.#config.hosts,
      specs,
      channel: {
        capacity: this.#config.channelCapacity,
        maxSubscribers: MAX_SUBSCRIBERS,
      },
      maxPayloadBytes: this.#config.maxPayloadBytes,
      python: envPython(this.#config, undefined).executable,
      env: this.#spawnEnv,
      handlers: {
        onHostLost: (error) => this.#fail(error),
        onLost: ({ channel, count, host }) =>
          this.#reportLost({ channel, count, host }),
        onError: (error) => this.#fail(error),
        onLinkLog: (line) => this.#log("hosts", "stderr", line),
      },
    });
  }

  /** Remote node `id`'s process, as its host's agent reports it. */
  #remote(id: string): NodeProcess {
    return NodeProcess.fromHandle(
      id,
      this.#hostLink!.handle(id),
      (stream, line, continued) => this.#log(id, stream, line, continued),
    );
  }

  /** True when node `id` runs in the fork server's interpreter (the default one). */
  #forkable(id: string): boolean {
    return envPython(this.#config, this.#nodeEnv(id)).executable ===
      this.#config.python.executable;
  }

  /** Forks node `id`'s runner from the fork server. */
  async #fork(
    server: ForkServer,
    id: string,
    specPath: string,
  ): Promise<NodeProcess> {
    const logs = this.#logs ??= LogSink.listen(
      `${this.#context.isolation.root}logs.sock`,
    );
    const handle = await server.spawn({
      args: ["--spec", specPath],
      env: this.#spawnEnv,
      logs,
    });
    return NodeProcess.fromHandle(
      id,
      handle,
      (stream, line, continued) => this.#log(id, stream, line, continued),
    );
  }

  /** Spawns node `id`'s runner as a new interpreter. */
  #spawn(id: string, specPath: string): NodeProcess {
    return spawnNodeProcess({
      nodeId: id,
      executable: envPython(this.#config, this.#nodeEnv(id)).executable,
      args: ["-m", "remotemedia_multiprocess.runner", "--spec", specPath],
      env: this.#spawnEnv,
      onLine: (stream, line, continued) =>
        this.#log(id, stream, line, continued),
    });
  }

  /** Makes `child` node `node`'s process and follows its exit. */
  #watch(node: NodeEntry, child: NodeProcess): void {
    node.process = child;
    node.pid = child.pid;
    child.exited.then((exit) => this.#onExit(node, child, exit));
  }

  #closeOnAbort(signal: AbortSignal): void {
    const onAbort = () => this.close();
    signal.addEventListener("abort", onAbort, { once: true });
    this.#closedPromise.promise.then(() =>
      signal.removeEventListener("abort", onAbort)
    );
  }

  /**
   * @internal A pre-warmed spare handed to `createSession`: from now on the
   * caller's callbacks, signal and log printing apply. Its start-up happened
   * before the caller had it, so `onProgress` hears one `ready` event per
   * node (its `elapsedMs` counts from the spare's spawn), not the replay of
   * its loading.
   */
  adopt(options: SessionOptions): void {
    const { onProgress, onError, signal, printLogs } = options;
    this.#options = {
      ...this.#options,
      onProgress,
      onError,
      signal,
      printLogs,
    };
    if (signal) {
      if (signal.aborted) this.close();
      else this.#closeOnAbort(signal);
    }
    for (const node of this.#nodes.values()) {
      const event: ProgressEvent = {
        nodeId: node.id,
        phase: "ready",
        fraction: node.fraction,
        message: node.message,
        elapsedMs: Math.round(node.lastProgressAt - this.#startedAt),
        heartbeat: false,
      };
      try {
        onProgress?.(event);
      } catch (e) {
        console.error(`onProgress threw: ${e}`);
      }
    }
  }

  /** Fails the session naming every node still in start-up, loaders first. */
  #initTimedOut(): void {
    const waiting = [...this.#nodes.values()]
      .filter((n) => n.state === "initializing")
      .sort((a, b) => Number(b.connected) - Number(a.connected));
    if (waiting.length === 0) return;
    const describe = (n: NodeEntry) => {
      if (!n.connected) return `"${n.id}" (its runner never connected)`;
      const fraction = n.fraction === null
        ? ""
        : ` ${Math.round(n.fraction * 100)}%`;
      const said = n.message ? ` "${n.message}"` : "";
      return `"${n.id}" (last progress:${
        fraction || said ? "" : " none"
      }${fraction}${said})`;
    };
    this.#fail(
      new NodeInitError(
        `${waiting.length > 1 ? "Nodes" : "Node"} ${
          waiting.map(describe).join(", ")
        } did not finish initialize() within ${this.#config.initTimeoutSecs} s`,
        { nodeId: waiting[0].id, timedOut: true },
      ),
    );
  }

  /** Opens every channel off the event loop (creating one fsyncs files). */
  async #openChannels(): Promise<void> {
    const capacity = this.#config.channelCapacity;
    const maxSubscribers = MAX_SUBSCRIBERS;
    for (const input of this.#pipeline.inputChannels()) {
      const channel = await this.#context.openChannel(input.name, {
        capacity,
        maxSubscribers,
      });
      this.#channels.push(channel);
      this.#inputs.set(
        input.input,
        channel.publisher({
          maxPayloadBytes: this.#config.maxPayloadBytes,
          publishTimeoutMs: this.#publishTimeoutMs(),
        }),
      );
    }
    for (const ch of this.#pipeline.channels()) {
      const channel = await this.#context.openChannel(ch.name, {
        capacity,
        maxSubscribers,
      });
      this.#channels.push(channel);
      // Deno subscribes before any node runs, so no output is sent to nobody.
      for (const output of ch.outputs) {
        this.#outputs.set(output, channel.subscriber());
      }
    }
  }

  #publishTimeoutMs(): number {
    return this.#config.publishTimeoutSecs * 1000;
  }

  #writeSpecs(): Map<string, string> {
    this.#specContext = {
      sessionId: this.id,
      pipeline: this.#pipeline,
      config: this.#config,
      isolation: this.#context.isolation,
      controlSocket: this.#control.path,
      modules: this.#options.modules ?? [],
      modulePaths: this.#options.modulePaths ?? [],
    };
    return writeRunnerSpecs(this.#specContext);
  }

  #log(
    nodeId: string,
    stream: "stdout" | "stderr",
    line: string,
    continued = false,
  ): void {
    const node = this.#nodes.get(nodeId);
    if (node && stream === "stderr") {
      node.stderrTail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
      if (node.stderrTail.length > STDERR_TAIL_LINES) node.stderrTail.shift();
    }
    if (this.#options.printLogs ?? true) {
      console.error(
        `[${nodeId}] ${line}${continued ? " [line continues]" : ""}`,
      );
    }
    this.dispatchEvent(
      new CustomEvent<LogEvent>("log", {
        detail: { nodeId, stream, line, continued },
      }),
    );
  }

  #setState(node: NodeEntry, state: NodeState): void {
    if (node.state === state) return;
    const previous = node.state;
    node.state = state;
    this.dispatchEvent(
      new CustomEvent<StatusEvent>("status", {
        detail: { nodeId: node.id, state, previous },
      }),
    );
  }

  #progress(
    node: NodeEntry,
    phase: ProgressEvent["phase"],
    heartbeat: boolean,
  ): void {
    node.lastProgressAt = performance.now();
    const event: ProgressEvent = {
      nodeId: node.id,
      phase,
      fraction: node.fraction,
      message: node.message,
      elapsedMs: Math.round(node.lastProgressAt - this.#startedAt),
      heartbeat,
    };
    try {
      this.#options.onProgress?.(event);
    } catch (e) {
      console.error(`onProgress threw: ${e}`);
    }
    this.dispatchEvent(
      new CustomEvent<ProgressEvent>("progress", { detail: event }),
    );
  }

  #beat(): void {
    const now = performance.now();
    let loading = 0;
    for (const node of this.#nodes.values()) {
      if (node.state !== "initializing") continue;
      loading++;
      // Repeat the last state so a silent loader still shows life every 2 s.
      if (now - node.lastProgressAt >= HEARTBEAT_MS) {
        this.#progress(node, node.connected ? "loading" : "starting", true);
      }
    }
    if (loading === 0) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
    }
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeat);
    clearTimeout(this.#initTimer);
    this.#heartbeat = undefined;
    this.#initTimer = undefined;
  }

  #onMessage(nodeId: string, m: RunnerMessage): void {
    const node = this.#nodes.get(nodeId);
    if (!node) return;
    switch (m.type) {
      case "hello":
        node.connected = true;
        node.hello.resolve();
        this.#progress(node, "loading", false);
        break;
      case "progress":
        node.fraction = typeof m.fraction === "number"
          ? m.fraction
          : node.fraction;
        node.message = String(m.message ?? "");
        this.#progress(node, "loading", false);
        break;
      case "ready":
        if (node.state !== "initializing") break;
        node.fraction = 1;
        clearTimeout(node.initTimer);
        if (node.everReady) {
          // A restarted node: its dead process's ports go now, so no
          // publisher keeps waiting for chunks the dead reader held.
          this.#cleanupDeadNodes();
        }
        node.everReady = true;
        this.#setState(node, "ready");
        this.#progress(node, "ready", false);
        if (
          !this.#isReady &&
          [...this.#nodes.values()].every((n) =>
            n.state === "ready" || n.state === "processing"
          )
        ) {
          this.#isReady = true;
          this.#stopTimers();
          this.#ready.resolve();
        }
        break;
      case "init_error":
        node.initError = { error: m.error, traceback: m.traceback };
        this.#setState(node, "error");
        this.#progress(node, "failed", false);
        // A restart that fails its initialize() is one more failed attempt:
        // the exit that follows goes to the restart policy.
        if (this.#restartable(node)) break;
        this.#fail(
          new NodeInitError(
            `Node "${nodeId}" failed to initialize: ${m.error}`,
            {
              nodeId,
              traceback: m.traceback,
            },
          ),
        );
        break;
      case "process_error":
        this.#nodeError(
          new NodeProcessError(m.error, { nodeId, traceback: m.traceback }),
        );
        break;
      case "status":
        if (node.state === "ready" || node.state === "processing") {
          // "waiting": the call is blocked by a reader (backpressure), which
          // is not its own time: the process() bound starts over after it.
          const processing = m.state !== "ready";
          this.#setState(node, processing ? "processing" : "ready");
          clearTimeout(node.processTimer);
          node.processTimer = undefined;
          const bound = node.def.process_timeout_secs;
          if (m.state === "processing" && bound !== undefined) {
            node.processTimer = setTimeout(
              () => this.#unhealthy(node, "process_timeout", bound),
              Math.max(0, bound * 1000 - STATUS_AFTER_MS),
            );
          }
        }
        break;
      case "stats": {
        node.lastStats = {
          received: m.received,
          sent: m.sent,
          bytesOut: m.bytes_out,
        };
        node.statsWaiters.get(m.id)?.(m);
        node.statsWaiters.delete(m.id);
        break;
      }
      case "pong":
        if (node.ping?.id === m.id) node.ping = undefined;
        break;
      case "lost":
        this.#reportLost({ nodeId, channel: m.channel, count: m.count });
        break;
      case "bye":
        break;
    }
  }

  /** Removes what dead runners left in the isolation (see ChannelContext). */
  #cleanupDeadNodes(): void {
    try {
      this.#context.cleanupDeadNodes();
    } catch (e) {
      console.error(`Cannot clean up dead iceoryx2 nodes: ${e}`);
    }
  }

  /**
   * Dispatches `type` with `detail`; returns whether any listener (or the
   * callback `viaCallback` says was given) heard it.
   */
  #dispatchHeard<T>(type: string, detail: T, viaCallback = false): boolean {
    const listeners = this.#listeners.get(type);
    const heard = viaCallback || (listeners?.size ?? 0) > 0;
    this.dispatchEvent(new CustomEvent<T>(type, { detail }));
    for (const [listener, { once }] of listeners ?? []) {
      if (once) listeners!.delete(listener);
    }
    return heard;
  }

  #reportLost(event: LostEvent): void {
    this.#lost += event.count;
    if (this.#dispatchHeard("lost", event)) return;
    const reader = event.nodeId !== undefined
      ? `node "${event.nodeId}"`
      : event.output !== undefined
      ? `output "${event.output}"`
      : `crossing to or from host "${event.host}"`;
    console.error(
      `Lost ${event.count} message${
        event.count === 1 ? "" : "s"
      } on channel "${event.channel}" before ${reader} (a gap in its publisher's delivery counter; listen for the session's "lost" event)`,
    );
  }

  /** Hands a node's `process()` error to its listeners, or prints it. */
  #nodeError(error: NodeProcessError): void {
    try {
      this.#options.onError?.(error);
    } catch (e) {
      console.error(`onError threw: ${e}`);
    }
    if (
      this.#dispatchHeard("error", error, this.#options.onError !== undefined)
    ) return;
    const traceback = error.traceback?.trimEnd();
    console.error(
      `Unhandled NodeProcessError in node "${error.nodeId}": ${error.message}${
        traceback ? `\n${traceback}` : ""
      }`,
    );
    if (!this.#unheardHintShown) {
      this.#unheardHintShown = true;
      console.error(
        `(the message it was processing produced no output; listen for the session's "error" event or pass onError to handle node errors)`,
      );
    }
  }

  /** The node's restart policy, with its defaults. */
  #policy(node: NodeEntry): Required<NonNullable<NodeDefinition["restart"]>> {
    return { ...RESTART_DEFAULTS, policy: "never", ...node.def.restart };
  }

  /** True when a failure of `node` now goes to its restart policy. */
  #restartable(node: NodeEntry): boolean {
    return node.everReady && this.#policy(node).policy !== "never" &&
      !this.#failure && !this.#closing;
  }

  /** Sends pings to ready nodes; a ping unanswered too long is a failed health check. */
  #checkPings(): void {
    if (this.#closing) return;
    const now = performance.now();
    for (const node of this.#nodes.values()) {
      const bound = node.def.ping_timeout_secs ?? this.#config.pingTimeoutSecs;
      if (bound <= 0 || !node.connected) continue;
      if (node.state !== "ready" && node.state !== "processing") continue;
      if (node.ping) {
        if (now - node.ping.sentAt >= bound * 1000) {
          node.ping = undefined;
          this.#unhealthy(node, "ping_timeout", bound);
        }
        continue;
      }
      const id = ++this.#pingId;
      node.ping = { id, sentAt: now };
      this.#control.send(node.id, { type: "ping", id });
    }
  }

  /** A failed health check: reported, then the session fails or the node is restarted. */
  #unhealthy(
    node: NodeEntry,
    reason: UnhealthyEvent["reason"],
    timeoutSecs: number,
  ): void {
    if (this.#failure || this.#closing || node.killedFor) return;
    if (node.state !== "ready" && node.state !== "processing") return;
    const restart = this.#restartable(node);
    const error = new NodeHealthError({ nodeId: node.id, reason, timeoutSecs });
    const event: UnhealthyEvent = {
      nodeId: node.id,
      reason,
      timeoutSecs,
      action: restart ? "restart" : "fail",
    };
    if (!this.#dispatchHeard("unhealthy", event) && restart) {
      console.error(`${error.message}: killing it to restart it`);
    }
    if (!restart) {
      this.#fail(error);
      return;
    }
    node.killedFor = reason;
    node.process?.kill("SIGKILL");
  }

  async #onExit(
    node: NodeEntry,
    child: NodeProcess,
    exit: NodeExit,
  ): Promise<void> {
    clearTimeout(node.processTimer);
    clearTimeout(node.initTimer);
    node.ping = undefined;
    if (this.#closing && !this.#failure) {
      this.#setState(node, "stopped");
      return;
    }
    if (this.#failure) {
      this.#setState(node, node.state === "error" ? "error" : "stopped");
      return;
    }
    // The control connection may still hold the runner's last words
    // (an init_error): read them before deciding what happened. A runner
    // that never said hello has none, unless its hello is still in flight
    // (its connection not yet read): a short wait covers that.
    if (!node.connected) await within(node.hello.promise, HELLO_GRACE_MS);
    if (node.connected) {
      await within(node.disconnected.promise, DISCONNECT_GRACE_MS);
    }
    if (this.#failure || this.#closing || node.process !== child) return;
    const policy = this.#policy(node);
    const clean = exit.code === 0 && exit.signal === null && !node.killedFor;
    if (
      this.#restartable(node) && (policy.policy === "always" || !clean)
    ) {
      const now = performance.now();
      node.restartTimes = node.restartTimes.filter((t) =>
        now - t < policy.window_secs * 1000
      );
      if (node.restartTimes.length < policy.max_restarts) {
        return this.#restart(node, exit, policy.backoff_ms);
      }
    }
    this.#setState(node, "error");
    if (node.initError && !node.restartTimes.length) return;
    const gaveUp = node.restartTimes.length;
    this.#fail(
      node.initError
        ? new NodeInitError(
          `Node "${node.id}" failed to initialize after ${gaveUp} restart${
            gaveUp === 1 ? "" : "s"
          } (its restart limit): ${node.initError.error}`,
          { nodeId: node.id, traceback: node.initError.traceback },
        )
        : new ProcessCrashError({
          nodeId: node.id,
          exitCode: exit.code,
          signal: exit.signal,
          stderrTail: node.stderrTail,
          restarts: gaveUp,
          windowSecs: gaveUp ? policy.window_secs : undefined,
          host: this.#hostOf(node.id),
        }),
    );
  }

  /** Starts node `node` again, by its restart policy, after its process ended with `exit`. */
  async #restart(
    node: NodeEntry,
    exit: NodeExit,
    backoffMs: number,
  ): Promise<void> {
    const delay = Math.min(
      backoffMs * 2 ** node.restartTimes.length,
      MAX_BACKOFF_MS,
    );
    node.restartTimes.push(performance.now());
    const attempt = ++node.restarts;
    const event: RestartedEvent = {
      nodeId: node.id,
      attempt,
      exitCode: exit.code,
      signal: exit.signal,
      reason: node.killedFor ?? "exit",
      backoffMs: delay,
    };
    this.#setState(node, "restarting");
    if (!this.#dispatchHeard("restarted", event)) {
      const how = exit.signal
        ? `killed by ${exit.signal}`
        : `exited with code ${exit.code}`;
      console.error(
        `Node "${node.id}" process ${how}${
          node.killedFor ? ` (${node.killedFor})` : ""
        }: restarting it (attempt ${attempt})`,
      );
    }
    // Its dead process's ports go at once: publishers get back the chunks it
    // held, and what they send until the new process reads is counted as
    // lost by that process's first message.
    this.#cleanupDeadNodes();
    await within(this.#closedPromise.promise, delay);
    if (this.#failure || this.#closing) return;
    node.connected = false;
    node.hello = Promise.withResolvers<void>();
    node.disconnected = Promise.withResolvers<void>();
    node.initError = undefined;
    node.killedFor = undefined;
    node.fraction = null;
    node.message = "";
    node.stderrTail = [];
    this.#setState(node, "initializing");
    this.#progress(node, "starting", false);
    this.#heartbeat ??= setInterval(() => this.#beat(), HEARTBEAT_MS / 2);
    try {
      // A remote node's agent writes its spec there.
      if (this.#isRemote(node.id)) {
        await this.#hostLink!.respawn(node.id, attempt);
        if (this.#failure || this.#closing) return;
        this.#watch(node, this.#remote(node.id));
        return this.#armRestartInitTimer(node);
      }
      const specPath = writeRunnerSpec(this.#specContext!, node.id, attempt);
      const server = this.#forkable(node.id)
        ? await this.#forkServer?.()
        : undefined;
      if (this.#failure || this.#closing) return;
      this.#watch(
        node,
        server
          ? await this.#fork(server, node.id, specPath)
          : this.#spawn(node.id, specPath),
      );
    } catch (e) {
      this.#setState(node, "error");
      this.#fail(e as Error);
      return;
    }
    this.#armRestartInitTimer(node);
  }

  /** Kills a restarted node that misses `init_timeout_secs`. */
  #armRestartInitTimer(node: NodeEntry): void {
    const child = node.process;
    node.initTimer = setTimeout(() => {
      if (node.process !== child || node.state !== "initializing") return;
      node.killedFor = "init_timeout";
      console.error(
        `Node "${node.id}" did not finish initialize() within ${this.#config.initTimeoutSecs} s after its restart: killing it`,
      );
      child?.kill("SIGKILL");
    }, this.#config.initTimeoutSecs * 1000);
  }

  async #fail(error: Error): Promise<void> {
    if (this.#failure || this.#closing) return this.#closing;
    this.#failure = error;
    // initialize() rejects only once every process is stopped (#shutdown).
    this.#abort.abort(error);
    this.dispatchEvent(new CustomEvent("failed", { detail: error }));
    // Another node failed: the rest stop now, not after a grace period.
    return await this.#shutdown(0);
  }

  /**
   * The iceoryx2 isolation (prefix and root) of the session's channels, so
   * another process can open them.
   *
   * @example
   * ```ts ignore
   * console.log(session.isolation.prefix);
   * ```
   */
  get isolation(): Isolation {
    return this.#context.isolation;
  }

  /** Why the session ended, if it failed. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** True once the session is closing or closed. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Resolves when every node has finished its `initialize()`; rejects with
   * `NodeInitError` (a node raised or timed out) or `ProcessCrashError`, after
   * which nothing of the session is left running.
   *
   * @returns When ready.
   *
   * @example
   * ```ts ignore
   * await session.initialize();
   * ```
   */
  initialize(): Promise<void> {
    return this.#ready.promise;
  }

  /** True once every node is ready. */
  get ready(): boolean {
    return this.#isReady && !this.closed;
  }

  #closedError(): Error {
    return this.#failure ??
      new SessionClosedError(`Session ${this.id} is closed`);
  }

  /**
   * Publishes `data` on pipeline input `input`, waiting for initialization
   * and, under backpressure, for space (without blocking the event loop).
   *
   * @param input The pipeline input name.
   * @param data The message.
   * @returns True when sent; false only when backpressure is disabled and the
   * channel was full (the message was dropped).
   * @throws {ProcessCrashError} (or the session's other failure) when the session failed.
   *
   * @example
   * ```ts ignore
   * await session.send("audio", audio(new Float32Array(480), { sampleRate: 48000, channels: 1 }));
   * ```
   */
  async send(input: string, data: RuntimeData): Promise<boolean> {
    const publisher = await this.#input(input);
    try {
      if (!this.#config.enableBackpressure) return publisher.tryPublish(data);
      await publisher.publish(data, { signal: this.#abort.signal });
      return true;
    } catch (e) {
      if (this.closed) throw this.#closedError();
      throw e;
    }
  }

  /**
   * A message for pipeline input `input` shaped like `like`, whose payload is
   * a writable view of shared memory: fill it in place and
   * {@linkcode Session.send} it, and it reaches the first node without a copy
   * (see {@linkcode Publisher.allocate}). One allocation per input is open at
   * a time.
   *
   * @param input The pipeline input name.
   * @param like Any message of the wanted kind and size, e.g. a template frame.
   * @returns The message to fill.
   * @throws {TypeError} For text and json.
   * @throws {ProcessCrashError} (or the session's other failure) when the session failed.
   *
   * @example
   * ```ts ignore
   * const frame = await session.allocate("video", template); // frame.data is shared memory
   * frame.data.fill(128); // write the pixels in place
   * await session.send("video", frame);
   * ```
   */
  async allocate<T extends RuntimeData>(input: string, like: T): Promise<T> {
    const publisher = await this.#input(input);
    try {
      return await publisher.allocate(like, { signal: this.#abort.signal });
    } catch (e) {
      if (this.closed) throw this.#closedError();
      throw e;
    }
  }

  /** The publisher of input `input`, once the session is ready. */
  async #input(input: string): Promise<Publisher> {
    const publisher = port(this.#inputs, "input", input);
    if (this.closed) throw this.#closedError();
    await this.#ready.promise;
    if (this.closed) throw this.#closedError();
    return publisher;
  }

  /**
   * The samples of pipeline output `output`, in order. Each sample's payload
   * is a view of shared memory, released when the loop asks for the next one.
   * Ends when the session closes; throws the session's failure if it failed.
   *
   * @param output The pipeline output name.
   * @param options An abort signal and a bound on each wait.
   * @returns An async iterator of samples.
   * @throws {ReceiveTimeoutError} When `timeoutMs` passed without a sample.
   *
   * @example
   * ```ts ignore
   * for await (const sample of session.receive("text", { timeoutMs: 5000 })) {
   *   console.log(sample.data);
   * }
   * ```
   */
  async *receive(
    output: string,
    options: SessionReceiveOptions = {},
  ): AsyncGenerator<Sample, void, undefined> {
    const subscriber = port(this.#outputs, "output", output);
    const { timeoutMs, signal: userSignal } = options;
    if (
      timeoutMs !== undefined &&
      !(Number.isFinite(timeoutMs) && timeoutMs >= 0)
    ) {
      throw new RangeError(
        `Invalid timeoutMs ${timeoutMs}: it must be a finite number >= 0`,
      );
    }
    userSignal?.throwIfAborted();
    const signal = userSignal
      ? AbortSignal.any([userSignal, this.#abort.signal])
      : this.#abort.signal;
    await this.#ready.promise;
    while (true) {
      if (this.#failure) throw this.#failure;
      if (this.closed) return;
      const sample = subscriber.closed
        ? null
        : await subscriber.receive({ signal, timeoutMs });
      if (!sample) {
        if (this.#failure) throw this.#failure;
        userSignal?.throwIfAborted();
        if (this.closed || subscriber.closed) return;
        throw new ReceiveTimeoutError(
          `No sample on output "${output}" within ${timeoutMs} ms`,
          { output, timeoutMs: timeoutMs ?? 0 },
        );
      }
      const lost = subscriber.lost;
      if (lost !== (this.#outputLost.get(output) ?? 0)) {
        this.#reportLost({
          output,
          channel: subscriber.channel,
          count: lost - (this.#outputLost.get(output) ?? 0),
        });
        this.#outputLost.set(output, lost);
      }
      try {
        yield sample;
      } finally {
        sample.release();
      }
    }
  }

  /**
   * A snapshot of every node's state, pid, progress and exit.
   *
   * @returns One entry per node.
   *
   * @example
   * ```ts ignore
   * console.table(session.status());
   * ```
   */
  status(): NodeStatus[] {
    return [...this.#nodes.values()].map((n) => ({
      nodeId: n.id,
      type: n.type,
      state: n.state,
      pid: n.pid,
      ...(remoteHost(n.def) ? { host: remoteHost(n.def) } : {}),
      progress: { fraction: n.fraction, message: n.message },
      exit: n.process?.exit,
      restarts: n.restarts,
    }));
  }

  /**
   * Channel and process statistics. Node counters come from the runners
   * (each asked, answering within 1 s).
   *
   * @returns The statistics.
   *
   * @example
   * ```ts ignore
   * console.log((await session.stats()).processes);
   * ```
   */
  async stats(): Promise<SessionStats> {
    const live = [...this.#nodes.values()].filter((n) =>
      n.connected && !this.closed
    );
    await Promise.all(live.map((node) =>
      new Promise<void>((resolve) => {
        const id = ++this.#statsId;
        const timer = setTimeout(() => {
          node.statsWaiters.delete(id);
          resolve();
        }, 1000);
        node.statsWaiters.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
        this.#control.send(node.id, { type: "stats", id }).then((ok) => {
          if (!ok) {
            clearTimeout(timer);
            node.statsWaiters.delete(id);
            resolve();
          }
        });
      })
    ));
    const channels = channelStats(this.#pipeline, {
      input: (name) => this.#inputs.get(name)?.stats,
      output: (name) => this.#outputs.get(name)?.stats.messages ?? 0,
      node: (id) => this.#nodes.get(id)?.lastStats,
    });
    const processes: ProcessStats[] = [...this.#nodes.values()].filter((n) =>
      n.pid !== undefined
    ).map((n) => ({
      nodeId: n.id,
      pid: n.pid!,
      ...(remoteHost(n.def) ? { host: remoteHost(n.def) } : {}),
      rssBytes: n.process?.exit || remoteHost(n.def)
        ? undefined
        : residentBytes(n.pid!),
      state: n.state,
      received: n.lastStats?.received,
      sent: n.lastStats?.sent,
    }));
    return { channels, processes, lost: this.#lost };
  }

  /** What the inspection socket answers (see control/inspect_server.ts). */
  async #inspectReply(): Promise<InspectReply> {
    return {
      sessionId: this.id,
      pipeline: this.#pipeline.toJSON().name,
      pid: Deno.pid,
      uptimeMs: Math.round(performance.now() - this.#startedAt),
      ready: this.ready,
      isolation: { prefix: this.isolation.prefix, root: this.isolation.root },
      channelCapacity: this.#config.channelCapacity,
      maxSubscribers: MAX_SUBSCRIBERS,
      channels: this.#channels.map((c) => c.name),
      nodes: this.status(),
      stats: await this.stats(),
    };
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopTimers();
      clearInterval(this.#healthTimer);
      for (const node of this.#nodes.values()) {
        clearTimeout(node.processTimer);
        clearTimeout(node.initTimer);
      }
      const wasInitializing = new Set(
        [...this.#nodes.values()].filter((n) => n.state === "initializing")
          .map((n) => n.id),
      );
      for (const node of this.#nodes.values()) {
        if (node.state !== "error" && node.state !== "stopped") {
          this.#setState(node, "stopping");
        }
      }
      if (graceMs > 0) {
        await Promise.all(
          [...this.#nodes.keys()].map((id) =>
            this.#control?.send(id, { type: "shutdown" })
          ),
        );
      }
      await Promise.all(
        [...this.#nodes.values()].map(async (node) => {
          if (!node.process) return;
          // A node still in initialize() has nothing to flush; its runner
          // cancels an awaiting initialize() on shutdown, but a loader busy
          // in native code cannot hear it: do not wait out the whole grace.
          await node.process.stop(
            wasInitializing.has(node.id)
              ? Math.min(graceMs, INIT_STOP_GRACE_MS)
              : graceMs,
          );
          if (node.state !== "error") this.#setState(node, "stopped");
        }),
      );
      // The agents stop what is left there and remove their files.
      const link = this.#hostLink ??
        await this.#hostLinkStarting?.catch(() => undefined);
      await link?.close();
      // Every process is reaped; now nothing maps the shared memory.
      await this.#inspectServer?.close();
      await this.#control?.close();
      await this.#logs?.close();
      await this.#context?.close();
      this.#ready.reject(this.#closedError());
      this.#closedPromise.resolve();
      this.dispatchEvent(new CustomEvent("closed", { detail: this.#failure }));
    })();
    return await this.#closing;
  }

  /**
   * Stops every node (graceful within the grace period, then SIGKILL) and
   * removes every shared-memory resource of the session.
   *
   * @example
   * ```ts ignore
   * await session.close();
   * ```
   */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#abort.abort(new SessionClosedError(`Session ${this.id} is closed`));
    }
    await this.#shutdown(this.#config.cleanupGracePeriodSecs * 1000);
  }

  /** Same as {@linkcode Session.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Waits for `promise` or `ms`, whichever comes first. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    promise,
    new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
  ]);
  clearTimeout(timer);
}

/** The port named `name` of `ports`, or a ChannelError listing the names. */
function port<T>(
  ports: Map<string, T>,
  kind: "input" | "output",
  name: string,
): T {
  const found = ports.get(name);
  if (found === undefined) {
    throw new ChannelError(
      `The pipeline has no ${kind} "${name}" (${kind}s: ${
        [...ports.keys()].join(", ") || "none"
      })`,
      { channel: name },
    );
  }
  return found;
}
