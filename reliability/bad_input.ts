/**
 * Scenario 5 of issue 13, the bad input catalogue: every case is a bad
 * input (a broken file, a broken module, a misbehaving node, a raw sample
 * with a corrupt header, a payload over the limit, a silent subscriber...)
 * with the named error it must give. While the cases run, a healthy
 * "bystander" session streams all the time: after each case it must still
 * serve, in order, having lost nothing. Cases where a session accepted
 * messages before the bad thing check that those still arrive. Row
 * `bad_input`, runs = cases (`--full`: the catalogue three times).
 *
 * @module
 */
import {
  descendants,
  filesLeft,
  processesUsing,
  rssMb,
  type Scenario,
  type ScenarioResult,
  sleep,
  until,
} from "./_scenario.ts";
import { MultiprocessExecutor } from "../control/executor.ts";
import { loadConfig } from "../control/config.ts";
import type { LogEvent, Session, SessionOptions } from "../control/session.ts";
import { Pipeline } from "../pipeline/mod.ts";
import {
  binary,
  type RuntimeData,
  text,
  type TextData,
} from "../data/runtime_data/mod.ts";
import { ChannelContext } from "../data/channel/mod.ts";
import { MAX_LOG_LINE_BYTES } from "../control/node_process.ts";
import {
  CHANNEL_DEFAULT_MAX_SUBSCRIBERS,
  WIRE_HEADER_LEN,
  WIRE_MAGIC,
  WIRE_OFFSETS,
  WIRE_VERSION,
} from "../protocol/contracts.ts";
import {
  BackpressureTimeoutError,
  ChannelError,
  ConfigError,
  NodeInitError,
  NodeModuleError,
  NodeProcessError,
  PipelineValidationError,
  ProcessSpawnError,
  ReceiveTimeoutError,
  SessionClosedError,
} from "../errors.ts";

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** What a case must give. */
interface Expect {
  /** The error's class (an instance of it). */
  error: ErrorClass;
  /** A substring of, or a pattern matching, its message. */
  message: string | RegExp;
  /** Fields the error must have, with these values. */
  fields?: Record<string, unknown>;
}

/** One bad input. */
interface Case {
  name: string;
  /**
   * Does the bad thing: rejects with the error it gave, or resolves with it
   * (an error delivered as an event). Other problems (a lost message) go to
   * `ctx.problems`.
   */
  make: (ctx: Ctx) => Promise<unknown>;
  expect: Expect;
}

/** What cases share. */
interface Ctx {
  root: string;
  python: string;
  fixtures: string;
  tmp: string;
  executor: MultiprocessExecutor;
  /** Opens (and initializes unless `init` is false) a tracked session. */
  open: (
    p: Pipeline,
    options?: SessionOptions & { init?: boolean; ex?: MultiprocessExecutor },
  ) => Promise<Session>;
  /** An executor with short bounds (init 3 s, publish 1 s), closed at the end. */
  quick: () => MultiprocessExecutor;
  problems: string[];
  track: (prefix: string) => void;
}

const NODES = "reliability/nodes";

function single(type: string, config: Record<string, string | number> = {}) {
  return new Pipeline().addNode(type, "n", config).addInput("in", "n", "in")
    .addOutput("out", "n", "out");
}

/** The first NodeProcessError of `s` within `ms` (null when none). */
function nextError(s: Session, ms: number): Promise<NodeProcessError | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    s.addEventListener("error", (e) => {
      clearTimeout(timer);
      resolve((e as CustomEvent<NodeProcessError>).detail);
    }, { once: true });
  });
}

/** Texts of the next `n` samples of `out` within `ms` (fewer on timeout). */
async function texts(s: Session, n: number, ms: number): Promise<string[]> {
  const got: string[] = [];
  if (n === 0) return got;
  try {
    for await (const x of s.receive("out", { timeoutMs: ms })) {
      got.push(
        x.data.kind === "text" ? (x.data as TextData).text : x.data.kind,
      );
      if (got.length >= n) break;
    }
  } catch (e) {
    if (!(e instanceof ReceiveTimeoutError)) throw e;
  }
  return got;
}

/** Checks that `want` arrived, in order; a problem line otherwise. */
function arrived(ctx: Ctx, what: string, got: string[], want: string[]): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    ctx.problems.push(
      `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`,
    );
  }
}

/** Sends "before-0..2", then runs `bad` (whose own outputs are `produced`),
 * then "after"; checks that all arrive, in order. */
