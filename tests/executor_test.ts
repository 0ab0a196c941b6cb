import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import {
  NodeInitError,
  type NodeProcessError,
  PipelineValidationError,
  ProcessCrashError,
  ProcessSpawnError,
  ResourceLimitError,
} from "../errors.ts";
import { leftovers } from "../data/isolation.ts";
import { Pipeline } from "../pipeline/mod.ts";
import {
  audio,
  type AudioData,
  binary,
  text,
  type TextData,
} from "../data/runtime_data/mod.ts";
import type { ProgressEvent, Session } from "../control/session.ts";
import { fillPattern, sha256 } from "./support/shm.ts";
import {
  alive,
  executor,
  modules,
  nextWithin,
  single,
  waitUntil,
} from "./support/sessions.ts";

async function expectGone(session: Session): Promise<void> {
  await session.close();
  for (const s of session.status()) {
    assert(!alive(s.pid!), `process of ${s.nodeId} is gone`);
  }
}

Deno.test("an echo node returns text and 1 MiB intact through shared memory", async () => {
  await using ex = executor();
  const session = await ex.createSession(single("echo"), {
    ...modules,
    printLogs: false,
  });
  const iso = (await session.stats()).processes.length;
  assertEquals(iso, 1);
  await session.initialize();
  await session.send("in", text("hello"));
  const payload = new Uint8Array(1 << 20);
  fillPattern(payload, 7);
  await session.send("in", binary(payload));
  const got: string[] = [];
  for await (const sample of session.receive("out")) {
    const data = sample.data;
    got.push(
      data.kind === "text"
        ? (data as TextData).text
        : await sha256((data as { data: Uint8Array }).data),
    );
    if (got.length === 2) break;
  }
  assertEquals(got, ["hello", await sha256(payload)]);
  const stats = await session.stats();
  assertEquals(stats.processes[0].received, 2);
  assert(stats.processes[0].rssBytes! > 0);
  await expectGone(session);
});

Deno.test("a silent 5 s loader yields progress at least every 2 s; ready means initialized", async () => {
  await using ex = executor();
  const events: ProgressEvent[] = [];
  const started = performance.now();
  await using session = await ex.createSession(
    single("silent_loader", { seconds: 5 }),
    {
      ...modules,
      printLogs: false,
      onProgress: (e) => events.push(e),
    },
  );
  await session.initialize();
  const took = performance.now() - started;
  assert(took >= 5000, `initialize resolved after ${took} ms`);
  const loading = events.filter((e) => e.phase !== "ready");
  assert(loading.length >= 2, `${loading.length} progress events`);
  for (let i = 1; i < events.length; i++) {
    assert(
      events[i].elapsedMs - events[i - 1].elapsedMs <= 2000,
      "no gap over 2 s",
    );
  }
  assertEquals(events.at(-1)!.phase, "ready");
});

Deno.test("CPU-bound nodes on parallel branches take about one node's time, not the sum", async () => {
  await using ex = executor();
  const work = { iterations: 6_000_000 }; // pure Python holding its GIL
  const timeBranches = async (branches: number): Promise<number> => {
    const pipeline = new Pipeline();
    for (let i = 0; i < branches; i++) {
      pipeline.addNode("cpu_burn", `b${i}`, work).addInput("in", `b${i}`, "in")
        .addOutput(`o${i}`, `b${i}`, "out");
    }
    await using session = await ex.createSession(pipeline, {
      ...modules,
      printLogs: false,
    });
    await session.initialize();
    const started = performance.now();
    for (let i = 0; i < 3; i++) await session.send("in", text(`${i}`));
    await Promise.all(Array.from({ length: branches }, async (_, i) => {
      let n = 0;
      for await (const _s of session.receive(`o${i}`)) if (++n === 3) break;
    }));
    return performance.now() - started;
  };
  const one = await timeBranches(1);
  const two = await timeBranches(2);
  // Serialized, two branches would take 2x one branch.
  assert(
    two < one * 1.5,
    `two branches took ${two.toFixed(0)} ms, one took ${one.toFixed(0)} ms`,
  );
});

Deno.test("an exception in process() is an error event; the node keeps running", async () => {
  await using ex = executor();
  await using session = await ex.createSession(single("crasher"), {
    ...modules,
    printLogs: false,
  });
  await session.initialize();
  const errors: NodeProcessError[] = [];
  session.addEventListener(
    "error",
    (e) => errors.push((e as CustomEvent<NodeProcessError>).detail),
  );
  await session.send("in", text("raise"));
  await session.send("in", text("still here"));
  for await (const sample of session.receive("out")) {
    assertEquals((sample.data as TextData).text, "still here");
    break;
  }
  // The error travels on the control socket, the output on shared memory:
  // nothing orders the two, so the error may arrive just after the output.
  assert(await waitUntil(() => errors.length > 0, 5000), "no error event");
  assertEquals(errors.length, 1);
  assertEquals(errors[0].nodeId, "n");
  assert(
    errors[0].traceback.includes("ValueError: bad input in process"),
    errors[0].traceback,
  );
});

