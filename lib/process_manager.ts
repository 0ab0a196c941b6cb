/**
 * Spawning and stopping node runner processes: argument arrays (no shell),
 * stdout and stderr read line by line for as long as the process lives (a
 * node can never block on a full pipe), and the exit watched from the process
 * itself, not polled.
 *
 * @module
 */
import { missingPermission, ProcessSpawnError } from "./errors.ts";

/** Options of {@linkcode spawnNodeProcess}. */
export interface NodeProcessOptions {
  /** The node this process hosts (used in errors and log lines). */
  nodeId: string;
  /** The Python executable. */
  executable: string;
  /** Arguments after the executable. */
  args: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Called with every complete line the process prints. */
  onLine?: (stream: "stdout" | "stderr", line: string) => void;
}

/** The end of a node process. */
export interface NodeExit {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: string | null;
}

async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  try {
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        onLine(pending.slice(0, newline).replace(/\r$/, ""));
        pending = pending.slice(newline + 1);
      }
    }
  } catch { /* the process is gone */ }
  if (pending) onLine(pending);
}

/**
 * A running node process.
 *
 * @example
 * ```ts ignore
 * import { spawnNodeProcess } from "@remotemedia/multiprocess/process-manager";
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
  readonly #child: Deno.ChildProcess;
  #exit: NodeExit | undefined;

  /** @internal */
  constructor(
    nodeId: string,
    child: Deno.ChildProcess,
    onLine: NodeProcessOptions["onLine"],
  ) {
    this.nodeId = nodeId;
    this.pid = child.pid;
    this.#child = child;
    const out = pumpLines(child.stdout, (l) => onLine?.("stdout", l));
    const err = pumpLines(child.stderr, (l) => onLine?.("stderr", l));
    this.exited = child.status.then(async (status) => {
      await Promise.all([out, err]);
      this.#exit = {
        code: status.signal ? null : status.code,
        signal: status.signal ?? null,
      };
      return this.#exit;
    });
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
 * import { spawnNodeProcess } from "@remotemedia/multiprocess/process-manager";
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
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (cause) {
    throw missingPermission(
      cause,
      `Cannot start the Python runner "${options.executable}" for node "${options.nodeId}"`,
    ) ?? new ProcessSpawnError(
      `cannot start the Python runner for node "${options.nodeId}": ${options.executable} ${
        cause instanceof Deno.errors.NotFound
          ? "does not exist"
          : (cause as Error).message
      }`,
      { path: options.executable, nodeId: options.nodeId, cause },
    );
  }
  return new NodeProcess(options.nodeId, child, options.onLine);
}

/**
 * The resident set size of a process in bytes, or undefined when it is gone.
 *
 * @param pid The process id.
 * @returns RSS in bytes.
 *
 * @example
 * ```ts
 * import { residentBytes } from "@remotemedia/multiprocess/process-manager";
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
