/**
 * The dora-rs peer of `bench:hops` (`dora_p2p`): the same paced node -> node
 * hop on dora-rs 1.1.0, a `dora run` of a two-node dataflow
 * (`bench/dora/source.py` -> `bench/dora/sink.py`, `send_output_raw`,
 * stamped when the source hands the message over and read when the sink
 * holds it as a numpy view).
 *
 * dora-rs is installed from PyPI into `.cache/bench-dora-venv` on first use
 * (the only download of the bench; `--no-dora` skips it).
 *
 * @module
 */

const root = new URL("../", import.meta.url).pathname;
/** The bench's own dora-rs venv. */
export const DORA_VENV = `${root}.cache/bench-dora-venv`;
/** What is installed into it. */
export const DORA_PACKAGES = [
  "dora-rs==1.1.0",
  "dora-rs-cli==1.1.0",
  "pyarrow",
  "numpy",
];

/** Options of {@linkcode doraHops}. */
export interface DoraHopsOptions {
  /** Measured messages per size. */
  iterations: number;
  /** Unmeasured messages first, per size. */
  warmup: number;
  /** The source's timer period in ms (at least 1: dora's timer). */
  gapMs: number;
  /** Keep pip and dora's output off stdout (for `--json`). @default {false} */
  quiet?: boolean;
  /** Bound on the whole run in ms. @default {60 s + 100 ms a message} */
  timeoutMs?: number;
}

async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; quiet: boolean },
): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdout: options.quiet ? "null" : "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${out.code})`);
  }
}

/**
 * Creates the venv and installs dora-rs once (idempotent: a marker file
 * records what was installed).
 *
 * @returns The venv's `dora` executable.
 */
export async function ensureDora(quiet = false): Promise<string> {
  const marker = `${DORA_VENV}/.installed`;
  const want = DORA_PACKAGES.join(" ");
  try {
    if ((await Deno.readTextFile(marker)).trim() === want) {
      return `${DORA_VENV}/bin/dora`;
    }
  } catch { /* not installed yet */ }
  const log = quiet ? () => {} : console.error;
  log(`bench:hops: installing ${want} into ${DORA_VENV}`);
  await run("python3", ["-m", "venv", DORA_VENV], { quiet: true });
  await run(`${DORA_VENV}/bin/python`, [
    "-m",
    "pip",
    "install",
    "-q",
    ...DORA_PACKAGES,
  ], { quiet: true });
  await Deno.writeTextFile(marker, want + "\n");
  return `${DORA_VENV}/bin/dora`;
}

/**
 * Latencies in µs of the dora-rs node -> node hop, per size.
 *
 * @param sizes Payload sizes in bytes.
 * @param options Counts and pacing.
 * @returns The measured latencies (warm-up dropped), per size.
 */
export async function doraHops(
  sizes: number[],
  options: DoraHopsOptions,
): Promise<Map<number, number[]>> {
  const { iterations, warmup, quiet = false } = options;
  const timeoutMs = options.timeoutMs ??
    60_000 + sizes.length * (iterations + warmup) * (options.gapMs + 100);
  const dora = await ensureDora(quiet);
  const dir = await Deno.makeTempDir({ prefix: "rmp-hops-dora-" });
  try {
    const count = iterations + warmup;
    const result = `${dir}/result.json`;
    // Ticks queue at most one deep, so they never crowd out an ack (a
    // dropped ack would stall the source). A 512 MB pool: with the default 8 MB one, messages above it go through
    // the daemon (and 64 MiB fails), see /work/shared/notes/peers.md.
    const yaml = `nodes:
  - id: source
    path: ${root}bench/dora/source.py
    inputs:
      tick:
        source: dora/timer/millis/${Math.max(1, Math.round(options.gapMs))}
        queue_size: 1
      ack:
        source: sink/ack
        queue_size: 64
    outputs:
      - data
    env:
      HOPS_SIZES: "${sizes.join(",")}"
      HOPS_COUNT: "${count}"
    shared_memory_pool_size: 512MB
  - id: sink
    path: ${root}bench/dora/sink.py
    inputs:
      data: source/data
    outputs:
      - ack
    env:
      HOPS_TOTAL: "${count * sizes.length}"
      HOPS_RESULT: "${result}"
`;
    await Deno.writeTextFile(`${dir}/dataflow.yml`, yaml);
    // dora's log goes to a file, shown when the run fails.
    const logPath = `${dir}/dora.log`;
    const log = await Deno.open(logPath, { write: true, create: true });
    const child = new Deno.Command("sh", {
      args: ["-c", `exec "$0" run dataflow.yml >"$1" 2>&1`, dora, logPath],
      cwd: dir,
      env: { PATH: `${DORA_VENV}/bin:${Deno.env.get("PATH") ?? ""}` },
      stdout: "null",
      stderr: "null",
    }).spawn();
    log.close();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }, timeoutMs);
    const status = await child.status;
    clearTimeout(timer);
    let parsed: { bytes: number[]; ns: number[] };
    try {
      parsed = JSON.parse(await Deno.readTextFile(result));
    } catch {
      const tail = (await Deno.readTextFile(logPath).catch(() => ""))
        .split("\n").filter((l) => !l.includes("Discarding event"))
        .slice(-30).join("\n");
      throw new Error(
        `dora run wrote no result (exit ${status.code}${
          status.signal ? `, ${status.signal}` : ""
        }); its log ends:\n${tail}`,
      );
    }
    if (parsed.ns.length !== count * sizes.length) {
      throw new Error(
        `dora: ${parsed.ns.length} of ${count * sizes.length} messages`,
      );
    }
    const out = new Map<number, number[]>();
    sizes.forEach((size, s) => {
      const us: number[] = [];
      for (let i = warmup; i < count; i++) {
        const k = s * count + i;
        if (parsed.bytes[k] !== size) {
          throw new Error(`dora: message ${k} has ${parsed.bytes[k]} bytes`);
        }
        us.push(parsed.ns[k] / 1000);
      }
      out.set(size, us);
    });
    return out;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
