/**
 * The executor's end of the fork server (`python -m
 * remotemedia_multiprocess._forkserver`, docs/runner-protocol.md): one
 * Python process per executor that imports the SDK once and forks node
 * runners on request, so a runner skips its ~0.4 s of imports. Runner output
 * comes over a per-session log socket; exits are reported by the server,
 * which reaps its children. When the server dies its children die with it
 * (SIGKILL) and are reported so.
 *
 * @module
 */
import { missingPermission, ProcessSpawnError } from "../errors.ts";
import type { ProcessHandle } from "./node_process.ts";

/** Options of {@linkcode ForkServer.start}. */
export interface ForkServerOptions {
  /** The Python executable. */
  executable: string;
  /** The server's whole environment (nothing of this program's is added). */
  env: Record<string, string>;
  /**
   * How long the server may take to import the SDK.
   * @default {30000}
   */
  readyTimeoutMs?: number;
}

/** Options of {@linkcode ForkServer.spawn}. */
export interface ForkOptions {
  /** Runner arguments (after `python -m remotemedia_multiprocess.runner`). */
  args: string[];
  /** The runner's whole environment. */
  env: Record<string, string>;
  /** Where its output connects. */
  logs: LogSink;
}

interface Pending {
  resolve(pid: number): void;
  reject(error: Error): void;
}

interface Child {
  status: PromiseWithResolvers<{ code: number | null; signal: string | null }>;
}

const encoder = new TextEncoder();

/**
 * A running fork server.
 *
 * @example
 * ```ts ignore
 * const server = await ForkServer.start({ executable: ".venv/bin/python", env: { PYTHONPATH: "python" } });
 * await server.close();
 * ```
 */
export class ForkServer {
  /** The server's process id. */
  readonly pid: number;
  /** The Python executable it runs. */
  readonly executable: string;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, Pending>();
  readonly #children = new Map<number, Child>();
  /** Exits reported before the fork answer was read (a very short life). */
  readonly #early = new Map<
    number,
    { code: number | null; signal: string | null }
  >();
  readonly #lines: AsyncIterator<string>;
  /** The reader of the server's answers, while any is awaited. */
  #reading: Promise<void> | undefined;
  #nextId = 0;
  #dead: Error | undefined;

