/**
 * Network namespaces for the multi-host tests and `bench:hosts` (issue 14):
 * N namespaces ("hosts") on one machine, every pair linked by its own veth
 * pair, with addresses inside the namespaces only (the machine's own network
 * is never touched).
 *
 * Names carry a per-process prefix, `rmp<pid>h<i>` for namespaces and
 * `rmp<pid>v<k>a|b` for the two ends of link k (at most 15 characters, the
 * kernel's limit for an interface name), so concurrent runs never collide and
 * a later run can sweep what a crashed one left ({@linkcode sweepStale}):
 * a network is stale when the flock(2) its owner holds on
 * `/tmp/rmp-netns/rmp<pid>.lock` is free (or, without a lock file, when that
 * PID is gone).
 * Link k between hosts a < b is 10.231.k.0/24, a at .1 and b at .2
 * (namespaces are separate networks, so two runs may use the same addresses).
 *
 * Needs root and iproute2 (`ip`). {@linkcode Network.close} removes every
 * namespace and veth it made and kills what still runs inside them, also
 * after a failed creation; `unload`, SIGINT and SIGTERM handlers do it when
 * the process ends without closing, and a run killed -9 is swept by the next
 * one.
 *
 * ```ts ignore
 * await using net = await createNetwork(2);
 * const out = await net.exec(0, ["python3", "-c", "print(1)"]);
 * ```
 *
 * @module
 */