for (
  const [name, command, check] of [
    ["os._exit(3)", "exit", (e: ProcessCrashError) => e.exitCode === 3],
    ["a segfault", "segv", (e: ProcessCrashError) => e.signal === "SIGSEGV"],
  ] as const
) {
  Deno.test(`${name} in process() fails the session with ProcessCrashError and cleans up`, async () => {
    await using ex = executor();
    const session = await ex.createSession(single("crasher"), {
      ...modules,
      printLogs: false,
    });
    const iso = leftoversOf(session);
    await session.initialize();
    await session.send("in", text(command));
    const error = await assertRejects(async () => {
      for await (const _ of session.receive("out")) { /* nothing comes */ }
    }, ProcessCrashError);
    assert(check(error as ProcessCrashError), error.message);
    assertEquals((error as ProcessCrashError).nodeId, "n");
    await assertRejects(() => session.send("in", text("x")), ProcessCrashError);
    await expectGone(session);
    assertEquals(iso(), []);
  });
}

function leftoversOf(session: Session): () => string[] {
  // The isolation is private; find it through the spec files' folder.
  const prefix = `rmp${Deno.pid}x`;
  const before = new Set(
    [...Deno.readDirSync("/tmp/rmp")].map((e) => e.name).filter((n) =>
      n.startsWith(prefix)
    ),
  );
  void session;
  return () =>
    [...before].flatMap((p) =>
      leftovers({ prefix: p, root: `/tmp/rmp/${p}/` })
    );
}

Deno.test("kill -9 mid-stream rejects pending receive; a new session works right after", async () => {
  await using ex = executor();
  const session = await ex.createSession(single("echo"), {
    ...modules,
    printLogs: false,
  });
  await session.initialize();
  const pending = (async () => {
    for await (const _ of session.receive("out")) { /* wait */ }
  })();
  Deno.kill(session.status()[0].pid!, "SIGKILL");
  const error = await assertRejects(() => pending, ProcessCrashError);
  assertEquals((error as ProcessCrashError).signal, "SIGKILL");
  await expectGone(session);
  await using again = await ex.createSession(single("echo"), {
    ...modules,
    printLogs: false,
  });
  await again.initialize();
  await again.send("in", text("again"));
  for await (const s of again.receive("out")) {
    assertEquals((s.data as TextData).text, "again");
    break;
  }
});

Deno.test("an exception in initialize() rejects with NodeInitError and the traceback", async () => {
  await using ex = executor();
  const pipeline = new Pipeline()
    .addNode("init_raises", "bad")
    .addNode("echo", "good")
    .addInput("in", "bad", "in")
    .addInput("in", "good", "in")
    .addOutput("out", "good", "out");
  const session = await ex.createSession(pipeline, {
    ...modules,
    printLogs: false,
  });
  const error = await assertRejects(
    () => session.initialize(),
    NodeInitError,
    'Node "bad"',
  );
  assert((error as NodeInitError).traceback?.includes("model file is corrupt"));
  await expectGone(session);
});

Deno.test("an init that never ends is a NodeInitError after the timeout", async () => {
  await using ex = executor({ initTimeoutSecs: 2 });
  const session = await ex.createSession(single("init_hangs"), {
    ...modules,
    printLogs: false,
  });
  const error = await assertRejects(
    () => session.initialize(),
    NodeInitError,
    "within 2 s",
  );
  assert((error as NodeInitError).timedOut);
  await expectGone(session);
});

Deno.test("validation, limits and a missing Python fail before anything is spawned", async () => {
  await using ex = executor({ maxProcessesPerSession: 1 });
  await assertRejects(
    () => ex.createSession(single("no_such_type"), modules),
    PipelineValidationError,
    "no_such_type",
  );
  const two = new Pipeline().addNode("echo", "a").addNode("echo", "b").connect(
    "a",
    "out",
    "b",
    "in",
  )
    .addInput("in", "a", "in").addOutput("out", "b", "out");
  await assertRejects(
    () => ex.createSession(two, modules),
    ResourceLimitError,
    "max_processes_per_session is 1",
  );
  await using noPython = new MultiprocessExecutor({
    python: { executable: "/nonexistent/python3" },
  });
  const error = await assertRejects(
    () => noPython.createSession(single("echo"), modules),
    ProcessSpawnError,
  );
  assertEquals((error as ProcessSpawnError).path, "/nonexistent/python3");
});

