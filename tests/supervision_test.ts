// Supervision: restart policies (never, on-failure, always) with limits and
// backoff, health checks (process_timeout_secs, control pings), and the loss
// count of messages in flight to a node that died. Real runners, real kills.
import { assert, assertEquals, assertInstanceOf } from "./support/assert.ts";
import {
  executor,
  nextWithin,
  root,
  settleWithin,
  waitUntil,
} from "./support/sessions.ts";
import {
  type LostEvent,
  Pipeline,
  type ProgressEvent,
  type RestartedEvent,
  type RuntimeData,
  type Session,
  text,
  type UnhealthyEvent,
} from "../mod.ts";
import {
  NodeHealthError,
  NodeInitError,
  ProcessCrashError,
} from "../errors.ts";
import type { AddNodeOptions } from "../pipeline/schema.ts";

const modules = {
  modules: ["supervision_nodes"],
  modulePaths: [`${root}tests/nodes`],
  printLogs: false,
};

function supervised(
  options: AddNodeOptions = {},
  config: Record<string, number | boolean> = {},
): Pipeline {
  return new Pipeline().addNode("supervised", "n", config, options)
    .addInput("in", "n", "in").addOutput("out", "n", "out");
}

function collect<T>(session: Session, type: string): T[] {
  const events: T[] = [];
  session.addEventListener(
    type,
    (e) => events.push((e as CustomEvent<T>).detail),
  );
  return events;
}

function textOf(data: RuntimeData): string {
  assert(data.kind === "text", `text, not ${data.kind}`);
  return data.text;
}

function pidOf(session: Session): number {
  const pid = session.status()[0].pid;
  assert(pid !== undefined, "the node has a pid");
  return pid;
}

async function readyAgain(session: Session, restarts: number): Promise<void> {
  assert(
    await waitUntil(
      () =>
        session.status()[0].restarts === restarts &&
        session.status()[0].state === "ready",
      20_000,
    ),
    `the node was not ready after restart ${restarts}: ${
      JSON.stringify(session.status())
    }`,
  );
}

Deno.test("on-failure: a killed node is restarted, runs initialize() again with progress, and knows it was restarted", async () => {
  await using ex = executor();
  const progress: ProgressEvent[] = [];
  await using session = await ex.createSession(
    supervised({ restart: { policy: "on-failure", backoffMs: 10 } }),
    { ...modules, onProgress: (e) => progress.push(e) },
  );
  const restarted = collect<RestartedEvent>(session, "restarted");
  await session.initialize();
  const out = session.receive("out");
  await session.send("in", text("before"));
  assertEquals(textOf(await nextWithin(out, 10_000, "the echo")), "before");
  const first = pidOf(session);
  Deno.kill(first, "SIGKILL");
  await readyAgain(session, 1);
  assertEquals(restarted.length, 1);
  assertEquals(restarted[0].nodeId, "n");
  assertEquals(restarted[0].attempt, 1);
  assertEquals(restarted[0].signal, "SIGKILL");
  assertEquals(restarted[0].exitCode, null);
  assertEquals(restarted[0].reason, "exit");
  assert(pidOf(session) !== first, "a new process");
  const after = progress.filter((e) => e.message.includes("attempt 1"));
  assert(after.length > 0, "progress of the restarted initialize()");
  assert(progress.at(-1)?.phase === "ready", "the restart ends ready");
  await session.send("in", text("attempt"));
  assertEquals(
    textOf(await nextWithin(out, 10_000, "the answer")),
    "attempt 1 restarted=True",
  );
  assertEquals(session.failure, undefined);
});

