/**
 * Pre-warmed sessions (issue 9, part 3), with real runner processes: a
 * `createSession` takes a ready spare (ready at once), the spare is
 * replaced, spares end with `close()` and with a SIGKILL of their program,
 * and a failing spare is reported, never silently.
 */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import { NodeInitError, ProcessCrashError } from "../errors.ts";
import { Pipeline } from "../pipeline/mod.ts";
import { text } from "../data/runtime_data/mod.ts";
import { leftovers } from "../data/isolation.ts";
import type { ProgressEvent } from "../control/session.ts";

const root = new URL("..", import.meta.url).pathname;
const python = `${root}.venv/bin/python`;
const demo = {
  modules: ["demo_nodes"],
  modulePaths: [`${root}examples/nodes`],
  printLogs: false,
};
const execNodes = {
  modules: ["exec_nodes"],
  modulePaths: [`${root}tests/nodes`],
  printLogs: false,
};

function executor(): MultiprocessExecutor {
  return new MultiprocessExecutor({
    python: { executable: python },
    initTimeoutSecs: 60,
  });
}

function single(type: string): Pipeline {
  return new Pipeline().addNode(type, "n").addInput("in", "n", "in")
    .addOutput("out", "n", "out");
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

interface Runner {
  pid: number;
  prefix: string;
  root: string;
}

/** The parent of `pid`, if it lives. */
function parentOf(pid: number): number | undefined {
  try {
    return Number(
      Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ")[1],
    );
  } catch {
    return undefined;
  }
}

/** The live runner processes that descend from `ancestor` (its children,
 * or the children of its fork server), with their isolation. */
function runnersOf(ancestor: number): Runner[] {
  const found: Runner[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.split(") ")[1].split(" ");
      const parent = Number(fields[1]);
      if (fields[0] === "Z") continue;
      if (parent !== ancestor && parentOf(parent) !== ancestor) continue;
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      // A forked runner keeps the fork server's command line.
      const forked = parent !== ancestor &&
        cmdline.includes("remotemedia_multiprocess._forkserver");
      if (!forked && !cmdline.includes("remotemedia_multiprocess.runner")) {
        continue;
      }
      // Its isolation, from the lock file every runner holds open.
      let prefix = "";
      for (const fd of Deno.readDirSync(`/proc/${entry.name}/fd`)) {
        try {
          const target = Deno.readLinkSync(`/proc/${entry.name}/fd/${fd.name}`);
          const m = /^\/tmp\/rmp\/([^/]+)\.lock$/.exec(target);
          if (m) prefix = m[1];
        } catch { /* closed meanwhile */ }
      }
      if (!prefix) continue; // not yet a runner of a session
      found.push({
        pid: Number(entry.name),
        prefix,
        root: `/tmp/rmp/${prefix}/`,
      });
    } catch { /* gone meanwhile */ }
  }
  return found;
}

