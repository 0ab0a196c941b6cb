/**
 * Isolation of iceoryx2 resources: every session (and every test) gets its
 * own iceoryx2 prefix and root path, so parallel runs never see each other,
 * and everything a session created can be removed, even after a crash.
 *
 * Names: prefix `rmp<PID>x<8 hex>_`, root `/tmp/rmp/<prefix>/`, shared memory
 * `/dev/shm/<prefix>*`, where PID is the process that owns the session.
 *
 * @module
 */

/** The iceoryx2 prefix and root path of one session. */
export interface Isolation {
  /** The iceoryx2 `global.prefix`, e.g. `rmp1234x0badf00d_`. */
  readonly prefix: string;
  /** The iceoryx2 `global.root_path`, with a trailing slash. */
  readonly root: string;
}

/** The folder that holds every session's root path. */
export const ISOLATION_BASE = "/tmp/rmp";
const SHM_DIR = "/dev/shm";
const NAME_PATTERN = /^rmp(\d+)x[0-9a-f]{8}_/;

/**
 * A new, unique isolation owned by this process.
 *
 * @example
 * ```ts
 * import { newIsolation } from "@remotemedia/multiprocess/isolation";
 * const iso = newIsolation();
 * console.log(iso.prefix.startsWith(`rmp${Deno.pid}x`)); // true
 * ```
 */
export function newIsolation(): Isolation {
  const random = crypto.getRandomValues(new Uint8Array(4));
  const hex = Array.from(random, (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
  const prefix = `rmp${Deno.pid}x${hex}_`;
  return { prefix, root: `${ISOLATION_BASE}/${prefix}/` };
}

/**
 * The environment variables that hand an isolation to a Python process.
 *
 * @param isolation The isolation to pass on.
 * @returns `RMP_IOX2_PREFIX` and `RMP_IOX2_ROOT`.
 *
 * @example
 * ```ts
 * import { isolationEnv, newIsolation } from "@remotemedia/multiprocess/isolation";
 * console.log(Object.keys(isolationEnv(newIsolation())));
 * ```
 */
export function isolationEnv(isolation: Isolation): Record<string, string> {
  return {
    RMP_IOX2_PREFIX: isolation.prefix,
    RMP_IOX2_ROOT: isolation.root,
  };
}

/**
 * Lists what an isolation has left on disk: shared-memory files and the
 * root folder's entries (recursively).
 *
 * @param isolation The isolation to inspect.
 * @returns Absolute paths; empty when nothing is left.
 *
 * @example
 * ```ts
 * import { leftovers, newIsolation } from "@remotemedia/multiprocess/isolation";
 * console.log(leftovers(newIsolation())); // []
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
 * Removes every file of an isolation: its shared memory and its root folder.
 * Call it once every process of the session has exited.
 *
 * @param isolation The isolation to remove.
 *
 * @example
 * ```ts
 * import { newIsolation, removeIsolation } from "@remotemedia/multiprocess/isolation";
 * removeIsolation(newIsolation());
 * ```
 */
export function removeIsolation(isolation: Isolation): void {
  try {
    for (const entry of Deno.readDirSync(SHM_DIR)) {
      if (entry.name.startsWith(isolation.prefix)) {
        try {
          Deno.removeSync(`${SHM_DIR}/${entry.name}`);
        } catch { /* already gone */ }
      }
    }
  } catch { /* no /dev/shm */ }
  try {
    Deno.removeSync(isolation.root, { recursive: true });
  } catch { /* already gone */ }
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the isolations of processes that are no longer alive (for example
 * after a kill -9). Runs whenever channels are created.
 *
 * @returns How many files and folders were removed.
 *
 * @example
 * ```ts
 * import { sweepStaleIsolations } from "@remotemedia/multiprocess/isolation";
 * console.log(sweepStaleIsolations() >= 0); // true
 * ```
 */
export function sweepStaleIsolations(): number {
  let removed = 0;
  const sweep = (dir: string, recursive: boolean) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const entry of entries) {
      const match = NAME_PATTERN.exec(entry.name);
      if (!match || pidAlive(Number(match[1]))) continue;
      try {
        Deno.removeSync(`${dir}/${entry.name}`, { recursive });
        removed++;
      } catch { /* raced with another sweeper */ }
    }
  };
  sweep(SHM_DIR, false);
  sweep(ISOLATION_BASE, true);
  return removed;
}
