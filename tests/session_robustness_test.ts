/**
 * Issue 7's control-plane defects, each against real node processes: unheard
 * node errors, huge log lines, crashes before connecting, malformed messages,
 * and the lifecycle edges of initialize(), close() and timeouts.
 */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import {
  alive,
  executor,
  modules,
  nextWithin,
  settleWithin,
  single,
  waitUntil,
} from "./support/sessions.ts";
import {
  NodeInitError,
  NodeProcessError,
  ProcessCrashError,
  ReceiveTimeoutError,
} from "../errors.ts";
import { MAX_LOG_LINE_BYTES } from "../control/node_process.ts";
import { Pipeline } from "../pipeline/mod.ts";
import {
  binary,
  type RuntimeData,
  text,
  type TextData,
} from "../data/runtime_data/mod.ts";
import type { LogEvent } from "../control/session.ts";

/** Runs `fn` with console.error collected instead of printed. */
async function collectingStderr<T>(
  fn: (lines: string[]) => Promise<T>,
): Promise<T> {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    return await fn(lines);
  } finally {
    console.error = original;
  }
}

Deno.test("a node error nobody listens to is printed with node id, message and traceback", async () => {
  await collectingStderr(async (lines) => {
    await using ex = executor();
    await using session = await ex.createSession(single("crasher"), {
      ...modules,
      printLogs: false,
    });
    await session.initialize();
    const outputs = session.receive("out");
    await session.send("in", text("raise"));
    await session.send("in", text("after"));
    const next = await nextWithin(outputs, 10_000, "the echo after the error");
    assertEquals((next as TextData).text, "after");
    // The error travels on the control socket, the echo through shared
    // memory: either may come first.
    await waitUntil(() => lines.some((l) => l.includes("Unhandled")), 5000);
    const printed = lines.join("\n");
    assert(
      printed.includes('Unhandled NodeProcessError in node "n"'),
      `printed: ${printed}`,
    );
    assert(printed.includes("ValueError: bad input in process"), printed);
    assert(printed.includes("Traceback"), `no traceback in: ${printed}`);
  });
});

Deno.test("a heard node error is not printed; once listeners count once; onError hears too", async () => {
  await collectingStderr(async (lines) => {
    await using ex = executor();
    const viaOption: NodeProcessError[] = [];
    await using session = await ex.createSession(single("crasher"), {
      ...modules,
      printLogs: false,
      onError: (e) => viaOption.push(e),
    });
    const heard: NodeProcessError[] = [];
    session.addEventListener("error", (e) => {
      heard.push((e as CustomEvent<NodeProcessError>).detail);
    });
    await session.initialize();
    const outputs = session.receive("out");
    await session.send("in", text("raise"));
    await session.send("in", text("after"));
    await nextWithin(outputs, 10_000, "the echo after the error");
    await waitUntil(() => heard.length > 0, 5000);
    assertEquals(heard.length, 1);
    assertEquals(viaOption.length, 1);
    assertEquals(heard[0].nodeId, "n");
    assert(heard[0] instanceof NodeProcessError);
    assert(!lines.join("\n").includes("Unhandled"), lines.join("\n"));
  });
  await collectingStderr(async (lines) => {
    await using ex = executor();
    await using session = await ex.createSession(single("crasher"), {
      ...modules,
      printLogs: false,
    });
    let heard = 0;
    session.addEventListener("error", () => heard++, { once: true });
    await session.initialize();
    const outputs = session.receive("out");
    for (const t of ["raise", "raise", "after"]) {
      await session.send("in", text(t));
    }
    await nextWithin(outputs, 10_000, "the echo after the errors");
    await waitUntil(() => lines.some((l) => l.includes("Unhandled")), 5000);
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(heard, 1);
    const unheard = lines.filter((l) => l.includes("Unhandled"));
    assertEquals(unheard.length, 1, lines.join("\n"));
  });
});