Deno.test("on-failure: every message in flight to the dead node is reported lost; sent = received + lost", async () => {
  await using ex = executor({ channelCapacity: 4 });
  await using session = await ex.createSession(
    supervised({ restart: { policy: "on-failure", backoffMs: 10 } }, {
      delay_ms: 15,
    }),
    modules,
  );
  const lost = collect<LostEvent>(session, "lost");
  await session.initialize();
  const TOTAL = 80;
  let received = 0;
  const reader = (async () => {
    for await (const sample of session.receive("out", { timeoutMs: 15_000 })) {
      received++;
      const sent = Number(textOf(sample.data).slice(2));
      if (sent === TOTAL - 1) return;
    }
  })();
  let killed = false;
  for (let i = 0; i < TOTAL; i++) {
    await session.send("in", text(`m:${i}`));
    if (i === 30 && !killed) {
      killed = true;
      Deno.kill(pidOf(session), "SIGKILL");
      await readyAgain(session, 1);
    }
  }
  await (await settleWithin(reader, 30_000, "the reader")).status;
  const reported = lost.reduce((n, e) => n + e.count, 0);
  assert(reported > 0, "the kill lost the messages in flight");
  assertEquals(received + reported, TOTAL, `lost ${JSON.stringify(lost)}`);
  assert(lost.every((e) => e.nodeId === "n" && e.channel === "in.in"));
  assertEquals((await session.stats()).lost, reported);
});

Deno.test("on-failure: past max_restarts within the window the session fails, naming the restarts", async () => {
  await using ex = executor();
  await using session = await ex.createSession(
    supervised({
      restart: { policy: "on-failure", maxRestarts: 1, backoffMs: 10 },
    }),
    modules,
  );
  await session.initialize();
  await session.send("in", text("exit3"));
  await readyAgain(session, 1);
  await session.send("in", text("exit3"));
  const failed = await settleWithin(
    new Promise((r) => session.addEventListener("failed", r)),
    10_000,
    "the failure",
  );
  assertEquals(failed.status, "fulfilled");
  const error: unknown = session.failure;
  assertInstanceOf(error, ProcessCrashError);
  assertEquals(error.nodeId, "n");
  assertEquals(error.exitCode, 3);
  assertEquals(error.restarts, 1);
  assert(error.message.includes("after 1 restart within 60 s"), error.message);
});

Deno.test("a restart whose initialize() fails is a failed attempt: the session gives up with NodeInitError", async () => {
  await using ex = executor();
  await using session = await ex.createSession(
    supervised(
      { restart: { policy: "on-failure", maxRestarts: 2, backoffMs: 10 } },
      { fail_restarts: true },
    ),
    modules,
  );
  const restarted = collect<RestartedEvent>(session, "restarted");
  await session.initialize();
  await session.send("in", text("exit3"));
  assert(
    await waitUntil(() => session.failure !== undefined, 20_000),
    "the session failed",
  );
  const error: unknown = session.failure;
  assertInstanceOf(error, NodeInitError);
  assert(
    error.message.includes("after 2 restarts") &&
      error.message.includes("cannot start twice"),
    error.message,
  );
  assertEquals(restarted.map((e) => e.attempt), [1, 2]);
});

Deno.test("always restarts a node that exits cleanly on its own; on-failure does not", async () => {
  {
    await using ex = executor();
    await using session = await ex.createSession(
      supervised({ restart: { policy: "always", backoffMs: 10 } }),
      modules,
    );
    const restarted = collect<RestartedEvent>(session, "restarted");
    await session.initialize();
    await session.send("in", text("exit0"));
    await readyAgain(session, 1);
    assertEquals(restarted[0].exitCode, 0);
  }
  {
    await using ex = executor();
    await using session = await ex.createSession(
      supervised({ restart: { policy: "on-failure", backoffMs: 10 } }),
      modules,
    );
    await session.initialize();
    await session.send("in", text("exit0"));
    assert(await waitUntil(() => session.failure !== undefined, 10_000));
    const error: unknown = session.failure;
    assertInstanceOf(error, ProcessCrashError);
    assertEquals(error.exitCode, 0);
  }
});

