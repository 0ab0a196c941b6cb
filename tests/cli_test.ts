/**
 * The `remotemedia` CLI, run as a real program (`deno run -A cli.ts`)
 * against real pipelines of the examples' and tests' nodes: every command,
 * the error paths' exit codes and messages, `--json` events, `inspect` and
 * `tap` from another process, Ctrl-C during start-up and mid-stream, and the
 * terminal display under tmux.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { type Isolation, leftovers } from "../data/isolation.ts";
import { decodeWav, encodeWav } from "../cli/_media_io.ts";

const root = new URL("..", import.meta.url).pathname;
const cli = `${root}cli.ts`;
const fixtures = `${root}tests/fixtures/cli`;
const examples = `${root}examples/nodes`;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<Result> {
  const out = await new Deno.Command("deno", {
    args: ["run", "-A", cli, ...args],
    cwd: options.cwd ?? root,
    stdin: "null",
    signal: AbortSignal.timeout(options.timeoutMs ?? 90_000),
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** A CLI program left running, its output collected as it comes. */
class Running {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  readonly done: Promise<Deno.CommandStatus>;

  constructor(args: string[]) {
    this.child = new Deno.Command("deno", {
      args: ["run", "-A", cli, ...args],
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (
      stream: ReadableStream<Uint8Array>,
      add: (s: string) => void,
    ) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        add(chunk);
      }
    };
    const reading = Promise.all([
      collect(this.child.stdout, (s) => this.stdout += s),
      collect(this.child.stderr, (s) => this.stderr += s),
    ]);
    this.done = reading.then(() => this.child.status);
  }

  events(): Record<string, unknown>[] {
    return this.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  }