  private constructor(
    child: Deno.ChildProcess,
    lines: AsyncIterator<string>,
    pid: number,
    executable: string,
  ) {
    this.pid = pid;
    this.executable = executable;
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#lines = lines;
    // Neither the server nor an idle wait for its answers keeps this
    // program alive: answers are read only while a fork or a runner's exit
    // is awaited (runners themselves keep their sessions open).
    child.unref();
    // A reader still at work reads the last reports first, then the end.
    child.status.then(() => this.#reading ?? this.#died());
  }

  /**
   * Starts a server and waits until it has imported the SDK.
   *
   * @param options The interpreter and the environment.
   * @returns The server.
   * @throws {ProcessSpawnError} when Python cannot run or the server fails.
   *
   * @example
   * ```ts ignore
   * const server = await ForkServer.start({ executable: "python3", env: {} });
   * ```
   */
  static async start(options: ForkServerOptions): Promise<ForkServer> {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(options.executable, {
        args: ["-m", "remotemedia_multiprocess._forkserver"],
        env: { ...options.env, PYTHONUNBUFFERED: "1" },
        // Only the given environment (control/_node_env.ts), not this program's.
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        // Its own few lines (an import failure) go to this program's stderr.
        stderr: "inherit",
      }).spawn();
    } catch (cause) {
      throw missingPermission(
        cause,
        `Cannot run the Python runner "${options.executable}"`,
      ) ?? new ProcessSpawnError(
        `Cannot start the Python fork server: ${options.executable} ${
          cause instanceof Deno.errors.NotFound
            ? "does not exist"
            : (cause as Error).message
        }`,
        { path: options.executable, cause },
      );
    }
    const lines = linesOf(child.stdout);
    const timeoutMs = options.readyTimeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = await Promise.race([
      lines.next(),
      new Promise<"timeout">((r) =>
        timer = setTimeout(() => r("timeout"), timeoutMs)
      ),
    ]);
    clearTimeout(timer);
    let hello: { ready?: boolean; pid?: number } | undefined;
    if (first !== "timeout" && !first.done) {
      try {
        hello = JSON.parse(first.value);
      } catch { /* not the hello */ }
    }
    if (!hello?.ready) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      const status = await child.status;
      throw new ProcessSpawnError(
        `The Python fork server (${options.executable}) did not start${
          first === "timeout" ? ` within ${timeoutMs} ms` : ""
        } (exit ${status.code}; its stderr is above)`,
        { path: options.executable },
      );
    }
    return new ForkServer(child, lines, child.pid, options.executable);
  }

  /** Why the server is unusable (it died), if it is. */
  get dead(): Error | undefined {
    return this.#dead;
  }

  /**
   * Forks one runner.
   *
   * @param options Arguments, environment and log socket.
   * @returns The runner's process handle.
   * @throws {ProcessSpawnError} when the server is gone or the fork failed.
   *
   * @example
   * ```ts ignore
   * const handle = await server.spawn({ args: ["--spec", path], env, logs });
   * ```
   */
  async spawn(options: ForkOptions): Promise<ProcessHandle> {
    if (this.#dead) throw this.#dead;
    const id = ++this.#nextId;
    const token = crypto.randomUUID();
    const streams = options.logs.expect(token);
    const answer = new Promise<number>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject })
    );
    this.#ensureReading();
    const request = {
      id,
      args: options.args,
      env: options.env,
      cwd: currentFolder(),
      log_socket: options.logs.path,
      token,
    };
    try {
      await this.#stdin.write(encoder.encode(JSON.stringify(request) + "\n"));
    } catch (cause) {
      this.#pending.delete(id);
      streams.cancel();
      throw new ProcessSpawnError(
        `Cannot reach the Python fork server: ${(cause as Error).message}`,
        { path: this.executable, cause },
      );
    }
    let pid: number;
    try {
      pid = await answer;
    } catch (e) {
      streams.cancel();
      throw e;
    }
    const child: Child = { status: Promise.withResolvers() };
    this.#children.set(pid, child);
    this.#ensureReading();
    const early = this.#early.get(pid);
    if (early) {
      this.#early.delete(pid);
      this.#children.delete(pid);
      child.status.resolve(early);
    }
    // A runner that dies before connecting its output: end the streams.
    child.status.promise.then(() => streams.exited());
    return {
      pid,
      stdout: streams.stdout,
      stderr: streams.stderr,
      status: child.status.promise,
      kill: (signal) => {
        if (!this.#children.has(pid)) return; // reaped: the pid may be reused
        try {
          Deno.kill(pid, signal);
        } catch { /* exited meanwhile */ }
      },
    };
  }

  #ensureReading(): void {
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
      // Something became awaited while the last read was ending.
      if (!this.#dead && (this.#pending.size > 0 || this.#children.size > 0)) {
        this.#ensureReading();
      }
    });
  }

  async #read(): Promise<void> {
    while (this.#pending.size > 0 || this.#children.size > 0) {
      const next = await this.#lines.next().catch(() => ({
        done: true as const,
      }));
      if (next.done) return this.#died();
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(next.value);
      } catch {
        continue;
      }
      if (typeof m.exit === "number") {
        const exit = {
          code: typeof m.code === "number" ? m.code : null,
          signal: typeof m.signal === "string" ? m.signal : null,
        };
        const child = this.#children.get(m.exit);
        if (child) {
          this.#children.delete(m.exit);
          child.status.resolve(exit);
        } else this.#early.set(m.exit, exit);
      } else if (typeof m.id === "number") {
        const pending = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        if (typeof m.pid === "number") pending?.resolve(m.pid);
        else {
          pending?.reject(
            new ProcessSpawnError(
              `The fork server could not fork a runner: ${String(m.error)}`,
              { path: this.executable },
            ),
          );
        }
      }
    }
  }

  /** The server is gone: its children got SIGKILL (PR_SET_PDEATHSIG). */
  #died(): void {
    this.#dead ??= new ProcessSpawnError(
      "The Python fork server exited, so it forks no more runners",
      { path: this.executable },
    );
    for (const p of this.#pending.values()) p.reject(this.#dead);
    this.#pending.clear();
    for (const child of this.#children.values()) {
      child.status.resolve({ code: null, signal: "SIGKILL" });
    }
    this.#children.clear();
  }

  /**
   * Ends the server (its stdin closes; it exits and any child left dies).
   *
   * @example
   * ```ts ignore
   * await server.close();
   * ```
   */
  async close(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited */ }
    }, 2000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#reading;
  }
}

