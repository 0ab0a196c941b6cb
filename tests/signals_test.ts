/**
 * SIGINT and SIGTERM to a real Deno program with open sessions: it closes
 * them (every node process gone, nothing of their isolation left in /dev/shm
 * or /tmp/rmp) and exits as the signal would (130, 143), unless it opted out.
 */
import { assert, assertEquals } from "./support/assert.ts";
import {
  type Isolation,
  leftovers,
  removeIsolation,
} from "../data/isolation.ts";

const program = new URL("./fixtures/signal_program.ts", import.meta.url)
  .pathname;

interface Stage {
  stage: string;
  sessions: (Isolation & { pids: number[] })[];
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !stat.split(") ")[1].startsWith("Z");
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A running signal_program.ts, its output collected as it comes. */
class Program {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  #exited: Deno.CommandStatus | undefined;
  readonly #done: Promise<unknown>;

  constructor(args: string[], options: { ownGroup?: boolean } = {}) {
    const deno = [Deno.execPath(), "run", "-A", program, ...args];
    // setsid makes the program lead a process group of its own (it execs,
    // so the pid stays), so the test can signal the group as Ctrl-C does.
    const [cmd, ...rest] = options.ownGroup ? ["setsid", ...deno] : deno;
    this.child = new Deno.Command(cmd, {
      args: rest,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (
      stream: ReadableStream<Uint8Array>,
      into: "stdout" | "stderr",
    ) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        this[into] += decoder.decode(chunk, { stream: true });
      }
    };
    this.#done = Promise.all([
      collect(this.child.stdout, "stdout"),
      collect(this.child.stderr, "stderr"),
      this.child.status.then((s) => this.#exited = s),
    ]);
  }

  /** The first stdout line that is a JSON object with `key`, within `ms`. */
  async line<T>(key: string, ms: number): Promise<T> {
    const deadline = performance.now() + ms;
    while (true) {
      for (const l of this.stdout.split("\n")) {
        if (!l.startsWith("{")) continue;
        const parsed = JSON.parse(l);
        if (key in parsed) return parsed as T;
      }
      if (this.#exited || performance.now() >= deadline) break;
      await sleep(50);
    }
    throw new Error(
      `no "${key}" line within ${ms} ms (exit ${
        JSON.stringify(this.#exited)
      }); stdout: ${this.stdout}; stderr: ${this.stderr.slice(-3000)}`,
    );
  }

  /** Its exit status, within `ms` (else it is killed and the test fails). */
  async exit(ms: number): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      this.child.status,
      new Promise<null>((r) => timer = setTimeout(() => r(null), ms)),
    ]);
    clearTimeout(timer);
    if (status === null) {
      this.kill();
      await this.#done;
      throw new Error(
        `the program did not exit within ${ms} ms; stderr: ${
          this.stderr.slice(-3000)
        }`,
      );
    }
    await this.#done;
    return status;
  }

  kill(): void {
    try {
      this.child.kill("SIGKILL");
    } catch { /* already gone */ }
  }
}

