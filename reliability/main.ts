/**
 * `deno task reliability [--full] [--json] [--only NAME,...]`: the reliability
 * suite. Every scenario runs real node processes on real shared memory and
 * reports one table row (or `--json` object): runs, passed, detection latency,
 * processes and shared-memory files left, RSS growth. The default is the
 * CI-sized run; `--full` is the long one (see README "Reliability").
 * Ends with the plain line `N passed, M failed` counted in runs (with
 * `--count-rows`, in rows: `deno task test` counts each row as one test), and
 * exits 1 when any run failed or anything was left.
 *
 * @module
 */
import type { Scenario, ScenarioOptions, ScenarioResult } from "./_scenario.ts";

/** Scenario name -> its module, in the order they run. */
const SCENARIOS: Array<[string, () => Promise<{ scenario: Scenario }>]> = [
  ["crash", () => import("./crash.ts")],
  ["crash_restart", () => import("./restart.ts")],
  ["load", () => import("./load.ts")],
  ["backpressure", () => import("./backpressure.ts")],
  ["bad_input", () => import("./bad_input.ts")],
  ["isolation", () => import("./isolation.ts")],
  ["soak", () => import("./soak.ts")],
];

const args = Deno.args;
const json = args.includes("--json");
const full = args.includes("--full");
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? new Set(args[onlyAt + 1]?.split(",")) : undefined;
const root = new URL("../", import.meta.url).pathname;
const options: ScenarioOptions = {
  full,
  root,
  python: `${root}.venv/bin/python`,
  log: (line) => console.error(`reliability: ${line}`),
};

const rows: ScenarioResult[] = [];
for (const [name, load] of SCENARIOS) {
  if (only && !only.has(name)) continue;
  options.log(`${name}: starting (${full ? "full" : "CI-sized"})`);
  const started = performance.now();
  try {
    const { scenario } = await load();
    rows.push(...await scenario(options));
  } catch (e) {
    rows.push({
      scenario: name,
      runs: 1,
      passed: 0,
      detect_p50_ms: null,
      detect_p95_ms: null,
      procs_left: 0,
      shm_left: 0,
      rss_growth_mb: null,
      failures: [`the scenario itself threw: ${(e as Error).stack ?? e}`],
    });
  }
  options.log(
    `${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

const fmt = (x: number | null, digits = 1) =>
  x === null ? "-" : x.toFixed(digits);
if (json) {
  for (const r of rows) {
    console.log(JSON.stringify({
      scenario: r.scenario,
      runs: r.runs,
      passed: r.passed,
      detect_p50_ms: r.detect_p50_ms,
      detect_p95_ms: r.detect_p95_ms,
      procs_left: r.procs_left,
      shm_left: r.shm_left,
      rss_growth_mb: r.rss_growth_mb,
      ...(r.extra ? { extra: r.extra } : {}),
    }));
  }
} else {
  const header = [
    "scenario",
    "runs",
    "passed",
    "detect p50 ms",
    "detect p95 ms",
    "procs left",
    "shm left",
    "RSS growth MiB",
  ];
  const table = rows.map((r) => [
    r.scenario,
    String(r.runs),
    String(r.passed),
    fmt(r.detect_p50_ms),
    fmt(r.detect_p95_ms),
    String(r.procs_left),
    String(r.shm_left),
    fmt(r.rss_growth_mb),
  ]);
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map(() => "---").join("|")}|`);
  for (const line of table) console.log(`| ${line.join(" | ")} |`);
  for (const r of rows) {
    for (const [k, v] of Object.entries(r.extra ?? {})) {
      console.log(`${r.scenario}: ${k} = ${v}`);
    }
  }
}
for (const r of rows) {
  for (const f of r.failures) console.error(`FAILED ${r.scenario}: ${f}`);
}
const passed = rows.reduce((n, r) => n + r.passed, 0);
const runs = rows.reduce((n, r) => n + r.runs, 0);
const clean = rows.every((r) => r.procs_left === 0 && r.shm_left === 0);
if (args.includes("--count-rows")) {
  // For `deno task test`: one count per row (a soak's hundreds of sessions
  // are one test), a row passing when every run did and nothing was left.
  const good = rows.filter((r) =>
    r.passed === r.runs && r.procs_left === 0 && r.shm_left === 0
  ).length;
  console.log(`${good} passed, ${rows.length - good} failed`);
} else {
  console.log(`${passed} passed, ${runs - passed} failed`);
}
Deno.exit(passed === runs && clean ? 0 : 1);
