/**
 * Reliability scenario 4, soak (issue 13): for N minutes (CI 2, full 60;
 * `RMP_SOAK_SECONDS` overrides) one executor creates a session of two
 * checking nodes (`load_check`), streams 300 numbered, checksummed messages
 * (1 B to 64 KiB, log-uniform, seeded; `RMP_SOAK_SEED`) and closes it, again
 * and again. Each session is a run: it passes when its stream arrives whole
 * and nothing of it is left after close.
 *
 * After a warm-up (the first 20 % of the time) it samples, after each close
 * and a full garbage collection, this Deno process's RSS and JS heap in use
 * (without the collection, RSS follows V8's young generation and the
 * payload copies awaiting collection: measured here, 67 -> 159 MiB over 2000
 * sessions with the used heap flat at 8 MiB after GC, versus 69 -> 72 MiB
 * over 500 sessions with a collection after each), and, while each session streams, the number and
 * total size of this process's /dev/shm files and /tmp/rmp entries (every
 * name that starts with `rmp<pid>x`, the prefix of its isolations). Growth is
 * the median of the last 20 % of samples minus the median of the first 20 %
 * after warm-up (medians: one GC more or less is not growth). One more run,
 * the flatness check, fails when RSS grew more than 10 MiB (full: 30), when the shared
 * memory of a live session grew at all, or when files of closed sessions are
 * left.
 *
 * @module
 */
import type { Scenario, ScenarioResult } from "./_scenario.ts";
import {
  descendants,
  filesLeft,
  fullGc,
  percentile,
  processesUsing,
  rssMb,
  until,
} from "./_scenario.ts";
import {
  chain,
  listenErrors,
  loadExecutor,
  loadModules,
  logUniformSizes,
  randomPool,
  rmpEntries,
  rng,
  shmUsage,
  streamOnce,
} from "./_stream.ts";

const MAX_SIZE = 64 * 1024 - 128; // chunks grow to 64 KiB, never beyond
const MESSAGES = 300;

const WARMUP = 0.2;
const WAIT_MS = 30_000;

/** Median of the first and of the last fifth of `xs`. */
function growth(xs: number[]): number | null {
  if (xs.length < 5) return null;
  const k = Math.max(1, Math.floor(xs.length / 5));
  return percentile(xs.slice(-k), 50)! - percentile(xs.slice(0, k), 50)!;
}