async function acceptedSurvive(
  ctx: Ctx,
  s: Session,
  bad: () => Promise<unknown>,
  produced: string[] = [],
): Promise<unknown> {
  const before = ["before-0", "before-1", "before-2"];
  for (const t of before) await s.send("in", text(t));
  const result = await bad();
  await s.send("in", text("after"));
  arrived(
    ctx,
    "accepted messages",
    await texts(s, 4 + produced.length, 20_000),
    [...before, ...produced, "after"],
  );
  return result;
}

/** A raw publisher on a live session's input channel (its own context). */
async function rawInput(
  s: Session,
  send: (
    pub: ReturnType<ReturnType<ChannelContext["channel"]>["publisher"]>,
  ) => void,
): Promise<void> {
  await using ctx = await ChannelContext.create({ isolation: s.isolation });
  using ch = ctx.channel("in.in", {
    capacity: 8,
    maxSubscribers: CHANNEL_DEFAULT_MAX_SUBSCRIBERS + 1,
  });
  using pub = ch.publisher({ maxPayloadBytes: 1 << 20 });
  send(pub);
  await sleep(50);
}

/** A valid header of a text sample whose payload length field says `claimed`. */
function header(claimed: number, kind = 3): Uint8Array {
  const h = new Uint8Array(WIRE_HEADER_LEN);
  const v = new DataView(h.buffer);
  v.setUint32(WIRE_OFFSETS.magic, WIRE_MAGIC, true);
  v.setUint16(WIRE_OFFSETS.version, WIRE_VERSION, true);
  v.setUint8(WIRE_OFFSETS.type, kind); // 3: text
  v.setUint32(WIRE_OFFSETS.header_len, WIRE_HEADER_LEN, true);
  v.setBigUint64(WIRE_OFFSETS.payload_len, BigInt(claimed), true);
  return h;
}

/** A case whose right answer is not an error carries its report in one. */
class FloodReport extends Error {}
/** See {@linkcode FloodReport}. */
class CollisionReport extends Error {}

