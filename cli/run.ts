/**
 * `remotemedia run <pipeline> [--config runtime.toml] [--input NAME=FILE ...]
 * [--output NAME=FILE ...] [--realtime] [--json]`: runs a pipeline from a
 * file with live progress, feeds its inputs from files and writes (or
 * prints) its outputs.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { MultiprocessExecutor } from "../control/executor.ts";
import type { LogEvent, Session, SessionStats } from "../control/session.ts";
import type { NodeProcessError } from "../errors.ts";
import type { RuntimeData } from "../data/runtime_data/mod.ts";
import { Display, type DisplayMode, statusRows } from "./_display.ts";
import { usage } from "./_errors.ts";
import {
  describeMessage,
  type InputMessages,
  jsonRecord,
  OutputWriter,
  readInput,
} from "./_media_io.ts";
import { loadCliConfig, loadPipelineFile, mergeModules } from "./_sources.ts";
import { onInterrupt } from "./_interrupt.ts";

/** The help text of `run`. */
export const RUN_HELP = `remotemedia run <pipeline.toml|json> [options]

Runs a pipeline: one Python process per node, live progress on a terminal.

  --config FILE          runtime.toml (its [cli] table may list modules)
  --input NAME=FILE      feed pipeline input NAME from FILE (repeatable):
                         .wav (resampled to the reader's config sample_rate),
                         .pcm/.raw (s16le mono), .txt (a message per line),
                         .jsonl (a JSON message per line), .json, .npy,
                         a folder of images (.ppm/.pgm as video, others binary)
  --output NAME=FILE     write pipeline output NAME to FILE (repeatable):
                         .wav, .txt, .jsonl, .npy; other outputs are printed
  --module M             a Python module registering node types (repeatable)
  --module-path DIR      a folder to import modules from (repeatable)
  --realtime             pace audio input at its real rate
  --chunk-ms MS          audio per message (default 20)
  --duration SECS        stop after SECS (default: when the inputs are done
                         and the pipeline is idle; with no input, Ctrl-C)
  --idle-ms MS           how long the pipeline must be idle after the last
                         input before the run ends (default 500)
  --json                 one JSON event per line on stdout
  --plain                plain lines even on a terminal
`;

/** Options of {@linkcode runCommand} besides the arguments. */
export interface RunCommandOptions {
  /**
   * Force a display mode.
   * @default {"tty" when stderr is a terminal, else "plain"; "json" with --json}
   */
  mode?: DisplayMode;
}

function pairs(values: string[] | undefined, flag: string): [string, string][] {
  return (values ?? []).map((v) => {
    const at = v.indexOf("=");
    if (at <= 0 || at === v.length - 1) {
      throw usage(
        `Invalid ${flag} "${v}": write it as NAME=FILE, e.g. ${flag} in=speech.wav`,
      );
    }
    return [v.slice(0, at), v.slice(at + 1)];
  });
}

