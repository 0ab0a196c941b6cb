/**
 * Issue 7: a publisher's sent samples reach every subscriber, whatever the
 * sizes (a publisher that needs bigger chunks must not drop what its readers
 * have not taken yet). Regression tests, then a randomized no-loss test over
 * every kind of hop. Nodes: tests/nodes/stress_nodes.py (its docstring
 * describes the numbered, checksummed stream both sides use).
 *
 * Rerun the randomized test with the seed it printed:
 * `RMP_NO_LOSS_SEED=<seed> deno test -A tests/no_loss_test.ts`.
 */
import { crc32 } from "node:zlib";
import { assert, assertEquals } from "./support/assert.ts";
import { rng } from "./support/random.ts";
import { ChannelContext } from "../data/channel/mod.ts";
import { isolationEnv } from "../data/isolation.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import { Pipeline } from "../pipeline/mod.ts";
import {
  binary,
  type BinaryData,
  json,
  type JsonData,
  type RuntimeData,
  video,
  type VideoData,
} from "../data/runtime_data/mod.ts";
import type { Session, SessionStats } from "../control/session.ts";
import { fillPattern } from "./support/shm.ts";
import { nextWithin } from "./support/sessions.ts";

const root = new URL("..", import.meta.url).pathname;
const modules = {
  modules: ["demo_nodes", "stress_nodes"],
  modulePaths: [`${root}examples/nodes`, `${root}tests/nodes`],
  printLogs: false,
};
const python = `${root}.venv/bin/python`;

/** Every wait of this file is bounded by this (a lost message fails, never hangs). */
const WAIT_MS = 20_000;