/**
 * The Unix socket a session's forked runners connect their stdout and
 * stderr to. Each connection starts with one JSON line naming its runner's
 * token and stream; the rest is the stream.
 *
 * @example
 * ```ts ignore
 * const logs = LogSink.listen("/tmp/rmp/x/logs.sock");
 * await logs.close();
 * ```
 */
export class LogSink {
  /** The socket path. */
  readonly path: string;
  readonly #listener: Deno.UnixListener;
  readonly #waiting = new Map<
    string,
    Map<"stdout" | "stderr", ReadableStreamDefaultController<Uint8Array>>
  >();
  readonly #conns = new Set<Deno.UnixConn>();
  readonly #accepting: Promise<void>;
  #closed = false;

  private constructor(path: string, listener: Deno.UnixListener) {
    this.path = path;
    this.#listener = listener;
    this.#accepting = this.#accept();
  }

  /**
   * Listens at `path`.
   *
   * @param path The socket path.
   * @returns The sink.
   *
   * @example
   * ```ts ignore
   * const logs = LogSink.listen("/tmp/rmp/x/logs.sock");
   * ```
   */
  static listen(path: string): LogSink {
    let listener: Deno.UnixListener;
    try {
      listener = Deno.listen({ transport: "unix", path });
    } catch (e) {
      throw missingPermission(e, `Cannot listen on the log socket "${path}"`) ??
        e;
    }
    return new LogSink(path, listener);
  }

  /** @internal The two streams of the runner with `token`. */
  expect(token: string): {
    stdout: ReadableStream<Uint8Array>;
    stderr: ReadableStream<Uint8Array>;
    exited(): void;
    cancel(): void;
  } {
    const controllers = new Map<
      "stdout" | "stderr",
      ReadableStreamDefaultController<Uint8Array>
    >();
    this.#waiting.set(token, controllers);
    const make = (name: "stdout" | "stderr") =>
      new ReadableStream<Uint8Array>({
        start: (c) => {
          controllers.set(name, c);
        },
      });
    const stdout = make("stdout");
    const stderr = make("stderr");
    const end = () => {
      // Streams not connected by now never will be.
      const left = this.#waiting.get(token);
      this.#waiting.delete(token);
      for (const c of left?.values() ?? []) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    };
    return {
      stdout,
      stderr,
      // An exit may overtake the connections by a moment: wait a little.
      exited: () => void setTimeout(end, 50),
      cancel: end,
    };
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.UnixConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      this.#conns.add(conn);
      this.#pipe(conn).finally(() => this.#conns.delete(conn));
    }
  }

  async #pipe(conn: Deno.UnixConn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let head = new Uint8Array(0);
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    try {
      while (true) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) break;
        if (controller) {
          try {
            controller.enqueue(buffer.slice(0, n));
          } catch {
            break; // the reader went away
          }
          continue;
        }
        const joined = new Uint8Array(head.length + n);
        joined.set(head);
        joined.set(buffer.subarray(0, n), head.length);
        const newline = joined.indexOf(0x0a);
        if (newline < 0) {
          if (joined.length > 4096) break; // not a runner
          head = joined;
          continue;
        }
        let header: { token?: string; stream?: string };
        try {
          header = JSON.parse(
            new TextDecoder().decode(joined.subarray(0, newline)),
          );
        } catch {
          break;
        }
        const stream = header.stream === "stderr" ? "stderr" : "stdout";
        const waiting = this.#waiting.get(String(header.token));
        controller = waiting?.get(stream);
        if (!controller) break;
        waiting!.delete(stream);
        if (waiting!.size === 0) this.#waiting.delete(String(header.token));
        if (joined.length > newline + 1) {
          controller.enqueue(joined.slice(newline + 1));
        }
      }
    } finally {
      try {
        controller?.close();
      } catch { /* cancelled */ }
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }

  /**
   * Stops listening, ends every stream and removes the socket file.
   *
   * @example
   * ```ts ignore
   * await logs.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    await this.#accepting;
    try {
      Deno.removeSync(this.path);
    } catch { /* gone */ }
  }
}

/** This program's working folder (a spawned runner's), if readable. */
function currentFolder(): string | undefined {
  try {
    return Deno.cwd();
  } catch {
    return undefined; // without --allow-read: the server's own
  }
}

/** The lines of a byte stream. */
async function* linesOf(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, newline);
      pending = pending.slice(newline + 1);
    }
  }
  if (pending) yield pending;
}