const CASES: Case[] = [
  // ---- pipeline files
  {
    name: "pipeline JSON cut short",
    // Written here: a malformed .json in the tree would fail `deno fmt --check`.
    make: async (ctx) => {
      const path = `${ctx.tmp}/truncated.json`;
      await Deno.writeTextFile(
        path,
        '{"version": 1, "nodes": [{"id": "n", "type": "bad_echo"}\n',
      );
      return await Pipeline.load(path);
    },
    expect: {
      error: PipelineValidationError,
      message: /^\$: invalid JSON/,
      fields: { code: "invalid_schema" },
    },
  },
  {
    name: "pipeline TOML syntax error",
    make: () => Pipeline.load(`${FIX}broken.toml`),
    expect: {
      error: PipelineValidationError,
      message: /^\$: invalid TOML at line 2/,
      fields: { code: "invalid_schema" },
    },
  },
  {
    name: "pipeline version 2",
    make: () => Pipeline.load(`${FIX}version2.json`),
    expect: {
      error: PipelineValidationError,
      message: /version/,
      fields: { code: "invalid_schema" },
    },
  },
  {
    name: "pipeline node without a type",
    make: () => Pipeline.load(`${FIX}node_without_type.json`),
    expect: {
      error: PipelineValidationError,
      message: /type/,
      fields: { code: "invalid_schema" },
    },
  },
  {
    name: "pipeline connection to an unknown node",
    make: async (ctx) =>
      ctx.open(await Pipeline.load(`${FIX}unknown_node.json`), nodesOf(ctx)),
    expect: {
      error: PipelineValidationError,
      message: /ghost/,
      fields: { code: "unknown_node" },
    },
  },
  {
    name: "pipeline with a cycle",
    make: async (ctx) =>
      ctx.open(await Pipeline.load(`${FIX}cycle.json`), nodesOf(ctx)),
    expect: {
      error: PipelineValidationError,
      message: /a.*b/,
      fields: { code: "cycle" },
    },
  },
  {
    name: "pipeline with a duplicate node id",
    make: async (ctx) =>
      ctx.open(await Pipeline.load(`${FIX}duplicate_id.json`), nodesOf(ctx)),
    expect: {
      error: PipelineValidationError,
      message: /"n"/,
      fields: { code: "duplicate_id" },
    },
  },
  {
    name: "pipeline file that does not exist",
    make: () => Pipeline.load(`${FIX}no_such_pipeline.json`),
    // Deliberately Deno's own error (tests/pipeline_test.ts), which names the file.
    expect: { error: Deno.errors.NotFound, message: /no_such_pipeline\.json/ },
  },
  // ---- config files
  {
    name: "config TOML syntax error",
    make: () => loadConfig(`${FIX}broken_config.toml`),
    expect: { error: ConfigError, message: /broken_config\.toml/ },
  },
  {
    name: "config value of the wrong type",
    make: () => loadConfig(`${FIX}wrong_type_config.toml`),
    expect: {
      error: ConfigError,
      message: /max_payload_bytes.*string/,
    },
  },
  {
    name: "config channel_capacity 0",
    make: () => loadConfig(`${FIX}capacity_zero.toml`),
    expect: { error: ConfigError, message: /channel_capacity/ },
  },
  {
    name: "config unknown key",
    make: () => loadConfig(`${FIX}unknown_key.toml`),
    expect: { error: ConfigError, message: /no_such_key/ },
  },
  {
    name: "config file that does not exist",
    make: () => loadConfig(`${FIX}no_such_config.toml`),
    expect: { error: ConfigError, message: /no_such_config\.toml/ },
  },
  {
    name: "configured Python that does not exist",
    make: async (ctx) => {
      await using ex = new MultiprocessExecutor({
        python: { executable: `${ctx.tmp}/no/python` },
      });
      return await ex.createSession(single("bad_echo"), nodesOf(ctx));
    },
    expect: { error: ProcessSpawnError, message: /no\/python/ },
  },
  // ---- node types and modules
  {
    name: "unknown node type",
    make: (ctx) => ctx.open(single("no_such_type"), nodesOf(ctx)),
    expect: {
      error: PipelineValidationError,
      message: /no_such_type/,
      fields: { code: "unknown_node_type" },
    },
  },
  {
    name: "node module with a syntax error",
    make: (ctx) =>
      ctx.open(single("bad_echo"), withModule(ctx, "bad_syntax_mod")),
    expect: {
      error: NodeModuleError,
      message: /bad_syntax_mod.*SyntaxError/s,
    },
  },
  {
    name: "node module whose import fails",
    make: (ctx) =>
      ctx.open(single("bad_echo"), withModule(ctx, "bad_import_mod")),
    expect: {
      error: NodeModuleError,
      message: /bad_import_mod.*torch_that_is_not_installed/s,
    },
  },
  {
    name: "node module that raises at import",
    make: (ctx) => ctx.open(single("bad_echo"), withModule(ctx, "raising_mod")),
    expect: {
      error: NodeModuleError,
      message: /raising_mod.*module refuses to load/s,
    },
  },
  {
    name: "node module that does not exist",
    make: (ctx) => ctx.open(single("bad_echo"), withModule(ctx, "no_such_mod")),
    expect: { error: NodeModuleError, message: /no_such_mod/ },
  },
  {
    name: "module folder that does not exist",
    make: (ctx) =>
      ctx.open(single("bad_echo"), {
        modules: ["bad_nodes", "only_in_missing_folder"],
        modulePaths: [`${ctx.root}${NODES}`, `${ctx.tmp}/missing_folder`],
        printLogs: false,
      }),
    expect: { error: NodeModuleError, message: /missing_folder/ },
  },
  // ---- nodes that misbehave
  {
    name: "initialize() raises",
    make: (ctx) =>
      ctx.open(single("init_raises"), {
        modules: ["exec_nodes"],
        modulePaths: [`${ctx.root}tests/nodes`],
        printLogs: false,
      }),
    expect: {
      error: NodeInitError,
      message: /model file is corrupt/,
      fields: { nodeId: "n" },
    },
  },
  {
    name: "initialize() awaits forever",
    make: (ctx) =>
      ctx.open(single("init_hangs"), {
        modules: ["exec_nodes"],
        modulePaths: [`${ctx.root}tests/nodes`],
        printLogs: false,
        ex: ctx.quick(),
      }),
    expect: {
      error: NodeInitError,
      message: /"n".*within 3 s/,
      fields: { nodeId: "n", timedOut: true },
    },
  },
  {
    name: "initialize() never finishes (busy)",
    make: (ctx) =>
      ctx.open(single("bad_init_spin"), { ...nodesOf(ctx), ex: ctx.quick() }),
    expect: {
      error: NodeInitError,
      message: /"n"/,
      fields: { nodeId: "n", timedOut: true },
    },
  },
  ...(["dict", "dict_port", "str", "int"] as const).map((what): Case => ({
    name: `process() returns a ${what}`,
    make: async (ctx) => {
      const s = await ctx.open(
        single("bad_wrong_type", { what }),
        nodesOf(ctx),
      );
      const error = nextError(s, 10_000);
      await s.send("in", text("wrong"));
      return await error;
    },
    expect: {
      error: NodeProcessError,
      message: {
        dict: /no output port 'text' \(outputs: out\)/,
        dict_port: /'out' is int, not RuntimeData/,
        str: /str.*RuntimeData/,
        int: /int.*RuntimeData/,
      }[what],
      fields: { nodeId: "n" },
    },
  })),
  {
    name: "process() raises: accepted messages before and after arrive",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_process_raises"), nodesOf(ctx));
      return await acceptedSurvive(ctx, s, async () => {
        const error = nextError(s, 10_000);
        await s.send("in", text("raise"));
        return await error;
      });
    },
    expect: {
      error: NodeProcessError,
      message: /ValueError: bad input in process/,
      fields: { nodeId: "n" },
    },
  },
  ...([
    ["stdout", false, 8],
    ["stderr", true, 4],
    ["stdout", true, 2],
    ["stderr", false, 2],
  ] as const).map(([stream, newlines, mib]): Case => ({
    name: `a node floods ${stream} with ${mib} MiB ${
      newlines ? "of short lines" : "without a newline"
    }`,
    make: async (ctx) => {
      const rss = rssMb();
      const s = await ctx.open(
        single("bad_flood", { stream, mib, newlines: newlines ? 1 : 0 }),
        nodesOf(ctx),
      );
      let lines = 0;
      let longest = 0;
      let continued = 0;
      let bytes = 0;
      s.addEventListener("log", (e) => {
        const d = (e as CustomEvent<LogEvent>).detail;
        if (d.stream !== stream) return;
        lines++;
        bytes += d.line.length;
        longest = Math.max(longest, new TextEncoder().encode(d.line).length);
        if (d.continued) continued++;
      });
      await acceptedSurvive(ctx, s, () => s.send("in", text("flood")), [
        "flood",
      ]);
      await until(() => bytes >= mib * 1024 * 1024 * 0.99, 10_000);
      const growth = rssMb() - rss;
      if (longest > MAX_LOG_LINE_BYTES) {
        ctx.problems.push(`a ${longest}-byte log line`);
      }
      if (!newlines && continued < mib * 16 - 1) {
        ctx.problems.push(`only ${continued} continued lines`);
      }
      if (bytes < mib * 1024 * 1024 * 0.99) {
        ctx.problems.push(`only ${bytes} of ${mib} MiB reported`);
      }
      if (growth > 150) ctx.problems.push(`Deno RSS grew ${growth} MiB`);
      floodGrowth = Math.max(floodGrowth, growth);
      return new FloodReport(
        `Reported ${lines} ${stream} lines, longest ${longest} B, ${continued} continued, Deno RSS +${
          growth.toFixed(0)
        } MiB`,
      );
    },
    expect: { error: FloodReport, message: /^Reported \d+/ },
  })),
  // ---- data sent from Deno
  {
    name: "send to an input the pipeline does not have",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      return await s.send("nope", text("x"));
    },
    expect: { error: ChannelError, message: /no input "nope".*in/ },
  },
  {
    name: "receive from an output the pipeline does not have",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      for await (const _ of s.receive("nope")) break;
    },
    expect: { error: ChannelError, message: /no output "nope"/ },
  },
  {
    name: "data that does not fit its kind",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      return await acceptedSurvive(
        ctx,
        s,
        () =>
          s.send(
            "in",
            { kind: "binary", data: "str" } as unknown as RuntimeData,
          )
            .catch((e) => e),
      );
    },
    expect: { error: TypeError, message: /binary/ },
  },
  {
    name: "payload over maxPayloadBytes",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      return await acceptedSurvive(
        ctx,
        s,
        () =>
          s.send("in", binary(new Uint8Array(MAX_PAYLOAD + 1))).catch((e) => e),
      );
    },
    expect: { error: ChannelError, message: /exceeds the \d+-byte limit/ },
  },
  {
    name: "raw sample with a corrupt header into a live session's input",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      return await acceptedSurvive(ctx, s, async () => {
        const error = nextError(s, 10_000);
        await rawInput(s, (pub) => {
          pub.loan(200).fill(0xab);
          pub.send();
        });
        return await error;
      });
    },
    expect: {
      error: NodeProcessError,
      message: /^Invalid message on input 'in': WireFormatError: bad_magic/,
      fields: { nodeId: "n" },
    },
  },
  {
    name: "raw sample whose header claims more payload than it has",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      return await acceptedSurvive(ctx, s, async () => {
        const error = nextError(s, 10_000);
        await rawInput(s, (pub) => {
          const bytes = pub.loan(128 + 16);
          bytes.set(header(1000));
          pub.send();
        });
        return await error;
      });
    },
    expect: {
      error: NodeProcessError,
      message:
        /^Invalid message on input 'in': WireFormatError: length_mismatch/,
      fields: { nodeId: "n" },
    },
  },
  {
    name: "raw sample shorter than a header",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      return await acceptedSurvive(ctx, s, async () => {
        const error = nextError(s, 10_000);
        await rawInput(s, (pub) => {
          pub.loan(16).fill(0);
          pub.send();
        });
        return await error;
      });
    },
    expect: {
      error: NodeProcessError,
      message: /^Invalid message on input 'in': WireFormatError: too_short/,
      fields: { nodeId: "n" },
    },
  },
  {
    name: "a subscriber that never answers credit requests",
    make: async (ctx) => {
      await using c = await ChannelContext.create();
      ctx.track(c.isolation.prefix);
      using ch = c.channel("silent", { capacity: 4 });
      using sub = ch.subscriber();
      using pub = ch.publisher({ publishTimeoutMs: 500 });
      for (let i = 0; i < 4; i++) await pub.publish(text(`m${i}`));
      const started = performance.now();
      const error = await pub.publish(text("m4")).catch((e) => e);
      const took = performance.now() - started;
      if (took > 3000) ctx.problems.push(`failed after ${took} ms, bound 500`);
      const got: string[] = [];
      for (let i = 0; i < 5; i++) {
        using x = await sub.receive({ timeoutMs: 500 });
        if (x) got.push((x.data as TextData).text);
      }
      arrived(ctx, "accepted before the stall", got, ["m0", "m1", "m2", "m3"]);
      return error;
    },
    expect: {
      error: BackpressureTimeoutError,
      message: /silent/,
      fields: { timeoutMs: 500 },
    },
  },
  {
    name: "a raw subscriber on a node's output that never reads",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), {
        ...nodesOf(ctx),
        ex: ctx.quick(),
      });
      await using c = await ChannelContext.create({ isolation: s.isolation });
      using ch = c.channel("n.out", {
        capacity: 8,
        maxSubscribers: CHANNEL_DEFAULT_MAX_SUBSCRIBERS + 1,
      });
      using _silent = ch.subscriber();
      const error = nextError(s, 15_000);
      const sent: string[] = [];
      for (let i = 0; i < 10; i++) {
        sent.push(`m${i}`);
        await s.send("in", text(`m${i}`));
      }
      // Deno reads its own copy at once: the node blocks on the silent one.
      const got = await texts(s, 8, 10_000);
      arrived(ctx, "accepted before the stall", got, sent.slice(0, 8));
      return await error;
    },
    expect: {
      error: NodeProcessError,
      message: /BackpressureTimeoutError/,
      fields: { nodeId: "n" },
    },
  },
  // ---- sessions
  {
    name: "two sessions with the same pipeline name at once",
    make: async (ctx) => {
      const p = () =>
        new Pipeline("same").addNode("bad_echo", "n")
          .addInput("in", "n", "in").addOutput("out", "n", "out");
      const [a, b] = await Promise.all([
        ctx.open(p(), nodesOf(ctx)),
        ctx.open(p(), nodesOf(ctx)),
      ]);
      await a.send("in", text("a"));
      await b.send("in", text("b"));
      arrived(ctx, "session a", await texts(a, 1, 10_000), ["a"]);
      arrived(ctx, "session b", await texts(b, 1, 10_000), ["b"]);
      if (a.isolation.prefix === b.isolation.prefix) {
        ctx.problems.push("both sessions share one isolation");
      }
      await a.close();
      return await b.send("in", text("late")).then(() =>
        new CollisionReport("Session b serves after a closed")
      );
    },
    expect: { error: CollisionReport, message: /serves/ },
  },
  {
    name: "a raw context given another live session's isolation, closed",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      const before = filesLeft([s.isolation.prefix]).length;
      const c = await ChannelContext.create({ isolation: s.isolation });
      c.channel("guessed").subscriber();
      await c.close();
      const after = filesLeft([s.isolation.prefix]);
      if (after.length < before) {
        ctx.problems.push(
          `${before - after.length} files of the live session removed`,
        );
      }
      await s.send("in", text("still"));
      arrived(ctx, "live session", await texts(s, 1, 10_000), ["still"]);
      return new CollisionReport(`Live session intact (${after.length} files)`);
    },
    expect: { error: CollisionReport, message: /intact/ },
  },
  {
    name: "send after close",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      await s.close();
      return await s.send("in", text("x"));
    },
    expect: { error: SessionClosedError, message: /closed/ },
  },
  {
    name: "receive with no sample within timeoutMs",
    make: async (ctx) => {
      const s = await ctx.open(single("bad_echo"), nodesOf(ctx));
      for await (const _ of s.receive("out", { timeoutMs: 200 })) break;
    },
    expect: {
      error: ReceiveTimeoutError,
      message: /out/,
      fields: { output: "out", timeoutMs: 200 },
    },
  },
  {
    name: "node naming an unconfigured Python environment",
    make: (ctx) =>
      ctx.open(
        new Pipeline().addNode("bad_echo", "n", {}, { env: "nope" })
          .addInput("in", "n", "in").addOutput("out", "n", "out"),
        nodesOf(ctx),
      ),
    expect: {
      error: PipelineValidationError,
      message: /nope/,
      fields: { code: "unknown_env" },
    },
  },
];