function executor(channelCapacity = 8): MultiprocessExecutor {
  return new MultiprocessExecutor({
    python: { executable: python },
    initTimeoutSecs: WAIT_MS / 1000, // also the nodes' publish timeout
    channelCapacity,
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function patterned(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  fillPattern(bytes, seed);
  return bytes;
}

// ------------------------------------------------------------ regressions

Deno.test("a pass-through node fed 1000, 1000, 1000, 10 000 B delivers all four to a late reader", async () => {
  await using ex = executor();
  const pipeline = new Pipeline().addNode("echo", "n").addInput("in", "n", "in")
    .addOutput("out", "n", "out");
  await using session = await ex.createSession(pipeline, modules);
  await session.initialize();
  const sizes = [1000, 1000, 1000, 10_000];
  for (const [i, size] of sizes.entries()) {
    await session.send("in", binary(patterned(size, i + 1)));
  }
  await sleep(500); // the reader starts late: the node has outgrown its chunks
  const outputs = session.receive("out");
  for (const [i, size] of sizes.entries()) {
    const data = await nextWithin(outputs, 5000, `message ${i + 1}`);
    assertEquals((data as BinaryData).data, patterned(size, i + 1));
  }
  await outputs.return();
});

Deno.test("a Deno -> node -> node -> Deno chain delivers all 48 messages whose sizes jump between 7 B and 3 MB", async () => {
  await using ex = executor();
  const pipeline = new Pipeline().addNode("echo", "a").addNode("echo", "b")
    .addInput("in", "a", "in").connect("a", "out", "b", "in")
    .addOutput("out", "b", "out");
  await using session = await ex.createSession(pipeline, modules);
  await session.initialize();
  // Each publisher outgrows its chunks four times with small messages
  // queued behind, then sizes alternate at random.
  const sizes = [10_000, 100_000, 1_000_000, 3_000_000].flatMap((
    big,
  ) => [7, 7, 7, big]);
  const random = rng(48);
  while (sizes.length < 48) {
    sizes.push(random() < 0.5 ? 7 : 3_000_000);
  }
  const sending = (async () => {
    for (const [i, size] of sizes.entries()) {
      await session.send("in", binary(patterned(size, i + 1)));
    }
  })();
  sending.catch(() => {}); // awaited below; a failed read closes the session first
  const outputs = session.receive("out");
  const got: number[] = [];
  for (const [i, size] of sizes.entries()) {
    const data = await nextWithin(outputs, 5000, `message ${i + 1}`)
      .catch((e) => {
        throw new Error(`${e.message} (got ${got.length}: ${got})`);
      });
    assertEquals(
      (data as BinaryData).data.length,
      size,
      `message ${i + 1} (after ${got.length} in order)`,
    );
    assertEquals((data as BinaryData).data, patterned(size, i + 1));
    got.push(size);
    // A live reader that takes a while over big messages (holding them).
    if (size > 4096) await sleep(50);
  }
  await sending;
  await outputs.return();
});

Deno.test("a Deno publisher that outgrows its chunks waits for three late subscribers", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("grow-fan", { capacity: 4 });
  // Created before the publisher and idle while it sends.
  const subs = [
    channel.subscriber(),
    channel.subscriber(),
    channel.subscriber(),
  ];
  using pub = channel.publisher({ publishTimeoutMs: 5000 });
  const sizes = [1000, 1000, 1000, 10_000, 7, 3_000_000, 5, 100_000];
  const sending = (async () => {
    for (const [i, size] of sizes.entries()) {
      await pub.publish(binary(patterned(size, i + 1)));
    }
  })();
  await sleep(200);
  assertEquals(pub.stats.messages, 3, "the fourth waits for bigger chunks");
  const readers = subs.map(async (sub) => {
    const got: number[] = [];
    for (const [i, size] of sizes.entries()) {
      using sample = await sub.receive({ timeoutMs: 5000 });
      assert(sample, `message ${i + 1} (got ${got})`);
      assertEquals((sample.data as BinaryData).data, patterned(size, i + 1));
      got.push(size);
    }
  });
  await Promise.all([sending, ...readers]);
  for (const sub of subs) sub.close();
});

const LATE_PYTHON_READER = `
import json, sys, time, zlib
from remotemedia_multiprocess import Channel, IoxEnv
env = IoxEnv()
ch = Channel.open_or_create(env, sys.argv[1], capacity=4)
sub = ch.subscriber()
print("ready", flush=True)
time.sleep(0.3)  # starts late: the publisher has outgrown its chunks
got = []
for _ in range(int(sys.argv[2])):
    rd = sub.receive(timeout=5)
    if rd is None:
        break
    got.append([rd.nbytes, zlib.crc32(rd.payload)])
    rd.release()
print(json.dumps(got), flush=True)
ch.close()
env.close()
`;

Deno.test("a Deno publisher that outgrows its chunks waits for two late Python subscribers", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("grow-py", { capacity: 4 });
  const sizes = [1000, 1000, 1000, 10_000, 7, 3_000_000, 5, 100_000];
  const readers = [1, 2].map(() =>
    new Deno.Command(python, {
      args: ["-c", LATE_PYTHON_READER, "grow-py", String(sizes.length)],
      env: isolationEnv(ctx.isolation),
      stdout: "piped",
      stderr: "inherit",
    }).spawn()
  );
  const lines = readers.map((child) => lineReader(child.stdout));
  for (const next of lines) assertEquals(await next(), "ready");
  using pub = channel.publisher({ publishTimeoutMs: 5000 });
  const payloads = sizes.map((size, i) => patterned(size, i + 1));
  for (const payload of payloads) await pub.publish(binary(payload));
  const want = payloads.map((p) => [p.length, crc32(p)]);
  for (const [i, next] of lines.entries()) {
    assertEquals(JSON.parse(await next()), want, `reader ${i + 1}`);
    assert((await readers[i].status).success);
  }
});

/** Reads `stream` line by line; each call returns the next line (at most WAIT_MS). */
function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return async () => {
    const deadline = performance.now() + WAIT_MS;
    while (!buffered.includes("\n")) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const chunk = await Promise.race([
        reader.read(),
        new Promise<null>((r) => {
          timer = setTimeout(() => r(null), deadline - performance.now());
        }),
      ]);
      clearTimeout(timer);
      assert(chunk && !chunk.done, `no line within ${WAIT_MS} ms`);
      buffered += chunk.value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
}

// ------------------------------------------------------------- randomized

/** Rerun with the seed a failure printed; else a new one every run. */
const SEED = Number(
  Deno.env.get("RMP_NO_LOSS_SEED") ?? Math.floor(Math.random() * 2 ** 31),
);
const MESSAGES = 10_000;
// Payload sizes: log-uniform on [1 B, 64 KiB], or with probability BIG_P
// log-uniform on [64 KiB, 16 MiB - 128 B] (so a sample, 128 B header
// included, fits 16 MiB chunks). About 200 jumps to big messages per hop,
// ~65 KB per message on average: every power-of-two growth happens with
// small messages queued behind, and a hop moves ~650 MB.
const SMALL_MAX = 64 * 1024;
const BIG_MAX = 16 * 1024 * 1024 - 128;
const BIG_P = 0.02;
// Every reader pauses (holding the message) with probability PAUSE_P, for
// up to PAUSE_MS: its publisher fills the channel meanwhile.
const PAUSE_P = 0.01;
const PAUSE_MS = 10;

function randomSize(random: () => number): number {
  const [lo, hi] = random() < BIG_P ? [SMALL_MAX, BIG_MAX] : [1, SMALL_MAX];
  const log = Math.log(lo) + random() * (Math.log(hi + 1) - Math.log(lo));
  return Math.min(hi, Math.floor(Math.exp(log)));
}

/** Random bytes that payloads are sliced from. */
let pool: Uint8Array | undefined;
function randomPool(): Uint8Array {
  if (!pool) {
    const words = new Uint32Array((BIG_MAX + (1 << 20)) >>> 2);
    const random = rng(0x5eed);
    for (let i = 0; i < words.length; i++) {
      words[i] = random() * 4294967296;
    }
    pool = new Uint8Array(words.buffer);
  }
  return pool;
}

/** The end marker of a stream (see tests/nodes/stress_nodes.py). */
interface End {
  end: number;
  bytes: number;
  crc_sum: number;
  hops?: Report[];
}

/** What a reader found. */
interface Report {
  reader: string;
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  totals_match: boolean;
  errors: string[];
}

/** The same checks as stress_nodes.Checker. */
class Checker {
  received = 0;
  duplicated = 0;
  reordered = 0;
  corrupted = 0;
  bytes = 0;
  crcSum = 0;
  last = 0;
  readonly seen = new Set<number>();
  readonly errors: string[] = [];

  constructor(readonly name: string) {}

  #error(message: string): void {
    if (this.errors.length < 10) this.errors.push(message);
  }

  check(data: RuntimeData): void {
    const seq = Number(data.sequence);
    this.received++;
    const payload = (data as VideoData).data ?? new Uint8Array(0);
    const crc = crc32(payload);
    const frame = (data as VideoData).frameNumber;
    if (data.kind !== "video" || frame !== (BigInt(seq) << 32n | BigInt(crc))) {
      this.corrupted++;
      this.#error(`#${seq}: frame_number ${frame}, payload crc ${crc}`);
    }
    this.bytes += payload.length;
    this.crcSum += crc;
    if (this.seen.has(seq)) {
      this.duplicated++;
      this.#error(`#${seq} again after #${this.last}`);
    } else if (seq < this.last) {
      this.reordered++;
      this.#error(`#${seq} after #${this.last}`);
    }
    this.seen.add(seq);
    this.last = Math.max(this.last, seq);
  }

  report(end: End): Report {
    let unique = 0;
    for (let i = 1; i <= end.end; i++) if (this.seen.has(i)) unique++;
    return {
      reader: this.name,
      expected: end.end,
      received: this.received,
      lost: end.end - unique,
      duplicated: this.duplicated,
      reordered: this.reordered,
      corrupted: this.corrupted,
      totals_match: this.bytes === end.bytes && this.crcSum === end.crc_sum,
      errors: this.errors,
    };
  }
}

