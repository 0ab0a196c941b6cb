/**
 * Isolation of iceoryx2 resources: every session (and every test) gets its
 * own iceoryx2 prefix and root path, so parallel runs never see each other,
 * and everything a session created can be removed, even after a crash.
 *
 * Names: prefix `rmp<PID>x<8 hex>_`, root `/tmp/rmp/<prefix>/`, lock file
 * `/tmp/rmp/<prefix>.lock`, shared memory `/dev/shm/<prefix>*`. The PID is
 * only for humans: an isolation is live while some process holds a shared
 * flock on its lock file (docs/channel-protocol.md, "Isolation").
 *
 * @module
 */
import {
  ISOLATION_BASE_DIR,
  ISOLATION_ENV_PREFIX,
  ISOLATION_ENV_ROOT,
  ISOLATION_LOCK_SUFFIX,
  ISOLATION_PREFIX_PATTERN,
  ISOLATION_SHM_DIR,
} from "../protocol/contracts.ts";
import { ChannelError } from "../errors.ts";

/** The iceoryx2 prefix and root path of one session. */
export interface Isolation {
  /** The iceoryx2 `global.prefix`, e.g. `rmp1234x0badf00d_`. */
  readonly prefix: string;
  /** The iceoryx2 `global.root_path`, with a trailing slash. */
  readonly root: string;
}

/** An isolation made by {@linkcode newIsolation}, with its owner's lock. */
export interface LockedIsolation extends Isolation {
  /** The shared lock that keeps sweepers away while this process lives. */
  readonly lock: IsolationLock;
}

/** The folder that holds every session's root path and lock file. */
export const ISOLATION_BASE: string = ISOLATION_BASE_DIR;
const SHM_DIR = ISOLATION_SHM_DIR;
const PREFIX_PATTERN = new RegExp(ISOLATION_PREFIX_PATTERN);
/**
 * Files of an isolation without a lock file (made by a version before lock
 * files) are swept only when they are older than this and the PID in their
 * name is gone, so a live session of such a version is not broken.
 */
export const UNLOCKED_GRACE_MS = 60_000;
const CREATE_ATTEMPTS = 16;

/**
 * A flock(2) on an isolation's lock file. Shared locks mark the isolation
 * live (its owner and every process of its session hold one); a sweeper
 * removes an isolation only while it holds the exclusive lock. The file is
 * opened with O_CLOEXEC (Deno always does), so child processes do not inherit
 * the lock: each takes its own.
 *
 * @example
 * ```ts
 * import { holdIsolation, newIsolation, removeIsolation } from "@remotemedia/multiprocess/isolation";
 * const iso = newIsolation();
 * const lock = holdIsolation(iso); // what a second user of the isolation does
 * console.log(lock?.held); // true
 * lock?.release();
 * removeIsolation(iso);
 * ```
 */
export class IsolationLock {
  /** The lock file. */
  readonly path: string;
  #file: Deno.FsFile | null;

  /** @internal Takes over `file`, which already holds the lock. */
  constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /** True until {@linkcode IsolationLock.release}. */
  get held(): boolean {
    return this.#file !== null;
  }

  /** @internal Converts to the exclusive lock (false: another holder). */
  tryExclusive(): boolean {
    if (!this.#file) return false;
    // flock converts in place; when that fails the shared lock may be gone
    // too (flock(2)), which is fine: the caller releases next anyway.
    return this.#file.tryLockSync(true);
  }

  /** Releases the lock (closing the file); the files stay. Idempotent. */
  release(): void {
    const file = this.#file;
    this.#file = null;
    try {
      file?.close();
    } catch { /* already closed */ }
  }
}

/**
 * The lock file of an isolation: its root without the trailing slash, plus
 * `.lock` (beside the root, so it can exist before the root and outlive it).
 *
 * @param isolation The isolation.
 * @returns The path, e.g. `/tmp/rmp/rmp1234x0badf00d_.lock`.
 *
 * @example
 * ```ts
 * import { isolationLockPath } from "@remotemedia/multiprocess/isolation";
 * console.log(isolationLockPath({ prefix: "p_", root: "/tmp/rmp/p_/" })); // "/tmp/rmp/p_.lock"
 * ```
 */
export function isolationLockPath(isolation: Isolation): string {
  return `${isolation.root.replace(/\/+$/, "")}${ISOLATION_LOCK_SUFFIX}`;
}

function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}

/**
 * Locks `path` (already open as `file`) and checks that the path still names
 * the locked file: a sweeper may have unlinked it before we got the lock.
 */