/** The largest Deno RSS growth over a flood case, MiB. */
let floodGrowth = 0;

const FIX = new URL("./fixtures/bad_input/", import.meta.url).pathname;
const MAX_PAYLOAD = 1 << 20;

function nodesOf(ctx: Ctx): SessionOptions {
  return {
    modules: ["bad_nodes"],
    modulePaths: [`${ctx.root}${NODES}`],
    printLogs: false,
  };
}

function withModule(ctx: Ctx, module: string): SessionOptions {
  return {
    modules: ["bad_nodes", module],
    modulePaths: [`${ctx.root}${NODES}`, ctx.fixtures],
    printLogs: false,
  };
}

/** Why `error` is not what `expect` wants, or null when it is. */
function mismatch(error: unknown, expect: Expect): string | null {
  if (!(error instanceof Error)) {
    return `no error: resolved with ${JSON.stringify(error)?.slice(0, 200)}`;
  }
  if (!(error instanceof expect.error)) {
    return `wanted ${expect.error.name}`;
  }
  const ok = typeof expect.message === "string"
    ? error.message.includes(expect.message)
    : expect.message.test(error.message);
  if (!ok) return `message does not match ${expect.message}`;
  // "$.path: ..." is the pipeline schema's documented message form.
  if (!/^[A-Z$]/.test(error.message) && expect.error !== TypeError) {
    return "message does not start with a capital";
  }
  for (const [k, v] of Object.entries(expect.fields ?? {})) {
    const got = (error as unknown as Record<string, unknown>)[k];
    if (got !== v) return `${k} is ${JSON.stringify(got)}, want ${v}`;
  }
  return null;
}

