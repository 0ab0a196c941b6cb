/**
 * Drives `isolation_owner.ts` processes for the isolation tests, optionally
 * each in its own PID namespace (`unshare --pid --fork`, sharing /dev/shm
 * and /tmp with everyone). Uses only the API that existed before lock files.
 *
 * In a namespace, a shell is PID 1 and the owner PID 2, so the owner's kill
 * leaves its runners alive (the death of a namespace's PID 1 would kill them
 * all). It also keeps sweepers of versions before lock files away from the
 * test's files: they judge by the PID in the name, and PID 2 is alive here.
 *
 * @module
 */

const script = new URL("./isolation_owner.ts", import.meta.url).pathname;

/** What an owner prints once its isolation is live. */
export interface OwnerInfo {
  prefix: string;
  root: string;
  /** Its PID in its own namespace. */
  pid: number;
  /** Its PID as this process sees it (the one to kill). */
  hostPid: number;
  /** The runner's PID (as this process sees it) in `session` mode. */
  runnerPid?: number;
}

/** True when this machine lets us make PID namespaces (root, unshare(1)). */
export function canUnsharePid(): boolean {
  try {
    return new Deno.Command("unshare", {
      args: ["--pid", "--fork", "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync().code === 0;
  } catch {
    return false;
  }
}

/** One owner process. */
export class Owner {
  readonly info: OwnerInfo;
  readonly #child: Deno.ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stderr: Promise<void>;
  readonly #pidNamespace: boolean;
  #gone = false;

  private constructor(
    child: Deno.ChildProcess,
    lines: AsyncIterator<string>,
    info: OwnerInfo,
    stderr: Promise<void>,
    pidNamespace: boolean,
  ) {
    this.#pidNamespace = pidNamespace;
    this.#child = child;
    this.#stderr = stderr;
    this.#lines = lines;
    this.#stdin = child.stdin.getWriter();
    this.info = info;
  }

  /** Starts an owner and waits until its isolation is live. */
  static async start(
    mode: "context" | "session" | "spawned-session",
    options: { pidNamespace?: boolean } = {},
  ): Promise<Owner> {
    const deno = [Deno.execPath(), "run", "-A", script, mode];
    // --kill-child: if unshare dies, so does the namespace (no strays). The
    // shell passes its stdin on through fd 3 (a background job's own stdin
    // is /dev/null) and stays PID 1 after the owner's death, letting go of
    // the pipes (so the owner's death ends them).
    const init =
      'exec 3<&0; "$@" <&3 3<&- & wait $! 2>/dev/null; exec sleep 86400 >/dev/null 2>&1 3<&-';
    const [cmd, ...args] = options.pidNamespace
      ? ["unshare", "--pid", "--fork", "--kill-child", "sh", "-c", init, "sh"]
        .concat(deno)
      : deno;
    const child = new Deno.Command(cmd, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = forwardStderr(child.stderr);
    const lines = readLines(child.stdout);
    const first = await lines.next();
    if (first.done) {
      await child.status;
      await stderr;
      throw new Error(`The owner (${mode}) exited before it was ready`);
    }
    return new Owner(
      child,
      lines,
      JSON.parse(first.value),
      stderr,
      options.pidNamespace ?? false,
    );
  }

  /** Sends one command and returns its JSON answer. */
  async command(line: string): Promise<Record<string, number>> {
    await this.#stdin.write(new TextEncoder().encode(`${line}\n`));
    const next = await this.#lines.next();
    if (next.done) throw new Error(`The owner exited during "${line}"`);
    return JSON.parse(next.value);
  }

  /** Runs the owner's sweeper over `prefixes`; returns how many it removed. */
  async sweep(prefixes: string[]): Promise<number> {
    return (await this.command(`sweep ${prefixes.join(" ")}`)).removed;
  }

  /** kill -9 of the owner, then waits until it is reaped (only then are all
   * its threads gone and its files closed). Its namespace (and the runners
   * in it) lives on until {@linkcode Owner.close}. */
  async kill9(): Promise<void> {
    if (this.#gone) return;
    this.#gone = true;
    try {
      Deno.kill(this.info.hostPid, "SIGKILL");
    } catch { /* already gone */ }
    if (!this.#pidNamespace) {
      await this.#child.status;
      return;
    }
    const deadline = Date.now() + 10_000;
    while (existing([`/proc/${this.info.hostPid}`]).length) {
      if (Date.now() > deadline) throw new Error("The owner was not reaped");
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Kills the owner and everything in its namespace; waits for all. */
  async close(): Promise<void> {
    await this.kill9();
    try {
      this.#child.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.#child.status;
    await this.#stdin.close().catch(() => {});
    await this.#stderr;
  }
}

/** Passes the owner's stderr on, without the line unshare(1) prints when
 * its child died of SIGKILL (it cannot restore that signal's handler). */
async function forwardStderr(stream: ReadableStream<Uint8Array>) {
  const encoder = new TextEncoder();
  for await (const line of readLines(stream)) {
    if (line.startsWith("unshare: sigprocmask unblock failed")) continue;
    await Deno.stderr.write(encoder.encode(`${line}\n`));
  }
}

async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, newline);
      pending = pending.slice(newline + 1);
    }
  }
}

/** Files that exist of `paths`. */
export function existing(paths: string[]): string[] {
  return paths.filter((p) => {
    try {
      Deno.lstatSync(p);
      return true;
    } catch {
      return false;
    }
  });
}

/** True while `pid` runs (not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !stat.split(") ")[1].startsWith("Z");
  } catch {
    return false;
  }
}