/** A failure of the harness: `ip` refused, a bad argument, a timeout. */
export class NetnsError extends Error {
  /** @param message What failed and why. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NetnsError";
  }
}

/** The prefix of this process's names. */
export const PREFIX = `rmp${Deno.pid}`;
const NS_RE = /^rmp(\d+)h\d+([a-z]?)$/;
const VETH_RE = /^rmp(\d+)v\d+([a-z]?)[ab]$/;
/**
 * Where each network's lock file lives, `<dir>/rmp<pid><tag>.lock`: its
 * owner holds an exclusive flock(2) on it for the network's life (taken
 * before the first namespace exists), so a sweeper knows the owner is gone
 * even across PID namespaces, where a PID in a name may name another
 * process. Networks without a lock file fall back to the PID rule.
 */
export const LOCK_DIR = "/tmp/rmp-netns";
/** Bound on one `ip` call (they take milliseconds; the machine is loaded). */
const IP_TIMEOUT_MS = 15_000;

/** True when this process may make network namespaces (root, iproute2). */
export function canMakeNetns(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    return Deno.uid() === 0 && new Deno.Command("ip", {
      args: ["netns", "list"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/** Runs `ip args`, throwing a {@linkcode NetnsError} with its stderr. */
async function ip(args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(IP_TIMEOUT_MS),
  }).output().catch((cause) => {
    throw new NetnsError(`Cannot run ip ${args.join(" ")}`, { cause });
  });
  if (!out.success) {
    throw new NetnsError(
      `ip ${args.join(" ")} failed (exit ${out.code}): ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** `ip` without checks or waits, for the unload handler. */
function ipSync(args: string[]): string {
  try {
    const out = new Deno.Command("ip", {
      args,
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    return new TextDecoder().decode(out.stdout);
  } catch {
    return "";
  }
}

/** Names of all network namespaces (`ip netns list`). */
export async function namespaceNames(): Promise<string[]> {
  return parseNetnsList(await ip(["netns", "list"]));
}

function parseNetnsList(text: string): string[] {
  return text.split("\n").map((l) => l.trim().split(" ")[0]).filter((n) => n);
}

/** Names of the interfaces of the machine's own namespace (`ip link`). */
export async function rootLinkNames(): Promise<string[]> {
  return parseLinkList(await ip(["-o", "link", "show"]));
}

function parseLinkList(text: string): string[] {
  // "7: rmp12v0a@if6: <...>" -> "rmp12v0a"
  return text.split("\n").map((l) => l.split(":")[1]?.trim().split("@")[0])
    .filter((n): n is string => !!n);
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** What {@linkcode sweepStale} removed. */
export interface SweepResult {
  /** Namespaces removed. */
  namespaces: string[];
  /** Veth ends removed from the machine's own namespace. */
  links: string[];
}

/**
 * Removes the namespaces and veths of this harness whose owner process is
 * gone (a run killed before it could clean up). Never touches a live
 * process's names nor any name without the harness's pattern.
 *
 * @returns What was removed.
 */
export async function sweepStale(): Promise<SweepResult> {
  // Locks taken here are held until the sweep is over, then their files go.
  const taken = new Map<string, Deno.FsFile | null>();
  const stale = (name: string, re: RegExp): boolean => {
    const m = re.exec(name);
    if (!m || Number(m[1]) === Deno.pid) return false;
    const id = `rmp${m[1]}${m[2]}`;
    if (!taken.has(id)) taken.set(id, ownerGone(id, Number(m[1])));
    return taken.get(id) !== null;
  };
  try {
    const namespaces = (await namespaceNames()).filter((n) => stale(n, NS_RE));
    for (const ns of namespaces) await removeNamespace(ns);
    const links = (await rootLinkNames()).filter((n) => stale(n, VETH_RE));
    for (const link of links) {
      await ip(["link", "del", link]).catch(() => {/* gone with its peer */});
    }
    return { namespaces, links };
  } finally {
    for (const [id, file] of taken) {
      if (!file) continue;
      try {
        Deno.removeSync(`${LOCK_DIR}/${id}.lock`);
      } catch { /* no lock file (PID rule) */ }
      file.close();
    }
  }
}

/** A sentinel for "owner gone, no lock file": nothing to hold or remove. */
const NO_LOCK = { close(): void {} } as unknown as Deno.FsFile;

/**
 * Whether the owner of network `id` is gone: its lock file taken here
 * (returned, to hold while sweeping), or no lock file and `pid` gone
 * ({@linkcode NO_LOCK}); null while the owner lives.
 */
function ownerGone(id: string, pid: number): Deno.FsFile | null {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(`${LOCK_DIR}/${id}.lock`, { read: true, write: true });
  } catch {
    return alive(pid) ? null : NO_LOCK;
  }
  if (file.tryLockSync(true)) return file;
  file.close();
  return null;
}

/** Kills what runs in `ns` (our own namespace), then removes it. */
async function removeNamespace(ns: string): Promise<void> {
  // A namespace with a process inside outlives `ip netns del` (and so do its
  // veths): kill them first.
  const pids = (await ip(["netns", "pids", ns]).catch(() => "")).split("\n")
    .map(Number).filter((p) => p > 0);
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* exited */ }
  }
  await ip(["netns", "del", ns]).catch((e) => {
    // Gone already is fine; anything else is a leak worth reporting.
    if (!/No such file/.test(String(e))) throw e;
  });
}

/** One veth pair between two hosts. */
export interface Link {
  /** Link index (the third byte of its subnet). */
  index: number;
  /** The hosts it joins, a < b. */
  a: number;
  b: number;
  /** The interface names inside host a and host b. */
  ifA: string;
  ifB: string;
  /** The addresses of host a and host b on this link. */
  addrA: string;
  addrB: string;
}

/** Options of {@linkcode createNetwork}. */
export interface NetworkOptions {
  /** Sweep stale names of dead runs first. @default {true} */
  sweep?: boolean;
}

/** Options of {@linkcode Network.exec}. */
export interface ExecOptions {
  /** Bound in ms; the command is killed past it. @default {30_000} */
  timeoutMs?: number;
  /** Environment (added to this process's). */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Data written to its stdin. */
  stdin?: Uint8Array;
}

/** What {@linkcode Network.exec} returns. */
export interface ExecResult {
  code: number;
  success: boolean;
  stdout: string;
  stderr: string;
}

let counter = 0;
const live = new Set<Network>();
let unloadHooked = false;

/**
 * N namespaces linked pairwise; see the module doc.
 */
export class Network implements AsyncDisposable {
  /** The namespace names, by host index. */
  readonly namespaces: string[];
  /** Every link, one per pair of hosts. */
  readonly links: Link[] = [];
  #children = new Set<Deno.ChildProcess>();
  #closed = false;
  #lock: { path: string; file: Deno.FsFile };

  /** @internal use {@linkcode createNetwork}. */
  constructor(
    namespaces: string[],
    lock: { path: string; file: Deno.FsFile },
  ) {
    this.namespaces = namespaces;
    this.#lock = lock;
  }

  /** Removes the lock file, then drops the lock (last: a sweeper that gets
   * it finds nothing left). */
  #unlock(): void {
    try {
      Deno.removeSync(this.#lock.path);
    } catch { /* removed already */ }
    try {
      this.#lock.file.close();
    } catch { /* closed already */ }
  }

  /** The namespace name of `host`. */
  ns(host: number): string {
    const name = this.namespaces[host];
    if (name === undefined) {
      throw new NetnsError(
        `No host ${host} in this network (it has ${this.namespaces.length})`,
      );
    }
    return name;
  }

  /** The link between hosts `a` and `b`. */
  link(a: number, b: number): Link {
    const [lo, hi] = a < b ? [a, b] : [b, a];
    const link = this.links.find((l) => l.a === lo && l.b === hi);
    if (!link) throw new NetnsError(`No link between hosts ${a} and ${b}`);
    return link;
  }

  /** The address of host `to` as host `from` reaches it (their link). */
  address(from: number, to: number): string {
    const l = this.link(from, to);
    return to === l.a ? l.addrA : l.addrB;
  }

  /** `ip netns exec <ns> cmd...` as a command (not started). */
  command(
    host: number,
    cmd: string[],
    options: Omit<Deno.CommandOptions, "args"> = {},
  ): Deno.Command {
    if (cmd.length === 0) throw new NetnsError("No command to run");
    return new Deno.Command("ip", {
      ...options,
      args: ["netns", "exec", this.ns(host), ...cmd],
    });
  }

  /**
   * Starts `cmd` inside host `host`; {@linkcode close} kills it if it still
   * runs.
   */
  spawn(
    host: number,
    cmd: string[],
    options: Omit<Deno.CommandOptions, "args"> = {},
  ): Deno.ChildProcess {
    this.#open();
    const child = this.command(host, cmd, options).spawn();
    this.#children.add(child);
    child.status.then(() => this.#children.delete(child));
    return child;
  }

  /** Runs `cmd` inside host `host` to its end (bounded), capturing output. */
  async exec(
    host: number,
    cmd: string[],
    options: ExecOptions = {},
  ): Promise<ExecResult> {
    const child = this.spawn(host, cmd, {
      env: options.env,
      cwd: options.cwd,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    });
    const timeoutMs = options.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }, timeoutMs);
    try {
      if (options.stdin) {
        const w = child.stdin.getWriter();
        await w.write(options.stdin).catch(() => {});
        await w.close().catch(() => {});
      }
      const out = await child.output();
      const dec = new TextDecoder();
      const result = {
        code: out.code,
        success: out.success,
        stdout: dec.decode(out.stdout),
        stderr: dec.decode(out.stderr),
      };
      if (out.signal === "SIGKILL" && !result.success) {
        result.stderr += `\n(killed after ${timeoutMs} ms)`;
      }
      return result;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Takes the link between `a` and `b` down (both ends, so neither side
   * keeps a carrier). */
  async linkDown(a: number, b: number): Promise<void> {
    await this.#setLink(a, b, "down");
  }

  /** Brings the link between `a` and `b` back up. */
  async linkUp(a: number, b: number): Promise<void> {
    await this.#setLink(a, b, "up");
  }

  async #setLink(a: number, b: number, state: "up" | "down"): Promise<void> {
    this.#open();
    const l = this.link(a, b);
    await ip(["-n", this.ns(l.a), "link", "set", "dev", l.ifA, state]);
    await ip(["-n", this.ns(l.b), "link", "set", "dev", l.ifB, state]);
  }

  #open(): void {
    if (this.#closed) throw new NetnsError("This network is closed");
  }

  /**
   * Kills what still runs inside, removes every namespace (their veths go
   * with them) and any veth end left in the machine's namespace by a failed
   * creation. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this);
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }
    await Promise.all([...this.#children].map((c) => c.status));
    const errors: unknown[] = [];
    for (const ns of this.namespaces) {
      await removeNamespace(ns).catch((e) => errors.push(e));
    }
    for (const l of this.links) {
      for (const name of [l.ifA, l.ifB]) {
        if ((await rootLinkNames()).includes(name)) {
          await ip(["link", "del", name]).catch((e) => errors.push(e));
        }
      }
    }
    this.#unlock();
    if (errors.length) {
      throw new NetnsError(
        `Cleaning up the network failed: ${errors.map(String).join("; ")}`,
      );
    }
  }

  /** Synchronous best-effort close for the `unload` handler. */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this);
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }
    for (const ns of this.namespaces) {
      for (const pid of ipSync(["netns", "pids", ns]).split("\n")) {
        try {
          if (Number(pid) > 0) Deno.kill(Number(pid), "SIGKILL");
        } catch { /* exited */ }
      }
      ipSync(["netns", "del", ns]);
    }
    for (const l of this.links) {
      ipSync(["link", "del", l.ifA]);
      ipSync(["link", "del", l.ifB]);
    }
    this.#unlock();
  }

  /** Same as {@linkcode close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Creates `hosts` namespaces, each pair linked by a veth pair with an
 * address at each end, all interfaces (and `lo`) up.
 *
 * @param hosts How many namespaces, 2 to 8.
 * @param options Sweep of stale names first.
 * @returns The network; close it (or `await using`).
 * @throws {NetnsError} When not root, `ip` fails, or `hosts` is out of range
 *   (what was made so far is removed first).
 */
export async function createNetwork(
  hosts: number,
  options: NetworkOptions = {},
): Promise<Network> {
  if (!Number.isInteger(hosts) || hosts < 2 || hosts > 8) {
    throw new NetnsError(
      `A network needs 2 to 8 hosts (got ${hosts}): one veth pair per pair of hosts`,
    );
  }
  if (!canMakeNetns()) {
    throw new NetnsError(
      "Cannot make network namespaces: this needs root and iproute2 (ip netns)",
    );
  }
  if (options.sweep ?? true) await sweepStale();
  // Several networks in one process get distinct names through `counter`
  // (one letter, kept short for the 15-character limit).
  const tag = counter === 0 ? "" : String.fromCharCode(97 + (counter % 26));
  counter++;
  const names = Array.from({ length: hosts }, (_, i) => `${PREFIX}h${i}${tag}`);
  Deno.mkdirSync(LOCK_DIR, { recursive: true });
  const lockPath = `${LOCK_DIR}/${PREFIX}${tag}.lock`;
  const lockFile = Deno.openSync(lockPath, {
    read: true,
    write: true,
    create: true,
  });
  lockFile.lockSync(true); // ours: a fresh name, nobody else holds it
  const net = new Network(names, { path: lockPath, file: lockFile });
  live.add(net);
  if (!unloadHooked) {
    unloadHooked = true;
    globalThis.addEventListener("unload", () => {
      for (const n of [...live]) n.closeSync();
    });
    // SIGINT/SIGTERM (a timeout, Ctrl-C) skip `unload`: clean up, then die
    // as the signal would have made us.
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      Deno.addSignalListener(signal, () => {
        for (const n of [...live]) n.closeSync();
        Deno.exit(code);
      });
    }
  }
  try {
    for (const ns of names) {
      await ip(["netns", "add", ns]);
      await ip(["-n", ns, "link", "set", "lo", "up"]);
    }
    let k = 0;
    for (let a = 0; a < hosts; a++) {
      for (let b = a + 1; b < hosts; b++, k++) {
        const ifA = `${PREFIX}v${k}${tag}a`;
        const ifB = `${PREFIX}v${k}${tag}b`;
        if (ifA.length > 15) {
          throw new NetnsError(`Interface name ${ifA} is over 15 characters`);
        }
        const link: Link = {
          index: k,
          a,
          b,
          ifA,
          ifB,
          addrA: `10.231.${k}.1`,
          addrB: `10.231.${k}.2`,
        };
        net.links.push(link); // before creation, so close() sweeps halves
        await ip(["link", "add", ifA, "type", "veth", "peer", "name", ifB]);
        await ip(["link", "set", ifA, "netns", names[a]]);
        await ip(["link", "set", ifB, "netns", names[b]]);
        await ip([
          "-n",
          names[a],
          "addr",
          "add",
          `${link.addrA}/24`,
          "dev",
          ifA,
        ]);
        await ip([
          "-n",
          names[b],
          "addr",
          "add",
          `${link.addrB}/24`,
          "dev",
          ifB,
        ]);
        await ip(["-n", names[a], "link", "set", ifA, "up"]);
        await ip(["-n", names[b], "link", "set", ifB, "up"]);
      }
    }
  } catch (e) {
    await net.close().catch(() => {/* the first error is the one to see */});
    throw e;
  }
  return net;
}