/** Sends the numbered stream on pipeline input `input`. */
async function writeStream(
  session: Session,
  input: string,
  seed: number,
): Promise<void> {
  const random = rng(seed);
  const bytes = randomPool();
  let total = 0;
  let crcSum = 0;
  for (let seq = 1; seq <= MESSAGES; seq++) {
    const n = randomSize(random);
    const at = Math.floor(random() * (bytes.length - n + 1));
    const payload = bytes.subarray(at, at + n);
    const crc = crc32(payload);
    total += n;
    crcSum += crc;
    await session.send(
      input,
      video(payload, {
        width: n,
        height: 1,
        pixelFormat: "gray8",
        frameNumber: BigInt(seq) << 32n | BigInt(crc),
        sequence: BigInt(seq),
      }),
    );
  }
  await session.send(
    input,
    json({ end: MESSAGES, bytes: total, crc_sum: crcSum }),
  );
}

/** Has a stress_source node send the numbered stream. */
async function commandSource(session: Session, seed: number): Promise<void> {
  await session.send(
    "cmd",
    json({
      count: MESSAGES,
      seed,
      big_p: BIG_P,
      small_max: SMALL_MAX,
      big_max: BIG_MAX,
    }),
  );
}

/** Reads and checks the numbered stream on pipeline output `output`,
 * pausing at random while it holds a message. */
