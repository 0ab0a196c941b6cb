import {
  assert,
  assertEquals,
  assertRejects,
  assertThrows,
} from "./support/assert.ts";
import { bellDirectoryName } from "../data/bells.ts";
import { ChannelContext } from "../data/channel/mod.ts";
import {
  BackpressureTimeoutError,
  ChannelError,
  NativeLibraryError,
  WireFormatError,
} from "../errors.ts";
import { isolationEnv, leftovers } from "../data/isolation.ts";
import {
  binary,
  type BinaryData,
  encode,
  text,
  video,
  type VideoData,
} from "../data/runtime_data/mod.ts";
import { fillPattern, inside, sha256, shmMappings } from "./support/shm.ts";

function cpuTicks(): number {
  const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(
    " ",
  );
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
}

Deno.test("a loan is written in place and received in place, 1 B and 10 MiB", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("roundtrip", { capacity: 2 });
  using sub = channel.subscriber();
  using pub = channel.publisher();
  for (const size of [1, 10 * 1024 * 1024]) {
    const loan = pub.loan(size);
    const ranges = shmMappings(ctx.isolation.prefix);
    assert(inside(loan, ranges), "the loan lies in shared memory");
    fillPattern(loan, size);
    const expected = await sha256(loan);
    assertEquals(pub.send(), 1);
    using sample = await sub.receive({ timeoutMs: 5000 });
    assert(sample);
    assertEquals(sample.bytes.length, size);
    assert(
      inside(sample.bytes, shmMappings(ctx.isolation.prefix)),
      "the sample is read in place",
    );
    assertEquals(await sha256(sample.bytes), expected);
  }
});

Deno.test("tryPublish is false when full and true after a release; nothing is lost", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("credits", { capacity: 4 });
  using sub = channel.subscriber();
  using pub = channel.publisher();
  for (let i = 0; i < 4; i++) assert(pub.tryPublish(text(`m${i}`)));
  const held = [sub.tryReceive()!, sub.tryReceive()!];
  assert(
    !pub.tryPublish(text("overflow")),
    "full: every chunk is held or queued",
  );
  held[0].release();
  assert(pub.tryPublish(text("m4")));
  const got = [(held[1].data as { text: string }).text];
  held[1].release();
  for (let s = sub.tryReceive(); s; s = sub.tryReceive()) {
    got.push((s.data as { text: string }).text);
    s.release();
  }
  assertEquals(got, ["m1", "m2", "m3", "m4"]);
});

Deno.test("publish waits for space without blocking the event loop", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("waits", { capacity: 2 });
  using sub = channel.subscriber();
  using pub = channel.publisher({ publishTimeoutMs: 5000 });
  await pub.publish(text("a"));
  await pub.publish(text("b"));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  let sent = false;
  const third = pub.publish(text("c")).then(() => sent = true);
  await new Promise((r) => setTimeout(r, 200));
  assert(!sent, "the third publish waits while the channel is full");
  assert(
    ticks >= 10,
    `timers keep firing while publish waits (${ticks} ticks)`,
  );
  sub.tryReceive()!.release();
  await third;
  clearInterval(timer);
  assert(sent);
});

Deno.test("publish fails with BackpressureTimeoutError when nobody frees space", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("stalled", { capacity: 1 });
  using _sub = channel.subscriber();
  using pub = channel.publisher();
  await pub.publish(text("a"));
  const started = performance.now();
  const error = await assertRejects(
    () => pub.publish(text("b"), { timeoutMs: 300 }),
    BackpressureTimeoutError,
  );
  const waited = performance.now() - started;
  assert(waited >= 290 && waited < 3000, `waited ${waited} ms`);
  assertEquals((error as BackpressureTimeoutError).channel, "stalled");
});

Deno.test("an idle subscriber costs no CPU", async () => {
  await using ctx = await ChannelContext.create();
  using sub = ctx.channel("idle").subscriber();
  const before = cpuTicks();
  assertEquals(await sub.receive({ timeoutMs: 1000 }), null);
  const used = cpuTicks() - before; // ticks are 10 ms
  assert(used <= 5, `an idle second used ${used * 10} ms of CPU`);
});

Deno.test("a corrupt header is a WireFormatError and the subscriber keeps working", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("corrupt");
  using sub = channel.subscriber();
  using pub = channel.publisher();
  pub.loan(200).fill(0xab);
  pub.send();
  await pub.publish(text("after"));
  using bad = await sub.receive({ timeoutMs: 2000 });
  const e = assertThrows(
    () => bad!.data,
    WireFormatError,
    "magic is 0xabababab",
  );
  assertEquals((e as WireFormatError).reason, "bad_magic");
  using good = await sub.receive({ timeoutMs: 2000 });
  assertEquals((good!.data as { text: string }).text, "after");
});

