/**
 * `deno task bench:wake [--json]`: how much of a hop is the wake-up itself.
 *
 * Deno runs pinned to vCPU 0; the Python peer runs pinned to the same vCPU,
 * then to the other one. Rows: the floor (1-byte Unix socket ping-pong) and
 * the raw channel round trip at 64 B (bench/hops.ts), p50/p95/p99 in µs.
 * With both on one vCPU nothing idles, so the round trip is the CPU work of
 * the two processes plus context switches; on two vCPUs each hop also waits
 * for the other vCPU to wake up (on a VM whose idle vCPUs halt, that wake is
 * an inter-processor interrupt through the hypervisor).
 *
 * Needs `taskset` and at least 2 CPUs; otherwise it says so and exits 0.
 *
 * @module
 */
import { floorRoundTrips, pct, shmRoundTrips } from "./hops.ts";

const json = Deno.args.includes("--json");

async function hasTaskset(): Promise<boolean> {
  try {
    return (await new Deno.Command("taskset", { args: ["-V"] }).output())
      .success;
  } catch {
    return false;
  }
}

if (!Deno.args.includes("--pinned")) {
  if (navigator.hardwareConcurrency < 2 || !(await hasTaskset())) {
    console.log("wake probe: needs taskset and 2 CPUs; skipped");
    Deno.exit(0);
  }
  // Re-run this script with Deno itself pinned to vCPU 0.
  const { code } = await new Deno.Command("taskset", {
    args: [
      "-c",
      "0",
      Deno.execPath(),
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--pinned",
      ...Deno.args,
    ],
  }).spawn().status;
  Deno.exit(code);
}

const SHM_ITERATIONS = 1000;
for (const [placement, cpu] of [["same_vcpu", "0"], ["other_vcpu", "1"]]) {
  const launcher = ["taskset", "-c", cpu];
  const floor = await floorRoundTrips(launcher);
  const { roundtrip } = await shmRoundTrips([64], SHM_ITERATIONS, launcher);
  for (
    const [transport, us] of [["floor", floor], [
      "shm",
      roundtrip.get(64)!,
    ]] as const
  ) {
    const r = {
      bench: "wake_probe",
      placement,
      transport,
      direction: "roundtrip",
      bytes: transport === "floor" ? 1 : 64,
      p50_us: +pct(us, 50).toFixed(1),
      p95_us: +pct(us, 95).toFixed(1),
      p99_us: +pct(us, 99).toFixed(1),
    };
    console.log(
      json
        ? JSON.stringify(r)
        : `${placement.padEnd(10)} ${
          transport.padEnd(5)
        } RT p50 / p95 / p99: ${r.p50_us} / ${r.p95_us} / ${r.p99_us} µs`,
    );
  }
}