function lockIfCurrent(
  file: Deno.FsFile,
  path: string,
  exclusive: boolean,
): boolean {
  try {
    if (!file.tryLockSync(exclusive)) return false;
    return sameFile(file.statSync(), Deno.lstatSync(path));
  } catch {
    return false;
  }
}

function randomPrefix(): string {
  const random = crypto.getRandomValues(new Uint8Array(4));
  const hex = Array.from(random, (b) => b.toString(16).padStart(2, "0"))
    .join("");
  return `rmp${Deno.pid}x${hex}_`;
}

/**
 * A new, unique isolation owned by this process: its lock file is created
 * and locked (shared) before anything else of it exists, then its root is
 * created. The lock is held until {@linkcode removeIsolation} or
 * `isolation.lock.release()`, or until the process exits.
 *
 * @returns The isolation and its lock.
 * @throws {ChannelError} When the lock file or the root cannot be created.
 *
 * @example
 * ```ts
 * import { newIsolation, removeIsolation } from "@remotemedia/multiprocess/isolation";
 * const iso = newIsolation();
 * console.log(iso.prefix.startsWith(`rmp${Deno.pid}x`)); // true
 * removeIsolation(iso);
 * ```
 */
export function newIsolation(): LockedIsolation {
  let lastError: unknown;
  for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
    const prefix = randomPrefix();
    const root = `${ISOLATION_BASE}/${prefix}/`;
    const path = isolationLockPath({ prefix, root });
    let file: Deno.FsFile;
    try {
      Deno.mkdirSync(ISOLATION_BASE, { recursive: true });
      // Owner-only: another user must not take or read the session's lock.
      file = Deno.openSync(path, {
        read: true,
        write: true,
        createNew: true,
        mode: 0o600,
      });
    } catch (e) {
      lastError = e;
      if (e instanceof Deno.errors.AlreadyExists) continue;
      break;
    }
    // Between createNew and the lock a sweeper can take the unlocked file
    // and unlink it: then the check fails and we start over elsewhere.
    if (!lockIfCurrent(file, path, false)) {
      file.close();
      continue;
    }
    const lock = new IsolationLock(path, file);
    try {
      // Owner-only: the root holds the control socket, the runner specs and
      // iceoryx2's service files, none of them for another user.
      Deno.mkdirSync(root, { recursive: true, mode: 0o700 });
    } catch (e) {
      lock.release();
      removeIsolation({ prefix, root });
      throw new ChannelError(
        `Cannot create the isolation root ${root}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    return { prefix, root, lock };
  }
  throw new ChannelError(
    `Cannot create an isolation lock file in ${ISOLATION_BASE}: ${
      lastError instanceof Error
        ? lastError.message
        : "sweepers took every new one"
    }`,
    { cause: lastError },
  );
}

/**
 * Holds a shared lock on an isolation someone else made, so sweepers leave
 * it alone while this process uses it (for example a second context on a
 * session's isolation).
 *
 * @param isolation The isolation.
 * @returns The lock, or null when the isolation has no lock file (a version
 * before lock files) or is being or was removed.
 *
 * @example
 * ```ts
 * import { holdIsolation } from "@remotemedia/multiprocess/isolation";
 * console.log(holdIsolation({ prefix: "rmp1x00000000_", root: "/nonexistent/" })); // null
 * ```
 */
export function holdIsolation(isolation: Isolation): IsolationLock | null {
  const path = isolationLockPath(isolation);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch {
    return null;
  }
  if (!lockIfCurrent(file, path, false)) {
    file.close();
    return null;
  }
  return new IsolationLock(path, file);
}

/** The exclusive lock of `path`, or null while anyone holds it. */
function claim(path: string): Deno.FsFile | null {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch {
    return null;
  }
  if (lockIfCurrent(file, path, true)) return file;
  file.close();
  return null;
}

function shmNames(prefixes?: Set<string>): Map<string, string[]> {
  const byPrefix = new Map<string, string[]>();
  try {
    for (const entry of Deno.readDirSync(SHM_DIR)) {
      const prefix = PREFIX_PATTERN.exec(entry.name)?.[0];
      if (!prefix || (prefixes && !prefixes.has(prefix))) continue;
      const names = byPrefix.get(prefix) ?? [];
      names.push(entry.name);
      byPrefix.set(prefix, names);
    }
  } catch { /* no /dev/shm: nothing there */ }
  return byPrefix;
}

/** Removes shared memory, then the root: the files a lock protects. */
function removeFiles(isolation: Isolation, shm?: string[]): number {
  let removed = 0;
  let names = shm;
  if (!names) {
    names = [];
    try {
      for (const entry of Deno.readDirSync(SHM_DIR)) {
        if (entry.name.startsWith(isolation.prefix)) names.push(entry.name);
      }
    } catch { /* no /dev/shm */ }
  }
  for (const name of names) {
    try {
      Deno.removeSync(`${SHM_DIR}/${name}`);
      removed++;
    } catch { /* already gone */ }
  }
  try {
    Deno.removeSync(isolation.root, { recursive: true });
    removed++;
  } catch { /* already gone */ }
  return removed;
}

/** Removes the files, then unlinks the lock file while still holding it. */
function removeLocked(isolation: Isolation, release: () => void): number {
  let removed = removeFiles(isolation);
  try {
    Deno.removeSync(isolationLockPath(isolation));
    removed++;
  } catch { /* already gone */ }
  release();
  return removed;
}

/**
 * Lists what an isolation has left on disk: shared-memory files, the lock
 * file and the root folder's entries (recursively).
 *
 * @param isolation The isolation to inspect.
 * @returns Absolute paths; empty when nothing is left.
 *
 * @example
 * ```ts
 * import { leftovers } from "@remotemedia/multiprocess/isolation";
 * console.log(leftovers({ prefix: "rmp1x00000000_", root: "/nonexistent/" })); // []
 * ```
 */
export function leftovers(isolation: Isolation): string[] {
  const found: string[] = [];
  try {
    for (const entry of Deno.readDirSync(SHM_DIR)) {
      if (entry.name.startsWith(isolation.prefix)) {
        found.push(`${SHM_DIR}/${entry.name}`);
      }
    }
  } catch { /* no /dev/shm: nothing there */ }
  try {
    Deno.lstatSync(isolationLockPath(isolation));
    found.push(isolationLockPath(isolation));
  } catch { /* no lock file */ }
  const walk = (dir: string) => {
    let entries: Iterable<Deno.DirEntry>;
    try {
      entries = Deno.readDirSync(dir);
    } catch {
      return;
    }
    found.push(dir);
    for (const entry of entries) {
      const path = `${dir.replace(/\/$/, "")}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else found.push(path);
    }
  };
  walk(isolation.root);
  return found;
}