function positiveNumber(
  v: string | undefined,
  flag: string,
  fallback: number,
): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    throw usage(`Invalid ${flag} "${v}": give a positive number`);
  }
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `remotemedia run`.
 *
 * @param args The arguments after `run`.
 * @param options Display mode override.
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runCommand(["pipeline.toml", "--input", "in=words.txt"]));
 * ```
 */
export async function runCommand(
  args: string[],
  options: RunCommandOptions = {},
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      input: { type: "string", multiple: true },
      output: { type: "string", multiple: true },
      module: { type: "string", multiple: true },
      "module-path": { type: "string", multiple: true },
      realtime: { type: "boolean" },
      "chunk-ms": { type: "string" },
      duration: { type: "string" },
      "idle-ms": { type: "string" },
      json: { type: "boolean" },
      plain: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(RUN_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw usage(
      positionals.length
        ? `Too many arguments (${
          positionals.join(" ")
        }): give one pipeline file`
        : "Missing the pipeline file: run `remotemedia run pipeline.toml`",
    );
  }
  const chunkMs = positiveNumber(values["chunk-ms"], "--chunk-ms", 20);
  const idleMs = positiveNumber(values["idle-ms"], "--idle-ms", 500);
  const durationMs = values.duration === undefined
    ? undefined
    : positiveNumber(values.duration, "--duration", 0) * 1000;
  const inputs = pairs(values.input, "--input");
  const outputs = pairs(values.output, "--output");

  const file = await loadPipelineFile(positionals[0]);
  const cli = await loadCliConfig(values.config);
  const { modules, modulePaths } = mergeModules([
    {
      modules: values.module ?? [],
      modulePaths: values["module-path"] ?? [],
    },
    file,
    cli,
  ]);
  const def = file.definition;
  const inputNames = def.inputs.map((i) => i.name);
  const outputNames = def.outputs.map((o) => o.name);
  for (const [name] of inputs) {
    if (!inputNames.includes(name)) {
      throw usage(
        `The pipeline has no input "${name}"; its inputs are: ${
          inputNames.join(", ") || "none"
        }`,
      );
    }
  }
  for (const [name] of outputs) {
    if (!outputNames.includes(name)) {
      throw usage(
        `The pipeline has no output "${name}"; its outputs are: ${
          outputNames.join(", ") || "none"
        }`,
      );
    }
  }
  // Read every input before anything is spawned: a bad file fails at once.
  const feeds: { name: string; data: InputMessages }[] = [];
  for (const [name, path] of inputs) {
    const to = def.inputs.find((i) => i.name === name)!.to[0]?.node;
    const rate = def.nodes.find((n) => n.id === to)?.config?.sample_rate;
    feeds.push({
      name,
      data: await readInput(path, {
        sampleRate: typeof rate === "number" && rate > 0 ? rate : undefined,
        chunkMs,
      }),
    });
  }
  const writers = new Map(
    outputs.map(([name, path]) => [name, new OutputWriter(name, path)]),
  );

  const mode: DisplayMode = options.mode ??
    (values.json
      ? "json"
      : !values.plain && Deno.stderr.isTerminal()
      ? "tty"
      : "plain");
  const display = new Display(mode, file.pipeline);
  const abort = new AbortController();
  const executor = new MultiprocessExecutor({
    ...cli.config,
    handleSignals: false,
  });
  let session: Session | undefined;
  let creating: Promise<Session> | undefined;
  /** Resolves with 130 once Ctrl-C's clean-up is done. */
  const interrupted = Promise.withResolvers<number>();
  const stopInterrupt = onInterrupt(async () => {
    abort.abort();
    display.stop();
    await creating?.catch(() => {});
    await executor.close();
    await Promise.all([...writers.values()].map((w) => w.close()));
    display.event({ event: "interrupted" });
    interrupted.resolve(130);
  });
  const counts = new Map(outputNames.map((n) => [n, 0]));
  let lastActivity = performance.now();
  try {
    creating = executor.createSession(file.pipeline, {
      modules,
      modulePaths,
      printLogs: false,
      signal: abort.signal,
      onProgress: (e) => display.progress(e),
      onError: (e: NodeProcessError) =>
        display.print(
          `[${e.nodeId}] error: ${e.message}${
            e.traceback ? `\n${e.traceback.trimEnd()}` : ""
          }`,
          {
            event: "error",
            nodeId: e.nodeId,
            message: e.message,
            traceback: e.traceback,
          },
        ),
    });
    session = await creating;
    session.addEventListener("log", (ev) => {
      const e = (ev as CustomEvent<LogEvent>).detail;
      display.print(`[${e.nodeId}] ${e.line}`, { event: "log", ...e });
    });
    await session.initialize();
    const capacity = executor.config.channelCapacity;
    let previous: { stats: SessionStats; at: number } | undefined;
    const refresh = async () => {
      if (!session || session.closed) return;
      const stats = await session.stats();
      const at = performance.now();
      display.status(
        statusRows(
          file.pipeline,
          stats,
          previous?.stats,
          capacity,
          previous ? at - previous.at : 0,
        ),
      );
      previous = { stats, at };
    };
    await refresh();
    let refreshing = false;
    const statusTimer = setInterval(async () => {
      if (refreshing) return;
      refreshing = true;
      try {
        await refresh();
      } finally {
        refreshing = false;
      }
    }, mode === "plain" ? 2000 : 1000);
    try {
      const receivers = outputNames.map(async (name) => {
        for await (const sample of session!.receive(name)) {
          const rd: RuntimeData = sample.data;
          lastActivity = performance.now();
          counts.set(name, (counts.get(name) ?? 0) + 1);
          const writer = writers.get(name);
          if (writer) {
            await writer.add(rd);
            display.event({ event: "output", output: name, ...jsonRecord(rd) });
          } else {
            display.print(
              `${name}: ${describeMessage(rd)}`,
              { event: "output", output: name, ...jsonRecord(rd) },
              true,
            );
          }
        }
      });
      const receiving = Promise.all(receivers);
      receiving.catch(() => {});
      const sending = Promise.all(feeds.map(async ({ name, data }) => {
        const start = performance.now();
        let due = 0;
        for (const [i, rd] of data.messages.entries()) {
          if (abort.signal.aborted) return;
          if (values.realtime && due > 0) {
            const wait = start + due - performance.now();
            if (wait > 0) await sleep(wait);
          }
          await session!.send(name, rd);
          lastActivity = performance.now();
          due += data.durationMs[i];
        }
      }));
      const deadline = durationMs === undefined
        ? undefined
        : performance.now() + durationMs;
      const ended = Promise.race([
        (async () => {
          await sending;
          if (deadline !== undefined) {
            return await sleep(deadline - performance.now());
          }
          if (!feeds.length) return await new Promise(() => {});
          await untilIdle(session!, () => lastActivity, idleMs);
        })(),
        receiving,
        deadline === undefined ? new Promise(() => {}) : sleep(durationMs!),
      ]);
      await ended;
      if (abort.signal.aborted) return await interrupted.promise;
      if (session.failure) throw session.failure;
      clearInterval(statusTimer);
      await refresh();
      const stats = await session.stats();
      display.stop();
      display.event({ event: "stats", ...stats });
      await session.close();
      await Promise.allSettled([receiving]);
      for (const w of writers.values()) await w.close();
      if (mode !== "json") {
        const wrote = [...writers.values()].map((w) =>
          `${w.output}: ${w.count} messages to ${w.path}`
        );
        const printed = outputNames.filter((n) => !writers.has(n)).map((n) =>
          `${n}: ${counts.get(n)} messages`
        );
        console.error(`Done. ${[...wrote, ...printed].join("; ")}`);
      }
      return 0;
    } finally {
      clearInterval(statusTimer);
    }
  } catch (e) {
    if (abort.signal.aborted) return await interrupted.promise;
    display.stop();
    throw e;
  } finally {
    if (!abort.signal.aborted) {
      stopInterrupt();
      display.stop();
      await executor.close();
    }
  }
}

/** Resolves once nothing moved for `idleMs`: every queue empty, no node busy. */
async function untilIdle(
  session: Session,
  lastActivity: () => number,
  idleMs: number,
): Promise<void> {
  let quietSince: number | undefined;
  while (!session.closed) {
    const stats = await session.stats();
    const busy = stats.channels.some((c) => c.occupancy > 0) ||
      stats.processes.some((p) => p.state === "processing");
    const now = performance.now();
    if (busy) quietSince = undefined;
    else quietSince ??= now;
    if (
      quietSince !== undefined && now - quietSince >= idleMs &&
      now - lastActivity() >= idleMs
    ) return;
    await sleep(Math.min(100, idleMs / 2));
  }
}