Deno.test("receive() takes a timeout and an abort signal", async () => {
  await using ex = executor();
  await using session = await ex.createSession(single("echo"), {
    ...modules,
    printLogs: false,
  });
  await session.initialize();
  const started = performance.now();
  const timedOut = await settleWithin(
    session.receive("out", { timeoutMs: 200 }).next(),
    5000,
    "receive with timeoutMs",
  );
  assertEquals(timedOut.status, "rejected");
  const error = (timedOut as PromiseRejectedResult).reason;
  assert(error instanceof ReceiveTimeoutError, String(error));
  assertEquals(error.output, "out");
  assert(performance.now() - started >= 190);

  const controller = new AbortController();
  const waiting = session.receive("out", { signal: controller.signal }).next();
  setTimeout(() => controller.abort(new Error("user stop")), 50);
  const aborted = await settleWithin(waiting, 5000, "receive with a signal");
  assertEquals(aborted.status, "rejected");
  assertEquals((aborted as PromiseRejectedResult).reason.message, "user stop");

  // Still usable afterwards: nothing was lost on the way.
  await session.send("in", text("hi"));
  const got = await nextWithin(session.receive("out"), 10_000, "the echo");
  assertEquals((got as TextData).text, "hi");
});

Deno.test("a 32 MB line without newlines is split into bounded parts, quickly", async () => {
  await using ex = executor();
  const events: LogEvent[] = [];
  await using session = await ex.createSession(single("line_printer"), {
    ...modules,
    printLogs: false,
  });
  session.addEventListener("log", (e) => {
    const detail = (e as CustomEvent<LogEvent>).detail;
    if (detail.stream === "stdout") events.push(detail);
  });
  await session.initialize();
  const n = 32 * 1024 * 1024;
  const started = performance.now();
  await session.send("in", text(String(n)));
  const echo = await nextWithin(session.receive("out"), 10_000, "the echo");
  assertEquals((echo as TextData).text, String(n));
  // The output arrives after the line is written; the last part may still be
  // on its way through the pipe.
  await waitUntil(
    () => events.reduce((sum, e) => sum + e.line.length, 0) >= n,
    10_000,
  );
  const took = performance.now() - started;
  assertEquals(events.reduce((sum, e) => sum + e.line.length, 0), n);
  assert(events.every((e) => e.line.length <= MAX_LOG_LINE_BYTES));
  assertEquals(events.length, Math.ceil(n / MAX_LOG_LINE_BYTES));
  assert(events.slice(0, -1).every((e) => e.continued));
  assert(!events.at(-1)!.continued);
  assert(events[1].line.startsWith("6789"), events[1].line.slice(0, 10));
  assert(took < 8000, `took ${took} ms`);
});

Deno.test("a node killed before it connects is detected at once", async () => {
  await using ex = executor();
  const session = await ex.createSession(single("echo"), {
    ...modules,
    printLogs: false,
  });
  const pid = session.status()[0].pid!;
  const killedAt = performance.now();
  Deno.kill(pid, "SIGKILL");
  const result = await settleWithin(session.initialize(), 5000, "initialize");
  const detectedMs = performance.now() - killedAt;
  assertEquals(result.status, "rejected");
  const error = (result as PromiseRejectedResult).reason;
  assert(error instanceof ProcessCrashError, String(error));
  assertEquals(error.signal, "SIGKILL");
  assert(detectedMs < 250, `detected after ${detectedMs.toFixed(0)} ms`);
});

Deno.test("send() refuses a message whose data does not fit its kind, before sending", async () => {
  await using ex = executor();
  await using session = await ex.createSession(single("echo"), {
    ...modules,
    printLogs: false,
  });
  await session.initialize();
  const bad = [
    { kind: "binary", data: "str" },
    { kind: "text", text: "no bytes" },
    { kind: "audio", samples: [0, 1], sampleRate: 16000, channels: 1 },
    { kind: "video", data: null, width: 1, height: 1, pixelFormat: "gray8" },
    { kind: "nothing" },
  ];
  for (const message of bad) {
    await assertRejects(
      () => session.send("in", message as unknown as RuntimeData),
      TypeError,
      "Cannot encode a message of kind",
    );
  }
  await session.send("in", binary(new Uint8Array([1, 2, 3])));
  const got = await nextWithin(session.receive("out"), 10_000, "the echo");
  assertEquals([...(got as { data: Uint8Array }).data], [1, 2, 3]);
});

Deno.test("initialize() rejects only once every process of the session is stopped", async () => {
  await using ex = executor();
  const pipeline = new Pipeline()
    .addNode("init_raises", "bad")
    .addNode("init_hangs", "slow")
    .addInput("in", "bad", "in")
    .connect("bad", "out", "slow", "in")
    .addOutput("out", "slow", "out");
  const session = await ex.createSession(pipeline, {
    ...modules,
    printLogs: false,
  });
  const pids = session.status().map((s) => s.pid!);
  const result = await settleWithin(session.initialize(), 20_000, "init");
  assertEquals(result.status, "rejected");
  assert((result as PromiseRejectedResult).reason instanceof NodeInitError);
  for (const pid of pids) assert(!alive(pid), `pid ${pid} still runs`);
});