/** Waits until `check` holds, at most `ms`. */
async function until(check: () => boolean, ms: number, what: string) {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

function assertNothingLeft(runners: Runner[]): void {
  for (const r of runners) {
    assert(!alive(r.pid), `runner ${r.pid} is gone`);
    assertEquals(leftovers(r), [], `no shared memory of ${r.prefix} left`);
    let exists = true;
    try {
      Deno.statSync(r.root);
    } catch {
      exists = false;
    }
    assert(!exists, `${r.root} removed`);
  }
}

Deno.test("createSession takes a ready spare: ready at once, then replaced", async () => {
  await using ex = executor();
  const pipeline = single("echo");
  await using warm = await ex.prewarm(pipeline, { sessions: 1, ...demo });
  await warm.whenReady();
  assertEquals(warm.ready, 1);
  const spares = runnersOf(Deno.pid);
  assertEquals(spares.length, 1);
  assertEquals(ex.sessions.length, 0, "a spare is not the user's session");
  const events: ProgressEvent[] = [];
  const t = performance.now();
  await using session = await ex.createSession(pipeline, {
    ...demo,
    onProgress: (e) => events.push(e),
  });
  assert(session.ready, "a taken spare is ready when createSession returns");
  await session.initialize();
  const ms = performance.now() - t;
  assert(ms < 200, `warm start took ${ms} ms`);
  assertEquals(session.status()[0].pid, spares[0].pid, "the spare's process");
  assertEquals(events.map((e) => [e.nodeId, e.phase]), [["n", "ready"]]);
  assertEquals(ex.sessions, [session]);
  await session.send("in", text("warm"));
  for await (const sample of session.receive("out", { timeoutMs: 10_000 })) {
    assertEquals(sample.data.kind === "text" && sample.data.text, "warm");
    break;
  }
  // The pool starts a replacement at once.
  assertEquals(warm.ready + warm.starting, 1);
  await warm.whenReady();
  const now = runnersOf(Deno.pid).map((r) => r.pid);
  assertEquals(now.length, 2);
  assert(now.includes(spares[0].pid));
  // A pipeline that differs (another node id) starts cold.
  const other = await ex.createSession(
    new Pipeline().addNode("echo", "m").addInput("in", "m", "in")
      .addOutput("out", "m", "out"),
    demo,
  );
  assert(!other.ready);
  await other.close();
  assertEquals(warm.ready, 1, "the spare was not taken");
});

Deno.test("spares end with executor.close() and leave nothing", async () => {
  const ex = executor();
  const warm = await ex.prewarm(single("echo"), { sessions: 2, ...demo });
  await warm.whenReady();
  const spares = runnersOf(Deno.pid);
  assertEquals(spares.length, 2);
  await ex.close();
  assert(warm.closed);
  assertEquals(warm.ready, 0);
  await until(() => spares.every((r) => !alive(r.pid)), 5000, "spares exit");
  assertNothingLeft(spares);
  await assertRejects(() => warm.whenReady(), Error, "pool is closed");
});

Deno.test("closing the pool while spares start leaves nothing", async () => {
  await using ex = executor();
  const warm = await ex.prewarm(single("echo"), { sessions: 2, ...demo });
  await sleep(50); // spawned, not yet ready
  await warm.close();
  assertEquals(warm.ready + warm.starting, 0);
  assertEquals(runnersOf(Deno.pid), []);
});

Deno.test("spares die with their program (SIGKILL) and leave no process", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}tests/fixtures/prewarm_program.ts`],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = setTimeout(() => child.kill("SIGKILL"), 60_000);
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  clearTimeout(deadline);
  const stage = JSON.parse(out.split("\n")[0]);
  assertEquals(stage.stage, "warm");
  const spares = runnersOf(stage.pid);
  assertEquals(spares.length, 2);
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  await child.stderr.cancel();
  // Runners exit when their control socket closes (within 2 s).
  await until(() => spares.every((r) => !alive(r.pid)), 5000, "spares exit");
});

Deno.test("a spare that fails to initialize is reported, and the pool gives up", async () => {
  await using ex = executor();
  const failures: Error[] = [];
  await using warm = await ex.prewarm(single("init_raises"), {
    sessions: 1,
    ...execNodes,
    onError: (e) => failures.push(e),
    maxConsecutiveFailures: 2,
  });
  const error = await assertRejects(() => warm.whenReady(), NodeInitError);
  assert(error.message.includes("model file is corrupt"), error.message);
  assertEquals(failures.length, 2);
  assert(failures.every((e) => e instanceof NodeInitError));
  assertEquals(warm.failure, error);
  assertEquals(runnersOf(Deno.pid), [], "failed spares left nothing");
  // createSession then starts cold, and fails as a cold start would.
  const cold = await ex.createSession(single("init_raises"), execNodes);
  await assertRejects(() => cold.initialize(), NodeInitError);
});

Deno.test("a spare that crashes while it waits is reported and replaced", async () => {
  await using ex = executor();
  const failures: Error[] = [];
  await using warm = await ex.prewarm(single("echo"), { sessions: 1, ...demo });
  warm.addEventListener(
    "error",
    (e) => failures.push((e as CustomEvent).detail),
  );
  await warm.whenReady();
  const [spare] = runnersOf(Deno.pid);
  Deno.kill(spare.pid, "SIGKILL");
  await until(() => failures.length === 1, 10_000, "the crash is reported");
  assert(failures[0] instanceof ProcessCrashError, String(failures[0]));
  assertEquals((failures[0] as ProcessCrashError).signal, "SIGKILL");
  await until(() => warm.ready === 1, 30_000, "a replacement is ready");
  const [replacement] = runnersOf(Deno.pid);
  assert(replacement.pid !== spare.pid);
  assertNothingLeft([spare]);
  const session = await ex.createSession(single("echo"), demo);
  assertEquals(session.status()[0].pid, replacement.pid);
  await session.close();
});

Deno.test("a changed module file retires the spares that run the old code", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rmp-prewarm-" });
  try {
    const file = `${dir}/warm_nodes.py`;
    const source = (reply: string) =>
      "from remotemedia_multiprocess.node import MultiprocessNode, register_node\n" +
      "from remotemedia_multiprocess.runtime_data import RuntimeData\n\n\n" +
      '@register_node("replier")\nclass Replier(MultiprocessNode):\n' +
      `    def process(self, data):\n        return RuntimeData.text("${reply}")\n`;
    await Deno.writeTextFile(file, source("old"));
    const options = {
      modules: ["warm_nodes"],
      modulePaths: [dir],
      printLogs: false,
    };
    await using ex = new MultiprocessExecutor({
      python: { executable: python },
      typeCacheDir: `${dir}/cache`,
    });
    await using warm = await ex.prewarm(single("replier"), {
      sessions: 1,
      ...options,
    });
    await warm.whenReady();
    await Deno.writeTextFile(file, source("new"));
    await using session = await ex.createSession(single("replier"), options);
    assert(!session.ready, "started cold: the spare ran the old code");
    await session.send("in", text("?"));
    for await (const sample of session.receive("out", { timeoutMs: 30_000 })) {
      assertEquals(sample.data.kind === "text" && sample.data.text, "new");
      break;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