Deno.test("every RuntimeData sent carries the port's delivery counter; a subscriber counts its gaps as lost", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("gaps");
  using sub = channel.subscriber();
  using pub = channel.publisher();
  const counters: number[] = [];
  const receive = async () => {
    using s = await sub.receive({ timeoutMs: 2000 });
    assert(s !== null);
    counters.push(
      new DataView(s.bytes.buffer, s.bytes.byteOffset).getUint32(12, true),
    );
  };
  await pub.publish(text("a"));
  await receive();
  await pub.publish(text("b"));
  await receive();
  assertEquals(counters, [1, 2]);
  assertEquals(sub.stats.lost, 0);
  // A raw message claiming counter 7 (a publisher whose 3..6 this reader
  // missed), then one that went back (a publisher that started over) and a
  // raw one without a counter: only the jump is a loss.
  for (const delivery of [7, 1, 0]) {
    const bytes = encode(text("raw"));
    new DataView(bytes.buffer).setUint32(12, delivery, true);
    pub.loan(bytes.length).set(bytes);
    pub.send();
    await receive();
  }
  assertEquals(counters, [1, 2, 7, 1, 0]);
  assertEquals(sub.stats.lost, 4);
});

Deno.test("oversized loans, double loans and closed ports are named errors", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("limits");
  const pub = channel.publisher({ maxPayloadBytes: 1024 });
  assertThrows(
    () => pub.loan(1025),
    ChannelError,
    "exceeds the 1024-byte limit",
  );
  assertThrows(() => pub.loan(0), RangeError);
  pub.loan(10);
  assertThrows(() => pub.loan(10), ChannelError, "already open");
  pub.discard();
  pub.close();
  assertThrows(
    () => pub.tryPublish(binary(new Uint8Array(1))),
    ChannelError,
    "closed",
  );
  assertThrows(() => ctx.channel("x", { capacity: 0 }), RangeError);
});

Deno.test("closing removes every file of the isolation", async () => {
  const ctx = await ChannelContext.create();
  const iso = ctx.isolation;
  const channel = ctx.channel("cleanup");
  const sub = channel.subscriber();
  const pub = channel.publisher();
  await pub.publish(binary(new Uint8Array(1 << 20)));
  const sample = await sub.receive({ timeoutMs: 2000 });
  assert(sample);
  assert(leftovers(iso).length > 0);
  await ctx.close();
  assertEquals(leftovers(iso), []);
  assertThrows(() => sample.bytes, ChannelError, "released");
});

Deno.test("a missing RMP_ICEORYX2_LIB library says to fix or unset it", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "import { nativeLibrary } from './data/native.ts'; nativeLibrary();",
    ],
    env: { RMP_ICEORYX2_LIB: "/nonexistent/librmp.so" },
    cwd: new URL("..", import.meta.url).pathname,
  }).output();
  assert(code !== 0);
  const message = new TextDecoder().decode(stderr);
  assert(message.includes("NativeLibraryError"), message);
  assert(message.includes("/nonexistent/librmp.so does not exist"), message);
  assert(message.includes("or unset it"), message);
  void NativeLibraryError;
});

Deno.test("bell directory names match Python's", () => {
  // The same vectors as python/tests/test_bells.py.
  const vectors: Array<[string, string]> = [
    ["asr.out", "asr%2Eout"],
    ["a/b", "a%2Fb"],
    ["tts_in-0", "tts_in-0"],
    ["ü", "%C3%BC"],
    ["..", "%2E%2E"],
  ];
  for (const [name, encoded] of vectors) {
    assertEquals(bellDirectoryName(name), encoded);
  }
});

const python = new URL("../.venv/bin/python", import.meta.url).pathname;

