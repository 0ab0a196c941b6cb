/**
 * The contract every reliability scenario follows, and what they share:
 * counting the processes and shared-memory files a run left behind.
 *
 * @module
 */
import v8 from "node:v8";
import vm from "node:vm";

/** One row of the reliability table (and one `--json` object). */
export interface ScenarioResult {
  /** Scenario name, e.g. `crash_torture`. */
  scenario: string;
  /** How many runs (cases, sessions) it made. */
  runs: number;
  /** How many of those met every check. */
  passed: number;
  /** Crash (or problem) detection latency, median, when it applies. */
  detect_p50_ms: number | null;
  /** Detection latency, 95th percentile, when it applies. */
  detect_p95_ms: number | null;
  /** Processes of the scenario still alive after it ended. */
  procs_left: number;
  /** Shared-memory and iceoryx2 files of its sessions still present after it ended. */
  shm_left: number;
  /** Growth of this Deno process's RSS over the scenario (after warm-up), MiB. */
  rss_growth_mb: number | null;
  /** What failed, one line per failed run (printed, not part of `--json`). */
  failures: string[];
  /** Extra figures of the scenario (printed under the table, and in `--json` as `extra`). */
  extra?: Record<string, number | string>;
}

/** What `reliability/main.ts` hands each scenario. */
export interface ScenarioOptions {
  /** The long run (`--full`), else the CI-sized one. */
  full: boolean;
  /** The checkout root, with a trailing slash. */
  root: string;
  /** The checkout venv's Python. */
  python: string;
  /** Prints a progress line (to stderr). */
  log: (line: string) => void;
}

/** A scenario: runs and returns its rows (usually one). */
export type Scenario = (options: ScenarioOptions) => Promise<ScenarioResult[]>;

/** The `p`th percentile of `xs` (nearest rank), or null when empty. */
export function percentile(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

function readOr(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** Every live (non-zombie) process id with its parent id. */
function processTable(): Map<number, number> {
  const table = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = readOr(`/proc/${entry.name}/stat`);
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (rest.length < 2 || rest[0] === "Z") continue;
    table.set(Number(entry.name), Number(rest[1]));
  }
  return table;
}

/** Live descendants of `pid` (default: this process). */
export function descendants(pid: number = Deno.pid): number[] {
  const table = processTable();
  const out: number[] = [];
  const frontier = [pid];
  while (frontier.length) {
    const parent = frontier.pop()!;
    for (const [child, ppid] of table) {
      if (ppid === parent) {
        out.push(child);
        frontier.push(child);
      }
    }
  }
  return out;
}

/**
 * Live processes that hold a descriptor of any isolation named by `prefixes`
 * (its lock file, root or shared memory): runners that escaped the process
 * tree (their fork server died) are found here.
 */
export function processesUsing(prefixes: Iterable<string>): number[] {
  const wanted = [...prefixes];
  if (wanted.length === 0) return [];
  const found: number[] = [];
  for (const pid of processTable().keys()) {
    if (pid === Deno.pid) continue;
    let fds: Deno.DirEntry[];
    try {
      fds = [...Deno.readDirSync(`/proc/${pid}/fd`)];
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target = "";
      try {
        target = Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`);
      } catch {
        continue;
      }
      if (
        wanted.some((p) =>
          target.startsWith(`/tmp/rmp/${p}`) ||
          target.startsWith(`/dev/shm/${p}`)
        )
      ) {
        found.push(pid);
        break;
      }
    }
  }
  return found;
}

/**
 * Files of the isolations named by `prefixes` that still exist: shared memory
 * in /dev/shm, the iceoryx2 root and the lock file under /tmp/rmp.
 */
export function filesLeft(prefixes: Iterable<string>): string[] {
  const wanted = [...prefixes];
  if (wanted.length === 0) return [];
  const left: string[] = [];
  for (const dir of ["/dev/shm", "/tmp/rmp"]) {
    let entries: Deno.DirEntry[] = [];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch { /* absent: nothing left */ }
    for (const e of entries) {
      if (wanted.some((p) => e.name.startsWith(p))) {
        left.push(`${dir}/${e.name}`);
      }
    }
  }
  return left;
}

/**
 * A full garbage collection (V8's `gc`, exposed at run time): RSS sampled
 * after it follows leaks, not the young generation's growth.
 */
export function fullGc(): () => void {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

/** This process's resident memory, MiB. */
export function rssMb(): number {
  return Deno.memoryUsage().rss / (1024 * 1024);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 20 ms until it is true or `ms` passed; returns its last answer. */
export async function until(
  check: () => boolean,
  ms: number,
): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (true) {
    if (check()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(20);
  }
}