/** The bystander: one message every 20 ms, checked in order. */
class Bystander {
  sent = 0;
  got = 0;
  disorder: string[] = [];
  #running = true;
  #stopped = new AbortController();
  #loops: Promise<void>[] = [];
  constructor(readonly session: Session) {
    this.#loops.push(this.#send(), this.#receive());
  }
  async #send(): Promise<void> {
    while (this.#running) {
      await this.session.send("in", text(`by-${this.sent}`));
      this.sent++;
      await sleep(20);
    }
  }
  async #receive(): Promise<void> {
    try {
      for await (
        const x of this.session.receive("out", {
          timeoutMs: 15_000,
          signal: this.#stopped.signal,
        })
      ) {
        const t = (x.data as TextData).text;
        if (t !== `by-${this.got}`) this.disorder.push(`${t} at ${this.got}`);
        this.got++;
      }
    } catch (e) {
      if (this.#stopped.signal.aborted) return;
      this.disorder.push(`receive ended: ${(e as Error).message}`);
    }
  }
  /** Null when it caught up with everything sent so far within `ms`. */
  async check(ms: number): Promise<string | null> {
    const want = this.sent;
    if (!await until(() => this.got >= want, ms)) {
      return `bystander: ${this.got} of ${want} arrived`;
    }
    return this.disorder.length
      ? `bystander out of order: ${this.disorder.splice(0).join(", ")}`
      : null;
  }
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loops[0];
    await until(() => this.got >= this.sent, 10_000);
    this.#stopped.abort();
    await Promise.race([Promise.all(this.#loops), sleep(5_000)]);
  }
}

/** Runs every case beside a streaming bystander. */
export const scenario: Scenario = async (options) => {
  const { root, python, log } = options;
  const prefixes = new Set<string>();
  const tmp = await Deno.makeTempDir({ prefix: "rmp_bad_input_" });
  const executors: MultiprocessExecutor[] = [];
  await using executor = new MultiprocessExecutor({
    python: { executable: python },
    initTimeoutSecs: 30,
    maxPayloadBytes: MAX_PAYLOAD,
  });
  let sessions: Session[] = [];
  const ctx: Ctx = {
    root,
    python,
    fixtures: FIX,
    tmp,
    executor,
    problems: [],
    track: (p) => prefixes.add(p),
    quick: () => {
      const ex = new MultiprocessExecutor({
        python: { executable: python },
        initTimeoutSecs: 3,
        publishTimeoutSecs: 1,
        maxPayloadBytes: MAX_PAYLOAD,
      });
      executors.push(ex);
      return ex;
    },
    open: async (p, o = {}) => {
      const { init = true, ex = executor, ...rest } = o;
      const s = await ex.createSession(p, rest);
      prefixes.add(s.isolation.prefix);
      sessions.push(s);
      if (init) await s.initialize();
      return s;
    },
  };
  const bySession = await executor.createSession(
    single("bad_echo"),
    nodesOf(ctx),
  );
  prefixes.add(bySession.isolation.prefix);
  await bySession.initialize();
  const bystander = new Bystander(bySession);

  const failures: string[] = [];
  let passed = 0;
  // The long run goes through the catalogue three times (flaky answers show).
  const rounds = options.full ? 3 : 1;
  const cases = Array.from({ length: rounds }, () => CASES).flat();
  for (const c of cases) {
    ctx.problems = [];
    sessions = [];
    let error: unknown;
    try {
      error = await c.make(ctx);
    } catch (e) {
      error = e;
    }
    for (const s of sessions) await s.close();
    for (const ex of executors.splice(0)) await ex.close();
    const problems = [...ctx.problems];
    const wrong = mismatch(error, c.expect);
    if (wrong) problems.unshift(wrong);
    const by = await bystander.check(5000);
    if (by) problems.push(by);
    const e = error as Error;
    const said = error instanceof Error
      ? `${e.constructor.name}: ${e.message.split("\n")[0].slice(0, 300)}`
      : String(error);
    if (problems.length === 0) {
      passed++;
      log(`bad_input: ok ${c.name} -> ${said.slice(0, 160)}`);
    } else {
      const line = `${c.name}: ${problems.join("; ")} (gave ${said})`;
      failures.push(line);
      log(`bad_input: FAILED ${line}`);
    }
  }
  await bystander.stop();
  const lost = bystander.sent - bystander.got;
  await bySession.close();
  await executor.close();
  await Deno.remove(tmp, { recursive: true });
  if (lost !== 0 || bystander.disorder.length) {
    failures.push(
      `bystander lost ${lost} of ${bystander.sent} (${bystander.disorder})`,
    );
  }
  await until(() => descendants().length === 0, 5000);
  const procs = new Set([...descendants(), ...processesUsing(prefixes)]);
  const left = filesLeft(prefixes);
  for (const f of left) failures.push(`left ${f}`);
  if (procs.size) failures.push(`left processes ${[...procs]}`);
  const row: ScenarioResult = {
    scenario: "bad_input",
    runs: cases.length,
    passed: lost === 0 ? passed : Math.min(passed, cases.length - 1),
    detect_p50_ms: null,
    detect_p95_ms: null,
    procs_left: procs.size,
    shm_left: left.length,
    rss_growth_mb: null,
    failures,
    extra: {
      bystander_sent: bystander.sent,
      bystander_lost: lost,
      flood_rss_growth_mb: Number(floodGrowth.toFixed(1)),
    },
  };
  return [row];
};
