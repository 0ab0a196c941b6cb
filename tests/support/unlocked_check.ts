/**
 * For isolation_test.ts, inside a private mount namespace (private tmpfs on
 * /dev/shm and /tmp/rmp): files without a lock file go only when older than
 * the grace period and the PID in their name is gone.
 *
 * `deno run -A unlocked_check.ts Deno|Python` prints one JSON line:
 * `{young, old, left, expected}`, the counts the sweeper removed before and
 * after the files aged, and what was left.
 *
 * @module
 */
import {
  sweepStaleIsolations,
  UNLOCKED_GRACE_MS,
} from "../../data/isolation.ts";

const python = new URL("../../.venv/bin/python", import.meta.url).pathname;
const sweeper = Deno.args[0];

async function sweep(prefixes: string[]): Promise<number> {
  if (sweeper === "Deno") return sweepStaleIsolations({ prefixes });
  const out = await new Deno.Command(python, {
    args: [
      "-c",
      "import sys; from remotemedia_multiprocess._iox import sweep_stale; " +
      "print(sweep_stale(prefixes=sys.argv[1:]))",
      ...prefixes,
    ],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`The Python sweeper exited ${out.code}`);
  return Number(new TextDecoder().decode(out.stdout));
}

const child = new Deno.Command("true").spawn();
await child.status;
const dead = child.pid;
const stale = `rmp${dead}x0badf00d_`;
const livePid = `rmp${Deno.pid}x0badf00d_`;
// Python's former pattern (^rmp(\d+)x) took this one too.
const notOurs = `rmp${dead}xnothex00_`;
const prefixes = [stale, livePid, notOurs];
const made = prefixes.flatMap((p) => {
  const shm = `/dev/shm/${p}seg`;
  const root = `/tmp/rmp/${p}/`;
  Deno.writeFileSync(shm, new Uint8Array(1));
  Deno.mkdirSync(root, { recursive: true });
  Deno.writeFileSync(`${root}f`, new Uint8Array(1));
  return [shm, root];
});
const exists = (p: string) => {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};
const young = await sweep(prefixes);
const old = new Date(Date.now() - UNLOCKED_GRACE_MS - 5000);
for (const path of made) Deno.utimeSync(path, old, old);
const aged = await sweep(prefixes);
console.log(JSON.stringify({
  young,
  old: aged,
  left: made.filter(exists),
  expected: made.filter((p) => !p.includes(stale)),
}));