Deno.test("Deno -> Python -> Python -> Deno at 1 B to 64 MiB, every byte checked", async () => {
  await using ex = executor();
  const pipeline = new Pipeline()
    .addNode("echo", "first")
    .addNode("echo", "second")
    .connect("first", "out", "second", "in")
    .addInput("in", "first", "in")
    .addOutput("out", "second", "out");
  await using session = await ex.createSession(pipeline, {
    ...modules,
    printLogs: false,
  });
  await session.initialize();
  const outputs = session.receive("out");
  for (const size of [1, 1024, 1 << 20, 10 << 20, 64 << 20]) {
    const payload = new Uint8Array(size);
    fillPattern(payload, size);
    const expected = await sha256(payload);
    await session.send("in", binary(payload));
    const next = await outputs.next();
    assert(!next.done);
    const data = next.value.data as { kind: string; data: Uint8Array };
    assertEquals(data.kind, "binary");
    assertEquals(data.data.length, size);
    assertEquals(await sha256(data.data), expected, `${size} bytes intact`);
  }
  await outputs.return();
});

Deno.test("several sessions at once stay isolated", async () => {
  await using ex = executor();
  const sessions = await Promise.all(
    [0, 1, 2].map(() =>
      ex.createSession(single("echo"), { ...modules, printLogs: false })
    ),
  );
  try {
    const prefixes = new Set(sessions.map((s) => s.isolation.prefix));
    assertEquals(prefixes.size, 3);
    await Promise.all(sessions.map((s) => s.initialize()));
    await Promise.all(
      sessions.map((s, i) => s.send("in", text(`session ${i}`))),
    );
    const got = await Promise.all(sessions.map(async (s) => {
      for await (const sample of s.receive("out")) {
        return (sample.data as TextData).text;
      }
    }));
    assertEquals(got, ["session 0", "session 1", "session 2"]);
    // A crash in one leaves the others running.
    Deno.kill(sessions[0].status()[0].pid!, "SIGKILL");
    await assertRejects(() =>
      sessions[0].send("in", text("x")).then(() =>
        sessions[0].receive("out").next()
      )
    );
    await sessions[1].send("in", text("still"));
    for await (const sample of sessions[1].receive("out")) {
      assertEquals((sample.data as TextData).text, "still");
      break;
    }
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
});

Deno.test("3000 paced round trips through an echo node: no wake-up is lost", async () => {
  // Each message waits for its echo, so every hop ends in a blocking wait on
  // both sides: a lost notification or bell would stall one of them.
  await using ex = executor();
  const session = await ex.createSession(single("echo"), {
    ...modules,
    printLogs: false,
  });
  await session.initialize();
  const out = session.receive("out");
  for (let i = 0; i < 3000; i++) {
    await session.send("in", text(String(i)));
    const data = await nextWithin(out, 5000, `the echo of message ${i}`);
    assertEquals((data as TextData).text, String(i));
  }
  await out.return();
  await expectGone(session);
});

Deno.test("Deno and a node fill messages in shared memory; unsent allocations give their chunks back", async () => {
  await using ex = executor({ channelCapacity: 4 });
  const session = await ex.createSession(single("inplace_gain"), {
    ...modules,
    printLogs: false,
  });
  const errors: string[] = [];
  session.addEventListener("error", (e) => {
    errors.push(String((e as CustomEvent<Error>).detail));
  });
  await session.initialize();
  const out = session.receive("out");
  const next = () => nextWithin(out, 10_000, "an output");
  const samples = Float32Array.from({ length: 960 }, (_, i) => i / 10);
  // Deno fills its input in shared memory, the node its output.
  const input = await session.allocate(
    "in",
    audio(new Float32Array(960), { sampleRate: 48000, channels: 2 }),
  );
  (input.samples as Float32Array).set(samples);
  await session.send("in", input);
  const doubled = await next() as AudioData;
  assertEquals(doubled.kind, "audio");
  assertEquals(doubled.channels, 2);
  assertEquals(
    Array.from(doubled.samples as Float32Array),
    Array.from(samples, (s) => Math.fround(s * 2)),
  );
  // Three times the capacity of allocations that are never sent.
  for (let i = 0; i < 12; i++) {
    await session.send("in", binary(new Uint8Array(1000)));
  }
  await session.send("in", text("still flowing"));
  assertEquals((await next() as TextData).text, "still flowing");
  assertEquals(errors, []);
  await out.return();
  await expectGone(session);
});