/** The soak scenario: row `soak`. */
export const scenario: Scenario = async (options) => {
  const seed = Number(
    Deno.env.get("RMP_SOAK_SEED") ?? Math.floor(Math.random() * 2 ** 31),
  );
  const seconds = Number(
    Deno.env.get("RMP_SOAK_SECONDS") ?? (options.full ? 3600 : 120),
  );
  options.log(
    `soak: seed ${seed} (rerun with RMP_SOAK_SEED=${seed}), ${seconds} s`,
  );
  // Measured: 1.2 MiB of growth in a clean CI-sized run; 10 MiB catches a
  // leak of ~30 KiB per session there.
  const rssBoundMb = options.full ? 30 : 10;
  const pool = randomPool(seed, MAX_SIZE);
  const mine = `rmp${Deno.pid}x`;
  const prefixes = new Set<string>();
  const failures: string[] = [];
  const gc = fullGc();
  const rss: number[] = [];
  const heap: number[] = [];
  const shmFiles: number[] = [];
  const shmBytes: number[] = [];
  const rmp: number[] = [];
  let sessions = 0;
  let passed = 0;
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let lastLog = 0;
  {
    await using executor = loadExecutor(options.python);
    while (elapsed() < seconds) {
      const index = sessions++;
      const warm = elapsed() >= seconds * WARMUP;
      const sessionSeed = (seed + index * 7919) >>> 0;
      const sizes = logUniformSizes(rng(sessionSeed), MESSAGES, MAX_SIZE);
      const heard = listenErrors();
      const problems: string[] = [];
      let prefix = "";
      try {
        await using session = await executor.createSession(
          chain(["load_check", "load_check"]),
          { ...loadModules(options.root), onError: heard.onError },
        );
        prefix = session.isolation.prefix;
        prefixes.add(prefix);
        await session.initialize();
        const { problems: p } = await streamOnce(
          session,
          sizes,
          pool,
          sessionSeed ^ 0x5a5a,
          WAIT_MS,
        );
        problems.push(...p);
        if (warm) {
          // The live session's files: the same every time when flat.
          const shm = shmUsage([mine]);
          shmFiles.push(shm.files);
          shmBytes.push(shm.bytes);
          rmp.push(rmpEntries([mine]));
        }
        if (session.failure) {
          problems.push(`the session failed: ${session.failure.message}`);
        }
      } catch (e) {
        problems.push(`the session threw: ${(e as Error).message}`);
      }
      problems.push(...heard.errors);
      const left = prefix ? filesLeft([prefix]) : [];
      if (left.length) problems.push(`files left: ${left.join(", ")}`);
      if (problems.length) {
        failures.push(
          `session ${index} (seed ${sessionSeed}): ${problems.join("; ")}`,
        );
      } else passed++;
      if (warm) {
        gc();
        rss.push(rssMb());
        heap.push(Deno.memoryUsage().heapUsed / 2 ** 20);
      }
      if (elapsed() - lastLog >= 30) {
        lastLog = elapsed();
        options.log(
          `soak: ${sessions} sessions in ${elapsed().toFixed(0)} s, RSS ${
            rssMb().toFixed(1)
          } MiB`,
        );
      }
    }
  }
  const rssGrowth = growth(rss);
  const heapGrowth = growth(heap);
  const filesGrowth = growth(shmFiles);
  const bytesGrowth = growth(shmBytes);
  const rmpGrowth = growth(rmp);
  await until(() => descendants().length === 0, 5000);
  const procs = new Set([...descendants(), ...processesUsing(prefixes)]);
  const left = filesLeft(prefixes);
  const flat: string[] = [];
  if (rssGrowth === null) flat.push(`too few sessions (${sessions}) to judge`);
  else if (rssGrowth > rssBoundMb) {
    flat.push(
      `Deno RSS grew ${
        rssGrowth.toFixed(1)
      } MiB after warm-up (bound ${rssBoundMb} MiB)`,
    );
  }
  if (
    (filesGrowth ?? 0) > 0 || (bytesGrowth ?? 0) > 0 || (rmpGrowth ?? 0) > 0
  ) {
    flat.push(
      `a live session's files grew: ${filesGrowth} /dev/shm files, ${bytesGrowth} B, ${rmpGrowth} /tmp/rmp entries`,
    );
  }
  if (left.length) flat.push(`files left: ${left.join(", ")}`);
  if (flat.length) failures.push(`flatness: ${flat.join("; ")}`);
  const row: ScenarioResult = {
    scenario: "soak",
    runs: sessions + 1,
    passed: passed + (flat.length ? 0 : 1),
    detect_p50_ms: null,
    detect_p95_ms: null,
    procs_left: procs.size,
    shm_left: left.length,
    rss_growth_mb: rssGrowth === null ? null : Number(rssGrowth.toFixed(1)),
    failures,
    extra: {
      seed,
      seconds: Number(elapsed().toFixed(0)),
      sessions,
      messages_per_session: MESSAGES,
      rss_first_mb: Number((rss[0] ?? 0).toFixed(1)),
      rss_last_mb: Number((rss.at(-1) ?? 0).toFixed(1)),
      heap_used_growth_mb: heapGrowth === null
        ? "-"
        : Number(heapGrowth.toFixed(2)),
      shm_files_growth: filesGrowth ?? "-",
      shm_bytes_growth: bytesGrowth ?? "-",
      rmp_entries_growth: rmpGrowth ?? "-",
      shm_files_live: shmFiles.at(-1) ?? "-",
      shm_bytes_live: shmBytes.at(-1) ?? "-",
    },
  };
  return [row];
};
