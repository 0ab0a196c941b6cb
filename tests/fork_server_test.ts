/**
 * The fork server (issue 9, part 3) with real processes: a forked runner's
 * stderr and exit reach the session as a spawned one's do, the server's death
 * is every forked runner's crash (and the next session gets a new server),
 * and `forkServer: false` spawns interpreters.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import { ProcessCrashError } from "../errors.ts";
import { Pipeline } from "../pipeline/mod.ts";
import { text } from "../data/runtime_data/mod.ts";
import type { LogEvent } from "../control/session.ts";

const root = new URL("..", import.meta.url).pathname;
const python = `${root}.venv/bin/python`;
const nodes = {
  modules: ["exec_nodes", "demo_nodes"],
  modulePaths: [`${root}tests/nodes`, `${root}examples/nodes`],
  printLogs: false,
};

function single(type: string): Pipeline {
  return new Pipeline().addNode(type, "n").addInput("in", "n", "in")
    .addOutput("out", "n", "out");
}

function parentOf(pid: number): number {
  return Number(
    Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ")[1],
  );
}

function cmdline(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)
    ),
  ]).finally(() => clearTimeout(timer));
}

Deno.test("a forked runner's stderr and exit code reach the session's crash report", async () => {
  await using ex = new MultiprocessExecutor({ python: { executable: python } });
  const session = await ex.createSession(single("crasher"), nodes);
  const lines: LogEvent[] = [];
  session.addEventListener("log", (e) => lines.push((e as CustomEvent).detail));
  await session.initialize();
  const pid = session.status()[0].pid!;
  const server = parentOf(pid);
  assert(server !== Deno.pid, "forked: its parent is the fork server");
  assert(cmdline(server).includes("remotemedia_multiprocess._forkserver"));
  assertEquals(parentOf(server), Deno.pid);
  const failed = new Promise<Error>((resolve) =>
    session.addEventListener(
      "failed",
      (e) => resolve((e as CustomEvent<Error>).detail),
      { once: true },
    )
  );
  await session.send("in", text("stderr-exit"));
  const error = await within(failed, 10_000, "the crash");
  assert(error instanceof ProcessCrashError, String(error));
  assertEquals(error.exitCode, 3);
  assert(
    error.stderrTail.includes("disk full while writing the cache"),
    error.stderrTail.join("|"),
  );
  assert(
    lines.some((l) =>
      l.stream === "stderr" && l.line === "disk full while writing the cache"
    ),
  );
});

Deno.test("the fork server's death is each forked runner's crash; the next session gets a new server", async () => {
  await using ex = new MultiprocessExecutor({ python: { executable: python } });
  const session = await ex.createSession(single("echo"), nodes);
  await session.initialize();
  const server = parentOf(session.status()[0].pid!);
  const failed = new Promise<Error>((resolve) =>
    session.addEventListener(
      "failed",
      (e) => resolve((e as CustomEvent<Error>).detail),
      { once: true },
    )
  );
  Deno.kill(server, "SIGKILL");
  const error = await within(failed, 10_000, "the crash");
  assert(error instanceof ProcessCrashError, String(error));
  assertEquals(error.signal, "SIGKILL");
  await session.close();
  await using next = await ex.createSession(single("echo"), nodes);
  await next.initialize();
  const newServer = parentOf(next.status()[0].pid!);
  assert(newServer !== server && newServer !== Deno.pid);
  await next.send("in", text("again"));
  for await (const sample of next.receive("out", { timeoutMs: 10_000 })) {
    assertEquals(sample.data.kind === "text" && sample.data.text, "again");
    break;
  }
});

Deno.test("forkServer: false spawns each runner as a new interpreter", async () => {
  await using ex = new MultiprocessExecutor({
    python: { executable: python },
    forkServer: false,
  });
  await using session = await ex.createSession(single("echo"), nodes);
  await session.initialize();
  const pid = session.status()[0].pid!;
  assertEquals(parentOf(pid), Deno.pid);
  assert(cmdline(pid).includes("remotemedia_multiprocess.runner --spec"));
});