/**
 * Removes every file of an isolation (its shared memory, its root folder,
 * then its lock file), unless another process still holds its lock: then it
 * only releases this process's lock and leaves the files to a later sweep.
 * Call it once every process of the session has exited.
 *
 * @param isolation The isolation to remove (with its lock when this process
 * made it with {@linkcode newIsolation}).
 * @returns True when the files were removed, false when another process
 * still holds the lock.
 *
 * @example
 * ```ts
 * import { newIsolation, removeIsolation } from "@remotemedia/multiprocess/isolation";
 * console.log(removeIsolation(newIsolation())); // true
 * ```
 */
export function removeIsolation(isolation: Isolation): boolean {
  const own = (isolation as Partial<LockedIsolation>).lock;
  if (own instanceof IsolationLock && own.held) {
    // Another holder (a runner still alive) keeps the files; a sweep
    // removes them once it is gone.
    if (!own.tryExclusive()) {
      own.release();
      return false;
    }
    removeLocked(isolation, () => own.release());
    return true;
  }
  const path = isolationLockPath(isolation);
  const file = claim(path);
  if (file) {
    removeLocked(isolation, () => file.close());
    return true;
  }
  try {
    Deno.lstatSync(path);
    return false; // locked by a live process
  } catch { /* no lock file: nothing to ask */ }
  removeFiles(isolation);
  return true;
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch (e) {
    // Not allowed to look: assume alive, never remove what may be live.
    return e instanceof Deno.errors.NotCapable;
  }
}

function olderThan(path: string, ms: number): boolean {
  try {
    const mtime = Deno.lstatSync(path).mtime;
    return mtime !== null && Date.now() - mtime.getTime() > ms;
  } catch {
    return true; // gone
  }
}

/** Options of {@linkcode sweepStaleIsolations}. */
export interface SweepOptions {
  /**
   * Look only at these prefixes (tests use this to stay inside their own
   * isolations).
   * @default {every isolation under /tmp/rmp and /dev/shm}
   */
  prefixes?: Iterable<string>;
}