async function readStream(
  session: Session,
  output: string,
  seed: number,
): Promise<Report[]> {
  const checker = new Checker(`deno:${output}`);
  const random = rng(seed);
  const outputs = session.receive(output);
  while (true) {
    const data = await nextWithin(
      outputs,
      WAIT_MS,
      `a message after #${checker.last} on "${output}"`,
    );
    if (data.kind === "json") {
      await outputs.return();
      const end = (data as JsonData).value as End;
      return [...end.hops ?? [], checker.report(end)];
    }
    checker.check(data);
    if (random() < PAUSE_P) await sleep(random() * PAUSE_MS);
  }
}

/** How many messages the session's nodes have taken and sent so far. */
function progress(stats: SessionStats): number {
  return stats.processes.reduce(
    (n, p) => n + (p.received ?? 0) + (p.sent ?? 0),
    0,
  );
}

/** The reports a stress_sink sends on pipeline output `output` after the
 * whole stream: waits as long as the nodes make progress, failing once
 * they made none for WAIT_MS. */
async function readReport(session: Session, output: string): Promise<Report[]> {
  const outputs = session.receive(output);
  const next = outputs.next();
  let last = -1;
  let lastAt = performance.now();
  while (true) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const got = await Promise.race([
      next,
      new Promise<null>((r) => timer = setTimeout(() => r(null), 1000)),
    ]);
    clearTimeout(timer);
    if (got) {
      assert(!got.done, `the outputs ended before the report on "${output}"`);
      const hops = ((got.value.data as JsonData).value as { hops: Report[] })
        .hops;
      await outputs.return();
      return hops;
    }
    const stats = await session.stats();
    const now = progress(stats);
    if (now !== last) [last, lastAt] = [now, performance.now()];
    assert(
      performance.now() - lastAt < WAIT_MS,
      `no progress for ${WAIT_MS} ms and no report on "${output}": ${
        JSON.stringify(stats)
      }`,
    );
  }
}

function readerConfig(seed: number): Record<string, number> {
  return { seed, pause_p: PAUSE_P, pause_ms: PAUSE_MS };
}

interface Hop {
  name: string;
  pipeline(seed: number): Pipeline;
  run(session: Session, seed: number): Promise<Report[][]>;
  readers: number;
}

const hops: Hop[] = [
  {
    name: "Deno -> node",
    readers: 1,
    pipeline: (seed) =>
      new Pipeline().addNode("stress_sink", "sink", readerConfig(seed + 1))
        .addInput("in", "sink", "in").addOutput("report", "sink", "out"),
    run: (session, seed) =>
      Promise.all([
        writeStream(session, "in", seed).then(() => []),
        readReport(session, "report"),
      ]),
  },
  {
    name: "node -> Deno",
    readers: 1,
    pipeline: () =>
      new Pipeline().addNode("stress_source", "source")
        .addInput("cmd", "source", "in").addOutput("data", "source", "out"),
    run: (session, seed) =>
      Promise.all([
        commandSource(session, seed).then(() => []),
        readStream(session, "data", seed + 1),
      ]),
  },
  {
    name: "node -> node",
    readers: 2, // the pass-through and the sink
    pipeline: (seed) =>
      new Pipeline().addNode("stress_source", "source")
        .addNode("stress_pass", "pass", readerConfig(seed + 1))
        .addNode("stress_sink", "sink", readerConfig(seed + 2))
        .addInput("cmd", "source", "in")
        .connect("source", "out", "pass", "in")
        .connect("pass", "out", "sink", "in")
        .addOutput("report", "sink", "out"),
    run: (session, seed) =>
      Promise.all([
        commandSource(session, seed).then(() => []),
        readReport(session, "report"),
      ]),
  },
  {
    name: "Deno -> 3 nodes (fan-out)",
    readers: 3,
    pipeline: (seed) => {
      const p = new Pipeline();
      for (const i of [1, 2, 3]) {
        p.addNode("stress_sink", `sink${i}`, readerConfig(seed + i))
          .addInput("in", `sink${i}`, "in")
          .addOutput(`report${i}`, `sink${i}`, "out");
      }
      return p;
    },
    run: (session, seed) =>
      Promise.all([
        writeStream(session, "in", seed).then(() => []),
        ...[1, 2, 3].map((i) => readReport(session, `report${i}`)),
      ]),
  },
  {
    name: "node -> 2 nodes + Deno (fan-out)",
    readers: 3,
    pipeline: (seed) => {
      const p = new Pipeline().addNode("stress_source", "source")
        .addInput("cmd", "source", "in").addOutput("data", "source", "out");
      for (const i of [1, 2]) {
        p.addNode("stress_sink", `sink${i}`, readerConfig(seed + i))
          .connect("source", "out", `sink${i}`, "in")
          .addOutput(`report${i}`, `sink${i}`, "out");
      }
      return p;
    },
    run: (session, seed) =>
      Promise.all([
        commandSource(session, seed).then(() => []),
        readReport(session, "report1"),
        readReport(session, "report2"),
        readStream(session, "data", seed + 3),
      ]),
  },
];