/** Runs `mode`, signals it at its stage line, and checks the clean exit. */
async function signalled(
  args: string[],
  signals: Deno.Signal[],
  expected: {
    code: number;
    withinMs?: number;
    group?: boolean;
    /** How long node processes may take to die after the exit (SIGKILL is sent, not awaited, on a second signal). */
    goneWithinMs?: number;
  },
): Promise<{ stage: Stage; program: Program; tookMs: number }> {
  const program = new Program(args, { ownGroup: expected.group });
  let stage: Stage | undefined;
  try {
    stage = await program.line<Stage>("stage", 60_000);
    const target = expected.group ? -program.child.pid : program.child.pid;
    const sent = performance.now();
    for (const [i, signal] of signals.entries()) {
      if (i > 0) await sleep(300);
      try {
        Deno.kill(target, signal);
      } catch { /* already exited: the checks below say how */ }
    }
    const status = await program.exit(expected.withinMs ?? 10_000);
    const tookMs = performance.now() - sent;
    const why = `exit ${JSON.stringify(status)}; stderr: ${
      program.stderr.slice(-3000)
    }`;
    for (const session of stage.sessions) {
      assertEquals(leftovers(session), [], `nothing left; ${why}`);
      const deadline = performance.now() + (expected.goneWithinMs ?? 0);
      for (const pid of session.pids) {
        while (alive(pid) && performance.now() < deadline) await sleep(20);
        assert(!alive(pid), `node process ${pid} is gone; ${why}`);
      }
    }
    assertEquals(
      { code: status.code, signal: status.signal },
      { code: expected.code, signal: null },
      `the program exits with ${expected.code} by itself; ${why}`,
    );
    return { stage, program, tookMs };
  } finally {
    program.kill();
    await program.exit(10_000).catch(() => {});
    for (const session of stage?.sessions ?? []) {
      for (const pid of session.pids) {
        // Only the node processes of the program this test started.
        if (alive(pid)) Deno.kill(pid, "SIGKILL");
      }
      await sleep(100);
      removeIsolation(session);
    }
  }
}

Deno.test("SIGINT mid-stream closes the session and exits with 130", async () => {
  await signalled(["stream"], ["SIGINT"], { code: 130 });
});

Deno.test("SIGTERM mid-stream closes the session and exits with 143", async () => {
  await signalled(["stream"], ["SIGTERM"], { code: 143 });
});

Deno.test("Ctrl-C (SIGINT to the whole process group) mid-stream exits with 130, nothing left", async () => {
  await signalled(["stream"], ["SIGINT"], { code: 130, group: true });
});

Deno.test("SIGINT while a node is in initialize() exits with 130, nothing left", async () => {
  await signalled(["init"], ["SIGINT"], { code: 130 });
});

Deno.test("SIGTERM while the runner is still starting exits with 143, nothing left", async () => {
  await signalled(["spawned"], ["SIGTERM"], { code: 143 });
});

Deno.test("one signal closes the sessions of every executor in the program", async () => {
  const { stage } = await signalled(["two"], ["SIGTERM"], { code: 143 });
  assertEquals(stage.sessions.length, 2);
});

Deno.test("a node stuck in process() is killed after the short grace", async () => {
  const { tookMs } = await signalled(["stuck"], ["SIGTERM"], {
    code: 143,
    withinMs: 8000,
  });
  // The node ignores shutdown: the exit waits out the 2 s grace, no more.
  assert(tookMs >= 1500 && tookMs < 6000, `exited after ${tookMs} ms`);
});

Deno.test("a second signal during the clean-up exits at once and still removes the files", async () => {
  const { tookMs } = await signalled(["stuck"], ["SIGTERM", "SIGINT"], {
    code: 130,
    withinMs: 8000,
    goneWithinMs: 2000,
  });
  // The second signal comes 300 ms after the first, well inside the grace.
  assert(tookMs < 1900, `exited ${tookMs} ms after the first signal`);
});

Deno.test("handleSignals: false leaves SIGINT to the program's own handler", async () => {
  const { program } = await signalled(["stream", "own"], ["SIGINT"], {
    code: 7,
  });
  const own = await program.line<{ own: boolean; closed: boolean }>("own", 0);
  assertEquals(own, { own: true, closed: false });
});

Deno.test("with no session open, SIGINT ends the program as it would without the module", async () => {
  const program = new Program(["idle"]);
  let stage: Stage | undefined;
  try {
    stage = await program.line<Stage>("stage", 60_000);
    Deno.kill(program.child.pid, "SIGINT");
    const status = await program.exit(10_000);
    assertEquals(status.signal, "SIGINT", program.stderr.slice(-3000));
    assertEquals(leftovers(stage.sessions[0]), []);
  } finally {
    program.kill();
    await program.exit(10_000).catch(() => {});
    for (const session of stage?.sessions ?? []) removeIsolation(session);
  }
});
