/**
 * Spawning and stopping node runner processes: argument arrays (no shell),
 * stdout and stderr read line by line for as long as the process lives (a
 * node can never block on a full pipe), and the exit watched from the process
 * itself, not polled.
 *
 * @module
 */
import { missingPermission, ProcessSpawnError } from "../errors.ts";
import { pumpLines } from "./_lines.ts";

/** Options of {@linkcode spawnNodeProcess}. */
export interface NodeProcessOptions {
  /** The node this process hosts (used in errors and log lines). */
  nodeId: string;
  /** The Python executable. */
  executable: string;
  /** Arguments after the executable. */
  args: string[];
  /** The process's whole environment (nothing of this program's is added);
   * when absent, it inherits this program's. */
  env?: Record<string, string>;
  /**
   * Called with every line the process prints (without its newline). A line
   * longer than {@linkcode MAX_LOG_LINE_BYTES} comes in parts, each but the
   * last with `continued` true.
   */
  onLine?: (
    stream: "stdout" | "stderr",
    line: string,
    continued: boolean,
  ) => void;
}

/** The end of a node process. */
export interface NodeExit {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: string | null;
}

/**
 * Longest line passed on in one piece, in bytes. A longer one is passed on in
 * parts of at most this size, each but the last marked `continued`, so one
 * huge line neither stalls the node nor grows this process.
 */
export const MAX_LOG_LINE_BYTES = 64 * 1024;

/**
 * What a node process is made of, however it was started (spawned by this
 * program, or forked by the fork server).
 */
export interface ProcessHandle {
  /** The process id. */
  pid: number;
  /** Its stdout. */
  stdout: ReadableStream<Uint8Array>;
  /** Its stderr. */
  stderr: ReadableStream<Uint8Array>;
  /** Resolves with its exit. */
  status: Promise<{ code: number | null; signal: string | null }>;
  /** Sends a signal (ignored once it exited). */
  kill(signal: Deno.Signal): void;
}

/** The handle of a child of this program. */
function childHandle(child: Deno.ChildProcess): ProcessHandle {
  return {
    pid: child.pid,
    stdout: child.stdout,
    stderr: child.stderr,
    status: child.status.then((s) => ({
      code: s.signal ? null : s.code,
      signal: s.signal ?? null,
    })),
    kill: (signal) => child.kill(signal),
  };
}

/**
 * A running node process.
 *
 * @example
 * ```ts ignore
 * import { spawnNodeProcess } from "@remotemedia/multiprocess/node-process";
 * const p = spawnNodeProcess({ nodeId: "n", executable: "python3", args: ["-c", "print(1)"] });
 * console.log(await p.exited); // { code: 0, signal: null }
 * ```
 */
export class NodeProcess {
  /** The node id. */
  readonly nodeId: string;
  /** The operating-system process id. */
  readonly pid: number;
  /** Resolves when the process has exited and its output is fully read. */
  readonly exited: Promise<NodeExit>;
  readonly #child: ProcessHandle;
  #exit: NodeExit | undefined;

  /** @internal */
  constructor(
    nodeId: string,
    child: ProcessHandle,
    onLine: NodeProcessOptions["onLine"],
  ) {
    this.nodeId = nodeId;
    this.pid = child.pid;
    this.#child = child;
    const out = pumpLines(
      child.stdout,
      (l, c) => onLine?.("stdout", l, c),
      MAX_LOG_LINE_BYTES,
    );
    const err = pumpLines(
      child.stderr,
      (l, c) => onLine?.("stderr", l, c),
      MAX_LOG_LINE_BYTES,
    );
    this.exited = child.status.then(async (status) => {
      await Promise.all([out, err]);
      this.#exit = { code: status.code, signal: status.signal };
      return this.#exit;
    });
  }

  /**
   * @internal A process forked by the fork server.
   *
   * @param nodeId The node.
   * @param handle The forked process.
   * @param onLine Where its lines go.
   * @returns The process.
   */
  static fromHandle(
    nodeId: string,
    handle: ProcessHandle,
    onLine: NodeProcessOptions["onLine"],
  ): NodeProcess {
    return new NodeProcess(nodeId, handle, onLine);
  }

  /** The exit, once known. */
  get exit(): NodeExit | undefined {
    return this.#exit;
  }

  /**
   * Sends a signal; ignored when the process has already exited.
   *
   * @param signal The signal.
   *
   * @example
   * ```ts ignore
   * p.kill("SIGKILL");
   * ```
   */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (this.#exit) return;
    try {
      this.#child.kill(signal);
    } catch { /* exited meanwhile */ }
  }

  /**
   * Waits up to `graceMs` for the process to exit by itself, then kills it
   * with SIGKILL and waits for the exit (always reaped: a zombie would keep
   * its iceoryx2 node alive).
   *
   * @param graceMs The grace period.
   * @returns The exit.
   *
   * @example
   * ```ts ignore
   * await p.stop(5000);
   * ```
   */
  async stop(graceMs: number): Promise<NodeExit> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceful = await Promise.race([
      this.exited.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), graceMs)),
    ]);
    clearTimeout(timer);
    if (!graceful) this.kill("SIGKILL");
    return await this.exited;
  }
}

/**
 * Spawns one node runner process.
 *
 * @param options What to run and where its output goes.
 * @returns The process.
 * @throws {ProcessSpawnError} when the executable is missing or cannot run.
 * @throws {MissingPermissionError} without `--allow-run` for the executable.
 *
 * @example
 * ```ts ignore
 * import { spawnNodeProcess } from "@remotemedia/multiprocess/node-process";
 * const p = spawnNodeProcess({ nodeId: "n", executable: "python3", args: ["-V"] });
 * await p.exited;
 * ```
 */
export function spawnNodeProcess(options: NodeProcessOptions): NodeProcess {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(options.executable, {
      args: options.args,
      env: options.env,
      // Only the given environment (control/_node_env.ts), not this program's.
      clearEnv: options.env !== undefined,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (cause) {
    throw missingPermission(
      cause,
      `Cannot start the Python runner "${options.executable}" for node "${options.nodeId}"`,
    ) ?? new ProcessSpawnError(
      `Cannot start the Python runner for node "${options.nodeId}": ${options.executable} ${
        cause instanceof Deno.errors.NotFound
          ? "does not exist"
          : (cause as Error).message
      }`,
      { path: options.executable, nodeId: options.nodeId, cause },
    );
  }
  return new NodeProcess(options.nodeId, childHandle(child), options.onLine);
}

/**
 * The resident set size of a process in bytes, or undefined when it is gone.
 *
 * @param pid The process id.
 * @returns RSS in bytes.
 *
 * @example
 * ```ts
 * import { residentBytes } from "@remotemedia/multiprocess/node-process";
 * console.log((residentBytes(Deno.pid) ?? 0) > 0); // true
 * ```
 */
export function residentBytes(pid: number): number | undefined {
  try {
    const statm = Deno.readTextFileSync(`/proc/${pid}/statm`);
    return Number(statm.split(" ")[1]) * 4096;
  } catch {
    return undefined;
  }
}