Deno.test(`randomized: ${MESSAGES} messages of 1 B..16 MiB per hop reach every reader once, in order, intact`, async (t) => {
  console.log(`no-loss seed ${SEED} (RMP_NO_LOSS_SEED=${SEED} reruns it)`);
  for (const capacity of [1, 8]) {
    for (const [h, hop] of hops.entries()) {
      const seed = (SEED + 1000 * h + 100_000 * capacity) >>> 0;
      await t.step(`capacity ${capacity}: ${hop.name}`, async () => {
        const started = performance.now();
        await using ex = executor(capacity);
        await using session = await ex.createSession(
          hop.pipeline(seed),
          modules,
        );
        await session.initialize();
        const reports = (await hop.run(session, seed)).flat();
        const where = `seed ${SEED} (step seed ${seed})`;
        assertEquals(reports.length, hop.readers, `readers, ${where}`);
        for (const r of reports) {
          const what = `${r.reader}, ${where}: ${JSON.stringify(r)}`;
          assertEquals(r.expected, MESSAGES, what);
          assertEquals(r.received, MESSAGES, what);
          assertEquals(
            [r.lost, r.duplicated, r.reordered, r.corrupted],
            [0, 0, 0, 0],
            `lost, duplicated, reordered, corrupted: ${what}`,
          );
          assert(r.totals_match, `byte and checksum totals: ${what}`);
        }
        console.log(
          `  capacity ${capacity}, ${hop.name}: ${MESSAGES} messages x ${reports.length} readers, 0 lost/dup/reordered/corrupt, ${
            ((performance.now() - started) / 1000).toFixed(1)
          } s`,
        );
      });
    }
  }
});

// Holds every chunk through the raw iceoryx2 port (so no FREED is ever sent
// for them), then drops them silently.
const SILENT_RELEASER = `
import sys, time
from remotemedia_multiprocess import Channel, IoxEnv
env = IoxEnv()
ch = Channel.open_or_create(env, sys.argv[1], capacity=2)
sub = ch.subscriber()
print("ready", flush=True)
held = []
deadline = time.monotonic() + 5
while len(held) < 2 and time.monotonic() < deadline:
    s = sub._port.receive()
    if s is None:
        time.sleep(0.001)
    else:
        held.append(s)
print("held", len(held), flush=True)
time.sleep(0.5)
held.clear()
print("dropped", flush=True)
time.sleep(5)
`;

Deno.test("a Deno publisher waiting for space asks again, so a FREED that never comes costs a retry, not the timeout", async () => {
  await using ctx = await ChannelContext.create();
  const channel = ctx.channel("silent", { capacity: 2 });
  const child = new Deno.Command(python, {
    args: ["-c", SILENT_RELEASER, "silent"],
    env: isolationEnv(ctx.isolation),
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const next = lineReader(child.stdout);
    assertEquals(await next(), "ready");
    using pub = channel.publisher({ publishTimeoutMs: 5000 });
    for (let i = 0; i < 2; i++) await pub.publish(binary(new Uint8Array([i])));
    assertEquals(await next(), "held 2");
    const started = performance.now();
    await pub.publish(binary(new Uint8Array([2]))); // throws after 5 s if stuck
    const waited = performance.now() - started;
    assertEquals(await next(), "dropped");
    assert(waited < 2500, `the publish waited ${waited.toFixed(0)} ms`);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});