Deno.test("an init timeout names the node still loading and its last progress", async () => {
  await using ex = executor({ initTimeoutSecs: 2 });
  const pipeline = new Pipeline()
    .addNode("echo", "quick")
    .addNode("slow_loader", "slow", { seconds: 60, steps: 60 })
    .addInput("in", "quick", "in")
    .connect("quick", "out", "slow", "in")
    .addOutput("out", "slow", "out");
  const session = await ex.createSession(pipeline, {
    ...modules,
    printLogs: false,
  });
  const result = await settleWithin(session.initialize(), 20_000, "init");
  assertEquals(result.status, "rejected");
  const error = (result as PromiseRejectedResult).reason;
  assert(error instanceof NodeInitError, String(error));
  assertEquals(error.nodeId, "slow");
  assert(error.message.includes('"slow"'), error.message);
  assert(!error.message.includes('"quick"'), error.message);
  assert(
    /last progress: \d+% "(loading model|loaded \d+\/60 shards)"/.test(
      error.message,
    ),
    error.message,
  );
});

Deno.test("close() and abort during a node's initialize() do not wait out the grace period", async () => {
  for (const how of ["close", "abort"] as const) {
    await using ex = executor({ cleanupGracePeriodSecs: 10 });
    const controller = new AbortController();
    const loading = Promise.withResolvers<void>();
    const session = await ex.createSession(single("init_hangs"), {
      ...modules,
      printLogs: false,
      signal: controller.signal,
      onProgress: (p) => p.phase === "loading" && loading.resolve(),
    });
    session.initialize().catch(() => {});
    // The runner said hello; give it time to be inside initialize().
    await settleWithin(loading.promise, 10_000, "the node loading");
    await new Promise((r) => setTimeout(r, 300));
    const pid = session.status()[0].pid!;
    const started = performance.now();
    if (how === "close") await session.close();
    else {
      controller.abort();
      await settleWithin(
        new Promise((r) => session.addEventListener("closed", r)),
        10_000,
        "closed after abort",
      );
    }
    const took = performance.now() - started;
    assert(took < 2000, `${how} took ${took.toFixed(0)} ms`);
    assert(!alive(pid), "the node process is gone");
    // An awaiting initialize() is cancelled: the runner exits by itself.
    assertEquals(session.status()[0].exit, { code: 0, signal: null });
  }
});

Deno.test("the session's publish timeout is publishTimeoutSecs (default 5 s), not the init timeout", async () => {
  assertEquals(executor().config.publishTimeoutSecs, 5);
  await using ex = executor({ channelCapacity: 1, publishTimeoutSecs: 0.5 });
  await using session = await ex.createSession(
    single("cpu_burn", { ms: 3000 }),
    { ...modules, printLogs: false },
  );
  await session.initialize();
  const spec = JSON.parse(
    Deno.readTextFileSync(`${session.isolation.root}spec-n.json`),
  );
  assertEquals(spec.publish_timeout_secs, 0.5);
  // The node holds the first message for 3 s and the channel has one chunk:
  // a send waits for space, then fails after the publish timeout.
  await session.send("in", text("first"));
  const started = performance.now();
  let sent = 0;
  const result = await settleWithin(
    (async () => {
      while (true) {
        await session.send("in", text("more"));
        sent++;
      }
    })(),
    2500,
    "the blocked send",
  );
  const took = performance.now() - started;
  assertEquals(result.status, "rejected");
  const error = (result as PromiseRejectedResult).reason;
  assertEquals(error.name, "BackpressureTimeoutError");
  assert(sent <= 1, `${sent} sends went through`);
  assert(took >= 450 && took < 2000, `failed after ${took.toFixed(0)} ms`);
});

Deno.test("a crash report carries the node's last stderr lines", async () => {
  await using ex = executor();
  await using session = await ex.createSession(single("crasher"), {
    ...modules,
    printLogs: false,
  });
  await session.initialize();
  const outputs = session.receive("out");
  await session.send("in", text("stderr-exit"));
  const result = await settleWithin(outputs.next(), 10_000, "the crash");
  assertEquals(result.status, "rejected");
  const error = (result as PromiseRejectedResult).reason;
  assert(error instanceof ProcessCrashError, String(error));
  assertEquals(error.exitCode, 3);
  assertEquals(error.stderrTail.at(-1), "disk full while writing the cache");
  assert(error.message.includes("disk full"), error.message);
});