/** Runs a Python publisher of `count` text messages on `ctx`'s isolation. */
async function pythonPublishes(
  ctx: ChannelContext,
  channel: string,
  count: number,
): Promise<void> {
  const script = `
import sys
from remotemedia_multiprocess import Channel, IoxEnv, RuntimeData
env = IoxEnv()
ch = Channel.open_or_create(env, sys.argv[1], capacity=4)
pub = ch.publisher()
for i in range(int(sys.argv[2])):
    pub.publish(RuntimeData.text(str(i)), timeout=10.0)
ch.close()
env.close()
`;
  const out = await new Deno.Command(python, {
    args: ["-c", script, channel, String(count)],
    env: isolationEnv(ctx.isolation),
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
}

async function receiveTexts(
  sub: ReturnType<ReturnType<ChannelContext["channel"]>["subscriber"]>,
  count: number,
): Promise<string[]> {
  const got: string[] = [];
  while (got.length < count) {
    using sample = await sub.receive({ timeoutMs: 10_000 });
    if (!sample) break;
    got.push((sample.data as { text: string }).text);
  }
  return got;
}

const expected = (n: number) => Array.from({ length: n }, (_, i) => String(i));

Deno.test("a Python publisher wakes a Deno subscriber through its bell", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("asr.out", { capacity: 4 });
  const sub = channel.subscriber();
  const link = `${ctx.isolation.root}bells/asr%2Eout`;
  assertEquals([...Deno.readDirSync(link)].length, 1);
  const [got] = await Promise.all([
    receiveTexts(sub, 500),
    pythonPublishes(ctx, "asr.out", 500),
  ]);
  assertEquals(got, expected(500));
  const stats = ctx.bellStats;
  assertEquals(stats.accepted, 1);
  assert(stats.rings > 0, "no bell rang");
  sub.close();
  assertEquals([...Deno.readDirSync(link)], []);
});

Deno.test("without its bell a Deno subscriber still gets every message", async () => {
  await using ctx = await ChannelContext.create();
  const sub = ctx.channel("no-bell", { capacity: 4 }).subscriber();
  // A stale or unreachable bell must cost latency only: remove the link.
  Deno.removeSync(`${ctx.isolation.root}bells`, { recursive: true });
  const [got] = await Promise.all([
    receiveTexts(sub, 300),
    pythonPublishes(ctx, "no-bell", 300),
  ]);
  assertEquals(got, expected(300));
  assertEquals(ctx.bellStats.accepted, 0);
});

Deno.test("allocate: the payload is written in shared memory and published in place", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("alloc", { capacity: 2 });
  using sub = channel.subscriber();
  using pub = channel.publisher();
  const template = video(new Uint8Array(64 * 48 * 3), {
    width: 64,
    height: 48,
    pixelFormat: "rgb24",
  });
  const frame = await pub.allocate(template);
  assert(inside(frame.data, shmMappings(ctx.isolation.prefix)));
  frame.data.fill(9);
  frame.frameNumber = 7n;
  await pub.publish(frame);
  using sample = await sub.receive({ timeoutMs: 2000 });
  const got = sample!.data as VideoData;
  assertEquals(got.frameNumber, 7n);
  assertEquals(got.data.every((b) => b === 9), true);
  // The subscriber reads the very memory the producer wrote (never do this
  // after publishing in real code): nothing was copied.
  frame.data[0] = 77;
  assertEquals(got.data[0], 77);
  assertEquals(pub.stats.held, 0);
});

Deno.test("allocate: a replaced payload is copied, discard gives the loan back, text is refused", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("alloc2", { capacity: 2 });
  using sub = channel.subscriber();
  using pub = channel.publisher();
  for (let i = 0; i < 5; i++) {
    await pub.allocate(binary(new Uint8Array(32)));
    pub.discard(); // more than capacity: each discard returns the chunk
  }
  const msg = await pub.allocate(binary(new Uint8Array(4)));
  msg.data = new Uint8Array([1, 2, 3, 4]);
  await pub.publish(msg);
  using sample = await sub.receive({ timeoutMs: 2000 });
  assertEquals([...(sample!.data as { data: Uint8Array }).data], [1, 2, 3, 4]);
  await assertRejects(() => pub.allocate(text("x")), TypeError, "text");
});

Deno.test("a sample never released gives its chunk back when garbage-collected", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      "tests/support/leak_probe.ts",
    ],
    cwd: new URL("..", import.meta.url).pathname,
  }).output();
  const err = new TextDecoder().decode(stderr);
  assertEquals(code, 0, err);
  const lines = new TextDecoder().decode(stdout).trim().split("\n");
  assertEquals(JSON.parse(lines[lines.length - 1]), {
    heldAfterLeak: 2,
    fullBeforeGc: true,
    heldAfterGc: 0,
    loanAfterGc: true,
    heldWhileDataReachable: 1,
    payload: 3,
    heldAfterDataDropped: 0,
    heldWhilePayloadReachable: 1,
    payloadAfterGc: 6,
    heldAfterPayloadDropped: 0,
    heldWhileBytesReachable: 1,
    bytesAfterGc: true,
    heldAfterBytesDropped: 0,
    heldAfterReleased: 0,
    last: 5,
  });
});

Deno.test("openChannel opens off the event loop a channel that carries data like channel()", async () => {
  await using ctx = await ChannelContext.create();
  const [a, b] = await Promise.all([
    ctx.openChannel("async-a", { capacity: 4 }),
    ctx.openChannel("async-b"),
  ]);
  assertEquals([a.name, b.name], ["async-a", "async-b"]);
  using sub = a.subscriber();
  using pub = a.publisher();
  await pub.publish(binary(new Uint8Array([1, 2, 3])));
  using sample = await sub.receive({ timeoutMs: 5000 });
  assertEquals((sample?.data as BinaryData).data, new Uint8Array([1, 2, 3]));
  await assertRejects(
    () => ctx.openChannel("async-c", { capacity: 0 }),
    RangeError,
    "Invalid capacity 0",
  );
});

Deno.test("a ChannelContext closed while openChannel is in flight waits for it, and the open fails with ChannelError", async () => {
  const ctx = await ChannelContext.create();
  const opening = ctx.openChannel("closing");
  const closing = ctx.close();
  await assertRejects(() => opening, ChannelError, "closed meanwhile");
  await closing;
  assertEquals(leftovers(ctx.isolation), []);
});
