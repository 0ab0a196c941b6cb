/**
 * Does a `remotemedia tap` slow the pipeline it watches? A/B in one run,
 * interleaved in both orders (ABBA...): `remotemedia run` of a two-echo
 * pipeline fed N JSON messages at full speed, with and without a tap on the
 * middle channel (`a.out`, attached as soon as the session answers). The
 * figure is the run's send-to-drain time, taken from the `--json` events:
 * the first `status` event (every node ready) to the last `output` event.
 * Every wait is bounded (a run over 120 s fails the bench).
 *
 * Usage: deno run -A bench/cli_tap_report.ts [messages=20000] [rounds=4]
 * (each round runs the three arms, rotated: none, a printing tap, `--hz`)
 *
 * @module
 */
const root = new URL("..", import.meta.url).pathname;
const cli = `${root}cli.ts`;
const messages = Number(Deno.args[0] ?? 20000);
const pairs = Number(Deno.args[1] ?? 4);

const input = await Deno.makeTempFile({ suffix: ".jsonl" });
await Deno.writeTextFile(
  input,
  Array.from({ length: messages }, (_, i) => JSON.stringify({ i })).join("\n") +
    "\n",
);

/** No tap, a tap printing every message, a tap printing the rate. */
type Arm = "plain" | "tap" | "hz";

async function sessionOf(pid: number): Promise<string | undefined> {
  const out = await new Deno.Command("deno", {
    args: ["run", "-A", cli, "inspect", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const all = JSON.parse(new TextDecoder().decode(out.stdout));
  return all.find((s: { pid: number }) => s.pid === pid)?.sessionId;
}

async function trial(
  tap: Arm,
): Promise<{ ms: number; tapped: number }> {
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "-A",
      cli,
      "run",
      `${root}tests/fixtures/cli/echo2.toml`,
      "--input",
      `in=${input}`,
      "--json",
    ],
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(120_000),
  }).spawn();
  let tapChild: Deno.ChildProcess | undefined;
  let tapOut: Promise<Deno.CommandOutput> | undefined;
  if (tap !== "plain") {
    for (let i = 0; i < 200 && !tapChild; i++) {
      const id = await sessionOf(child.pid);
      if (id) {
        tapChild = new Deno.Command("deno", {
          args: [
            "run",
            "-A",
            cli,
            "tap",
            id,
            "a.out",
            "--json",
            ...(tap === "hz" ? ["--hz"] : []),
          ],
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(120_000),
        }).spawn();
        tapOut = tapChild.output();
      } else await new Promise((r) => setTimeout(r, 20));
    }
    if (!tapChild) throw new Error("The session never answered");
  }
  const out = await child.output();
  if (!out.success) throw new Error(`The run failed (${out.code})`);
  const events = new TextDecoder().decode(out.stdout).trim().split("\n")
    .map((l) => JSON.parse(l));
  const ready = events.find((e) => e.event === "status").t;
  const outputs = events.filter((e) => e.event === "output");
  if (outputs.length !== messages) {
    throw new Error(`Lost messages: ${outputs.length} of ${messages}`);
  }
  let tapped = 0;
  if (tapOut) {
    const t = await tapOut;
    tapped = new TextDecoder().decode(t.stdout).trim().split("\n")
      .filter(Boolean).length;
  }
  return { ms: outputs.at(-1).t - ready, tapped };
}

const results: Record<Arm, number[]> = { plain: [], tap: [], hz: [] };
let tappedTotal = 0;
// Rotated so each arm runs first, second and third equally often.
const arms: Arm[] = ["plain", "tap", "hz"];
for (let i = 0; i < pairs; i++) {
  for (let j = 0; j < arms.length; j++) {
    const arm = arms[(i + j) % arms.length];
    const r = await trial(arm);
    results[arm].push(r.ms);
    if (arm === "tap") tappedTotal += r.tapped;
    console.error(`${arm.padEnd(5)} ${r.ms} ms`);
  }
}
const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
for (const [name, xs] of Object.entries(results)) {
  console.log(
    `${name.padEnd(5)} n=${xs.length} median ${q(xs, 0.5)} ms  min ${
      Math.min(...xs)
    }  max ${Math.max(...xs)}  (${messages} messages; ${
      Math.round(messages / (q(xs, 0.5) / 1000))
    } msg/s)`,
  );
}
console.log(`tap lines printed in total: ${tappedTotal}`);
await Deno.remove(input);