  async until(
    what: string,
    test: () => boolean,
    timeoutMs = 60_000,
  ): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!test()) {
      if (Date.now() > end) {
        throw new Error(
          `Timed out waiting for ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
        );
      }
      await sleep(50);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !stat.split(") ")[1].startsWith("Z");
  } catch {
    return false;
  }
}

/** The session a CLI process owns, as `inspect --json` lists it. */
async function sessionOf(pid: number): Promise<
  { sessionId: string; isolation: Isolation; pids: number[] }
> {
  for (let i = 0; i < 100; i++) {
    const r = await run(["inspect", "--json"]);
    const all = JSON.parse(r.stdout) as {
      sessionId: string;
      pid: number;
      isolation: Isolation;
      nodes: { pid?: number }[];
    }[];
    const mine = all.find((s) => s.pid === pid);
    if (mine && mine.nodes.every((n) => n.pid !== undefined)) {
      return {
        sessionId: mine.sessionId,
        isolation: mine.isolation,
        pids: mine.nodes.map((n) => n.pid!),
      };
    }
    await sleep(100);
  }
  throw new Error(`No session of pid ${pid} found`);
}

const wavPaths = new Map<number, string>();
/** A 440 Hz tone at 48 kHz, 16-bit, of `seconds`. */
async function toneWav(seconds = 3): Promise<string> {
  const known = wavPaths.get(seconds);
  if (known) return known;
  const samples = new Float32Array(48000 * seconds).map((_, i) =>
    0.4 * Math.sin(2 * Math.PI * 440 * i / 48000)
  );
  const path = await Deno.makeTempFile({ suffix: ".wav" });
  await Deno.writeFile(path, encodeWav(samples, 48000, 1));
  wavPaths.set(seconds, path);
  return path;
}

Deno.test("usage errors: one sentence naming the fix, exit 2", async () => {
  const unknown = await run(["rn"]);
  assertEquals(unknown.code, 2);
  assert(
    unknown.stderr.startsWith('error: Unknown command "rn"; the commands are'),
    unknown.stderr,
  );
  const flag = await run(["run", `${fixtures}/demo.toml`, "--bogus"]);
  assertEquals(flag.code, 2, flag.stderr);
  assert(flag.stderr.includes("--bogus"), flag.stderr);
  const pair = await run(["run", `${fixtures}/demo.toml`, "--input", "x"]);
  assertEquals(pair.code, 2);
  assertEquals(
    pair.stderr.trim(),
    'error: Invalid --input "x": write it as NAME=FILE, e.g. --input in=speech.wav',
  );
  const name = await run([
    "run",
    `${fixtures}/demo.toml`,
    "--input",
    "nope=x.wav",
  ]);
  assertEquals(name.code, 2);
  assertEquals(
    name.stderr.trim(),
    'error: The pipeline has no input "nope"; its inputs are: audio',
  );
});

Deno.test("run: a missing pipeline or input file is one line, exit 1, nothing spawned", async () => {
  const missing = await run(["run", "nowhere.toml"]);
  assertEquals(missing.code, 1);
  assertEquals(missing.stderr.trim().split("\n").length, 1);
  assert(missing.stderr.includes("the file does not exist"), missing.stderr);
  const input = await run([
    "run",
    `${fixtures}/demo.toml`,
    "--input",
    "audio=/nonexistent.wav",
  ]);
  assertEquals(input.code, 1);
  assertEquals(
    input.stderr.trim(),
    'error: Cannot read the input file "/nonexistent.wav": it does not exist; check the path given to --input',
  );
});

Deno.test("new pipeline + run: the generated files run as generated", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const made = await run(["new", "pipeline", "hello", "--dir", dir]);
    assertEquals(made.code, 0, made.stderr);
    const again = await run(["new", "pipeline", "hello", "--dir", dir]);
    assertEquals(again.code, 1);
    assert(again.stderr.includes("already exists"), again.stderr);
    const node = await run(["new", "node", "shout", "--dir", dir]);
    assertEquals(node.code, 0, node.stderr);
    const bad = await run(["new", "node", "9x", "--dir", dir]);
    assertEquals(bad.code, 2);
    await Deno.writeTextFile(`${dir}/words.txt`, "hello world\nbye\n");
    const r = await run([
      "run",
      `${dir}/hello.toml`,
      "--input",
      `in=${dir}/words.txt`,
      "--output",
      `out=${dir}/out.txt`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      await Deno.readTextFile(`${dir}/out.txt`),
      "HELLO WORLD\nBYE\n",
    );
    const types = await run(["list-types", "--module", "shout", "--path", dir]);
    assertEquals(types.code, 0, types.stderr);
    assert(
      /^shout\s+in: in {2}out: out {2}Upper-cases text/m.test(types.stdout),
      types.stdout,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate: every error with its line, exit 1; a valid file exit 0", async () => {
  const broken = await run(["validate", `${fixtures}/broken.toml`]);
  assertEquals(broken.code, 1);
  const lines = broken.stderr.trim().split("\n");
  assertEquals(lines.at(-1), `${fixtures}/broken.toml: 4 errors`);
  const located = lines.slice(0, -1).map((l) =>
    /:(\d+): (\w+):/.exec(l)!.slice(1).join(" ")
  );
  assertEquals(located, [
    "11 unknown_node_type",
    "13 unreachable_node",
    "15 unknown_node_type",
    "18 unknown_port",
  ]);
  const shape = await run(["validate", `${fixtures}/bad_shape.json`]);
  assertEquals(shape.code, 1);
  assert(
    shape.stderr.startsWith(
      `${fixtures}/bad_shape.json:5: invalid_schema: $.nodes[1].type: must be a string`,
    ),
    shape.stderr,
  );
  const ok = await run(["validate", `${fixtures}/demo.toml`, "--json"]);
  assertEquals(ok.code, 0, ok.stderr);
  assertEquals(JSON.parse(ok.stdout).valid, true);
});

Deno.test("list-types: ports and doc lines; a module that fails is named, exit 1", async () => {
  const r = await run([
    "list-types",
    "--module",
    "demo_nodes",
    "--path",
    examples,
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const echo = JSON.parse(r.stdout).types.find((t: { type: string }) =>
    t.type === "echo"
  );
  assertEquals(echo.inputs, ["in"]);
  assertEquals(echo.outputs, ["out"]);
  assertEquals(echo.doc, "Sends every input back out unchanged.");
  const bad = await run([
    "list-types",
    "--module",
    "no_such_mod",
    "--path",
    examples,
  ]);
  assertEquals(bad.code, 1);
  assert(
    bad.stderr.includes('Cannot import node module "no_such_mod"'),
    bad.stderr,
  );
  const none = await run(["list-types"]);
  assertEquals(none.code, 2);
});

Deno.test("run --json: progress, status, output and stats events; WAV resampled to the reader's rate", async () => {
  const out = await Deno.makeTempFile({ suffix: ".wav" });
  try {
    const r = await run([
      "run",
      `${fixtures}/demo.toml`,
      "--input",
      `audio=${await toneWav()}`,
      "--output",
      `out=${out}`,
      "--json",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const phases = (node: string) =>
      events.filter((e) =>
        e.event === "progress" && e.nodeId === node && !e.heartbeat
      ).map((e) => e.phase);
    assertEquals(phases("loader")[0], "starting");
    assertEquals(phases("loader").at(-1), "ready");
    assert(phases("loader").includes("loading"));
    const fractions = events.filter((e) =>
      e.event === "progress" && e.nodeId === "loader" && e.phase === "loading"
    ).map((e) => e.fraction).filter((f) => f !== null);
    assertEquals(fractions.at(-1), 1);
    assert(events.some((e) => e.event === "status" && e.nodeId === "chunks"));
    const outputs = events.filter((e) => e.event === "output");
    // 3 s at 16 kHz in 20 ms messages = 150, each cut in two 10 ms chunks.
    assertEquals(outputs.length, 300);
    assertEquals(outputs[0].sampleRate, 16000);
    const stats = events.at(-1);
    assertEquals(stats.event, "stats");
    const loader = stats.processes.find((p: { nodeId: string }) =>
      p.nodeId === "loader"
    );
    assertEquals(loader.received, 150);
    const wav = decodeWav(await Deno.readFile(out), out);
    assertEquals(wav.sampleRate, 16000);
    assertEquals(wav.samples.length, 48000);
  } finally {
    await Deno.remove(out);
  }
});

Deno.test("inspect and tap a session running in another process; Ctrl-C mid-stream leaves nothing", async () => {
  const program = new Running([
    "run",
    `${fixtures}/demo.toml`,
    "--input",
    `audio=${await toneWav(30)}`,
    "--realtime",
    "--json",
  ]);
  try {
    await program.until(
      "ready",
      () => program.events().some((e) => e.event === "status"),
    );
    const session = await sessionOf(program.child.pid);
    const listed = await run(["inspect"]);
    assertEquals(listed.code, 0);
    assert(listed.stdout.includes(session.sessionId), listed.stdout);
    const one = await run(["inspect", session.sessionId.slice(0, 8)]);
    assertEquals(one.code, 0, one.stderr);
    assert(
      /^loader\s+slow_loader\s+(ready|processing)/m.test(one.stdout),
      one.stdout,
    );
    assert(/^in\.audio\s+\d+/m.test(one.stdout), one.stdout);
    const watch = new Running([
      "inspect",
      session.sessionId,
      "--watch",
      "--interval",
      "200",
      "--json",
    ]);
    await watch.until("three refreshes", () => watch.events().length >= 3);
    const counts = watch.events().map((e) =>
      (e as { stats: { channels: { messages: number }[] } }).stats.channels[0]
        .messages
    );
    assert(counts.at(-1)! > counts[0], `counts move: ${counts}`);
    watch.child.kill("SIGINT");
    assertEquals((await watch.done).code, 130);
    const tap = await run([
      "tap",
      session.sessionId,
      "loader.out",
      "--count",
      "10",
      "--json",
    ]);
    assertEquals(tap.code, 0, tap.stderr);
    const seen = tap.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(seen.length, 10);
    for (const s of seen) {
      assertEquals(s.kind, "audio");
      assertEquals(s.size, 128 + 320 * 4); // 20 ms at 16 kHz, f32
      assert(s.ageUs === null || s.ageUs >= 0);
    }
    for (let i = 1; i < seen.length; i++) {
      assert(seen[i].sequence > seen[i - 1].sequence, "in order");
    }
    const hz = await run([
      "tap",
      session.sessionId,
      "chunks.out",
      "--hz",
      "--duration",
      "1.5",
      "--json",
    ]);
    assertEquals(hz.code, 0, hz.stderr);
    const rate = JSON.parse(hz.stdout.trim().split("\n")[0]).hz;
    // Realtime 20 ms messages, each cut in two: about 100 per second.
    assert(rate > 60 && rate < 140, `rate ${rate}`);
    const noChannel = await run(["tap", session.sessionId, "nope"]);
    assertEquals(noChannel.code, 1);
    assert(
      noChannel.stderr.includes("its channels are: in.audio"),
      noChannel.stderr,
    );
    const noSession = await run(["inspect", "ffffffffffff"]);
    assertEquals(noSession.code, 1);
    assert(noSession.stderr.includes('No session matches "ffffffffffff"'));
    // The tap left its subscriber slot: the pipeline still flows.
    const before = program.events().filter((e) => e.event === "status").length;
    await program.until(
      "more status",
      () =>
        program.events().filter((e) => e.event === "status").length >
          before + 2,
    );
    program.child.kill("SIGINT");
    const status = await program.done;
    assertEquals(status.code, 130);
    for (const pid of session.pids) assert(!alive(pid), `node ${pid} stopped`);
    assertEquals(leftovers(session.isolation), []);
  } finally {
    try {
      program.child.kill("SIGKILL");
    } catch { /* exited */ }
    await program.done;
  }
});

Deno.test("Ctrl-C during start-up stops every node and removes every file, exit 130", async () => {
  const program = new Running([
    "run",
    `${fixtures}/demo.toml`,
    "--input",
    `audio=${await toneWav()}`,
    "--json",
  ]);
  try {
    await program.until(
      "a loading node",
      () =>
        program.events().some((e) =>
          e.event === "progress" && e.nodeId === "loader" &&
          e.phase === "loading"
        ),
    );
    const session = await sessionOf(program.child.pid);
    assert(
      !program.events().some((e) => e.event === "status"),
      "still loading",
    );
    program.child.kill("SIGINT");
    const status = await program.done;
    assertEquals(status.code, 130);
    for (const pid of session.pids) assert(!alive(pid), `node ${pid} stopped`);
    assertEquals(leftovers(session.isolation), []);
  } finally {
    try {
      program.child.kill("SIGKILL");
    } catch { /* exited */ }
    await program.done;
  }
});

function hasTmux(): boolean {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "the terminal display under tmux: a bar per node, then a status line per node",
  ignore: !hasTmux(),
  fn: async () => {
    const socket = `rmpcli${Deno.pid}`;
    const tmux = (...args: string[]) =>
      new Deno.Command("tmux", { args: ["-L", socket, ...args] }).output();
    const screen = async () =>
      new TextDecoder().decode((await tmux("capture-pane", "-p")).stdout);
    const done = await Deno.makeTempFile();
    await tmux(
      "new-session",
      "-d",
      "-x",
      "120",
      "-y",
      "40",
      `cd ${root} && deno run -A cli.ts run ${fixtures}/demo.toml --input audio=${await toneWav()} --realtime; echo EXIT=$? > ${done}; sleep 60`,
    );
    try {
      const shots: string[] = [];
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        shots.push(await screen());
        if ((await Deno.readTextFile(done)).includes("EXIT")) break;
        await sleep(150);
      }
      const bars = shots.find((s) =>
        /^loader \(slow_loader\)\s+\[█+░+\]\s+\d+% loading\s+\d+\.\d s\s+loaded \d\/5 shards/m
          .test(s)
      );
      assert(bars, `a loading bar:\n${shots.join("\n----\n")}`);
      assert(/^chunks \(chunker\)\s+\[/m.test(bars!), bars);
      const live = shots.find((s) =>
        /^loader\s+(ready|processing)\s+\d+\s+\d+\s+\d+\.\d\/s\s+\d+\/8\s+\d+\.\d MiB/m
          .test(s) && /^chunks\s+/m.test(s)
      );
      assert(live, `status lines:\n${shots.join("\n----\n")}`);
      assert(/^node\s+state\s+in\s+out\s+rate\s+queue\s+rss/m.test(live!));
      // The block is redrawn in place: one bar line per node, never two.
      for (const s of shots) {
        assert((s.match(/^loader /gm) ?? []).length <= 1, s);
      }
      assertEquals((await Deno.readTextFile(done)).trim(), "EXIT=0");
      assert((await screen()).includes("Done. out: 300 messages"));
    } finally {
      await tmux("kill-server");
      await Deno.remove(done);
    }
  },
});

Deno.test("a silent loader's heartbeats only move its clock; an init failure is one error, exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = (type: string, config: string) =>
      `version = 1
modules = ["exec_nodes"]
module_paths = ["${root}tests/nodes"]
[[nodes]]
id = "n"
type = "${type}"
config = ${config}
[[inputs]]
name = "in"
to = [{ node = "n", port = "in" }]
[[outputs]]
name = "out"
from = { node = "n", port = "out" }
`;
    await Deno.writeTextFile(
      `${dir}/silent.toml`,
      file("silent_loader", "{ seconds = 2.5 }"),
    );
    // No input: it would run until Ctrl-C; --duration ends it.
    const ok = await run([
      "run",
      `${dir}/silent.toml`,
      "--json",
      "--duration",
      "0.2",
    ]);
    assertEquals(ok.code, 0, ok.stderr);
    const beats = ok.stdout.trim().split("\n").map((l) => JSON.parse(l))
      .filter((e) => e.event === "progress" && e.heartbeat);
    assert(beats.length >= 1, ok.stdout);
    for (let i = 1; i < beats.length; i++) {
      assert(beats[i].elapsedMs > beats[i - 1].elapsedMs, "time passes");
      assert(
        !(beats[i].phase === "starting" && beats[i - 1].phase === "loading"),
        "never back to starting: not a restart",
      );
    }
    await Deno.writeTextFile(`${dir}/raises.toml`, file("init_raises", "{}"));
    const failed = await run(["run", `${dir}/raises.toml`, "--plain"]);
    assertEquals(failed.code, 1);
    const last = failed.stderr.trim().split("\n").at(-1)!;
    assert(
      last.startsWith(
        'error: NodeInitError: Node "n" failed to initialize: RuntimeError: model file is corrupt',
      ),
      failed.stderr,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a tap whose output is stuck drops lines, says how many, and the pipeline loses nothing", async () => {
  const messages = 20000;
  const input = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(
    input,
    Array.from({ length: messages }, (_, i) => JSON.stringify({ i }))
      .join("\n") + "\n",
  );
  const program = new Running([
    "run",
    `${fixtures}/echo2.toml`,
    "--input",
    `in=${input}`,
    "--output",
    `out=${input}.out.jsonl`,
    "--plain",
  ]);
  let tap: Deno.ChildProcess | undefined;
  try {
    const session = await sessionOf(program.child.pid);
    tap = new Deno.Command("deno", {
      args: ["run", "-A", cli, "tap", session.sessionId, "a.out"],
      stdout: "piped", // not read until the run is over: the tap's output is stuck
      stderr: "piped",
    }).spawn();
    const status = await program.done;
    assertEquals(status.code, 0, program.stderr);
    const written = (await Deno.readTextFile(`${input}.out.jsonl`)).trim()
      .split("\n");
    assertEquals(written.length, messages, "nothing lost");
    const out = await tap.output();
    const stderr = new TextDecoder().decode(out.stderr);
    const m = /tap: (\d+) messages on a\.out, (\d+) not printed/.exec(stderr);
    assert(m, stderr);
    const printed = new TextDecoder().decode(out.stdout).trim().split("\n")
      .length;
    assert(Number(m[2]) > 0, "some lines were dropped");
    assertEquals(printed + Number(m[2]), Number(m[1]), "every one accounted");
    console.log(`tap: ${m[1]} seen, ${printed} printed, ${m[2]} dropped`);
  } finally {
    try {
      program.child.kill("SIGKILL");
    } catch { /* exited */ }
    await program.done;
    await Deno.remove(input);
    await Deno.remove(`${input}.out.jsonl`).catch(() => {});
  }
});

Deno.test("runtime.toml: a [cli] table gives the modules; a bad key is one error naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/runtime.toml`,
      `[cli]\nmodules = ["demo_nodes"]\nmodule_paths = ["${examples}"]\n`,
    );
    await Deno.writeTextFile(
      `${dir}/p.json`,
      JSON.stringify({
        version: 1,
        nodes: [{ id: "e", type: "echo" }],
        connections: [],
        inputs: [{ name: "in", to: [{ node: "e", port: "in" }] }],
        outputs: [{ name: "out", from: { node: "e", port: "out" } }],
      }),
    );
    await Deno.writeTextFile(`${dir}/in.jsonl`, '{"a":1}\n[2]\n');
    const r = await run([
      "run",
      `${dir}/p.json`,
      "--config",
      `${dir}/runtime.toml`,
      "--input",
      `in=${dir}/in.jsonl`,
      "--output",
      `out=${dir}/out.jsonl`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const got = (await Deno.readTextFile(`${dir}/out.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l).value);
    assertEquals(got, [{ a: 1 }, [2]]);
    await Deno.writeTextFile(`${dir}/bad.toml`, "channel_capacity = -1\n");
    const bad = await run([
      "validate",
      `${dir}/p.json`,
      "--config",
      `${dir}/bad.toml`,
    ]);
    assertEquals(bad.code, 1);
    assert(bad.stderr.startsWith("error: ConfigError:"), bad.stderr);
    assert(bad.stderr.includes("channel_capacity"), bad.stderr);
    assertEquals(bad.stderr.trim().split("\n").length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