/**
 * Removes the isolations no live process holds (for example after a kill -9
 * of the owner and its runners). Liveness comes only from the lock file: a
 * sweeper removes an isolation's shared memory, root and lock file only
 * while it holds the exclusive lock. Files without a lock file are removed
 * once older than {@linkcode UNLOCKED_GRACE_MS} and the PID in their name is
 * gone. Runs whenever a channel context is created.
 *
 * @param options Which isolations to look at.
 * @returns How many files and folders were removed.
 *
 * @example
 * ```ts
 * import { sweepStaleIsolations } from "@remotemedia/multiprocess/isolation";
 * console.log(sweepStaleIsolations({ prefixes: ["rmp1x00000000_"] })); // 0
 * ```
 */
export function sweepStaleIsolations(options: SweepOptions = {}): number {
  const only = options.prefixes ? new Set(options.prefixes) : undefined;
  const locked = new Set<string>();
  const roots = new Set<string>();
  try {
    for (const entry of Deno.readDirSync(ISOLATION_BASE)) {
      const prefix = PREFIX_PATTERN.exec(entry.name)?.[0];
      if (!prefix || (only && !only.has(prefix))) continue;
      if (entry.isFile && entry.name === `${prefix}${ISOLATION_LOCK_SUFFIX}`) {
        locked.add(prefix);
      } else if (entry.isDirectory && entry.name === prefix) roots.add(prefix);
    }
  } catch { /* no base folder */ }
  const claimed = new Map<string, Deno.FsFile>();
  for (const prefix of locked) {
    const file = claim(`${ISOLATION_BASE}/${prefix}${ISOLATION_LOCK_SUFFIX}`);
    if (file) claimed.set(prefix, file);
  }
  // Listed after claiming, so shared memory made before the owner died is
  // all seen; nothing can add to a claimed isolation.
  const shm = shmNames(only);
  let removed = 0;
  for (const [prefix, file] of claimed) {
    const isolation = { prefix, root: `${ISOLATION_BASE}/${prefix}/` };
    removed += removeFiles(isolation, shm.get(prefix) ?? []);
    try {
      Deno.removeSync(isolationLockPath(isolation));
      removed++;
    } catch { /* already gone */ }
    file.close();
  }
  const unlocked = new Set([...roots, ...shm.keys()]);
  for (const prefix of unlocked) {
    if (locked.has(prefix)) continue;
    const root = `${ISOLATION_BASE}/${prefix}/`;
    const names = shm.get(prefix) ?? [];
    const pid = Number(/^rmp(\d+)x/.exec(prefix)![1]);
    if (pidAlive(pid)) continue;
    const paths = [root, ...names.map((n) => `${SHM_DIR}/${n}`)];
    if (!paths.every((p) => olderThan(p, UNLOCKED_GRACE_MS))) continue;
    // A lock file made since the listing means a live, new isolation.
    try {
      Deno.lstatSync(isolationLockPath({ prefix, root }));
      continue;
    } catch { /* still none */ }
    removed += removeFiles({ prefix, root }, names);
  }
  return removed;
}

/**
 * The environment variables that hand an isolation to a Python process.
 *
 * @param isolation The isolation to pass on.
 * @returns `RMP_IOX2_PREFIX` and `RMP_IOX2_ROOT`.
 *
 * @example
 * ```ts
 * import { isolationEnv } from "@remotemedia/multiprocess/isolation";
 * console.log(Object.keys(isolationEnv({ prefix: "p_", root: "/tmp/rmp/p_/" })));
 * ```
 */
export function isolationEnv(isolation: Isolation): Record<string, string> {
  return {
    [ISOLATION_ENV_PREFIX]: isolation.prefix,
    [ISOLATION_ENV_ROOT]: isolation.root,
  };
}

/**
 * Makes iceoryx2's global management segment of `isolation`
 * (`/dev/shm/<prefix>*.global_mgmt`) owner-only. iceoryx2 creates it
 * readable and writable by everyone (for domains shared between users); a
 * session's domain is one user's, so nobody else may touch its node counter.
 * Without the permission to list /dev/shm it does nothing.
 *
 * @param isolation The isolation whose segment to restrict.
 *
 * @example
 * ```ts ignore
 * restrictGlobalSegment(ctx.isolation);
 * ```
 */
export function restrictGlobalSegment(isolation: Isolation): void {
  try {
    for (const entry of Deno.readDirSync(SHM_DIR)) {
      if (
        entry.name.startsWith(isolation.prefix) &&
        entry.name.endsWith(".global_mgmt")
      ) {
        Deno.chmodSync(`${SHM_DIR}/${entry.name}`, 0o600);
      }
    }
  } catch { /* not listable (no -A) or gone: nothing to restrict */ }
}