Deno.test("process_timeout_secs: a long process() call is reported; never fails the session, on-failure restarts the node", async () => {
  {
    await using ex = executor();
    await using session = await ex.createSession(
      supervised({ processTimeoutSecs: 0.3 }),
      modules,
    );
    const unhealthy = collect<UnhealthyEvent>(session, "unhealthy");
    await session.initialize();
    const started = performance.now();
    await session.send("in", text("sleep:30"));
    assert(await waitUntil(() => session.failure !== undefined, 10_000));
    const took = performance.now() - started;
    const error: unknown = session.failure;
    assertInstanceOf(error, NodeHealthError);
    assertEquals(error.reason, "process_timeout");
    assertEquals(error.nodeId, "n");
    assertEquals(unhealthy[0]?.action, "fail");
    assert(took >= 300 && took < 8000, `detected after ${took} ms`);
  }
  {
    await using ex = executor();
    await using session = await ex.createSession(
      supervised({
        processTimeoutSecs: 0.3,
        restart: { policy: "on-failure", backoffMs: 10 },
      }),
      modules,
    );
    const restarted = collect<RestartedEvent>(session, "restarted");
    const unhealthy = collect<UnhealthyEvent>(session, "unhealthy");
    await session.initialize();
    await session.send("in", text("sleep:30"));
    await readyAgain(session, 1);
    assertEquals(unhealthy[0]?.action, "restart");
    assertEquals(restarted[0].reason, "process_timeout");
    assertEquals(restarted[0].signal, "SIGKILL");
    const out = session.receive("out");
    await session.send("in", text("fine"));
    assertEquals(textOf(await nextWithin(out, 10_000, "the echo")), "fine");
  }
});

Deno.test("process_timeout_secs does not count time blocked by a slow reader (backpressure)", async () => {
  await using ex = executor({ channelCapacity: 1 });
  const pipeline = new Pipeline()
    .addNode("supervised", "a", {}, { processTimeoutSecs: 0.4 })
    .addNode("supervised", "b", { delay_ms: 600 })
    .connect("a", "out", "b", "in")
    .addInput("in", "a", "in").addOutput("out", "b", "out");
  await using session = await ex.createSession(pipeline, modules);
  const unhealthy = collect<UnhealthyEvent>(session, "unhealthy");
  await session.initialize();
  const out = session.receive("out");
  // b takes 0.6 s a message: a's publishes wait for it, longer than a's bound.
  const sending = (async () => {
    for (const m of ["x1", "x2", "x3", "x4"]) {
      await session.send("in", text(m));
    }
  })();
  for (const m of ["x1", "x2", "x3", "x4"]) {
    assertEquals(textOf(await nextWithin(out, 10_000, m)), m);
  }
  await sending;
  assertEquals(unhealthy, []);
  assertEquals(session.failure, undefined);
});

Deno.test("a node that answers no control ping within ping_timeout_secs is unhealthy and restarted", async () => {
  await using ex = executor({ pingIntervalSecs: 0.1 });
  await using session = await ex.createSession(
    supervised({
      pingTimeoutSecs: 0.5,
      restart: { policy: "on-failure", backoffMs: 10 },
    }),
    modules,
  );
  const restarted = collect<RestartedEvent>(session, "restarted");
  const unhealthy = collect<UnhealthyEvent>(session, "unhealthy");
  await session.initialize();
  // Idle and pinged: healthy.
  await new Promise((r) => setTimeout(r, 800));
  assertEquals(unhealthy.length, 0);
  Deno.kill(pidOf(session), "SIGSTOP");
  await readyAgain(session, 1);
  assertEquals(unhealthy[0]?.reason, "ping_timeout");
  assertEquals(restarted[0].reason, "ping_timeout");
  assertEquals(session.failure, undefined);
});

Deno.test("restart policies round-trip through TOML and reject bad values", () => {
  const p = supervised({
    restart: { policy: "on-failure", maxRestarts: 5, windowSecs: 30 },
    processTimeoutSecs: 2.5,
    pingTimeoutSecs: 0,
  });
  const back = Pipeline.fromToml(p.toToml());
  assertEquals(back.toJSON().nodes[0], {
    id: "n",
    type: "supervised",
    config: {},
    restart: { policy: "on-failure", max_restarts: 5, window_secs: 30 },
    process_timeout_secs: 2.5,
    ping_timeout_secs: 0,
  });
  let message = "";
  try {
    supervised({ restart: { policy: "sometimes" as "never" } });
  } catch (e) {
    message = (e as Error).message;
  }
  assertEquals(
    message,
    'restart.policy: must be one of "never", "on-failure", "always", got "sometimes"',
  );
});
