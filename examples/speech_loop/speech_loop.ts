/**
 * Runs the speech-to-speech loop (`pipeline.toml`) on a stream of 16 kHz
 * mono audio sent in 20 ms frames in real time, and reports what came back:
 * transcripts, replies, reply audio, cuts, latencies, frame lag, CPU time.
 * Used by `deno task demo`, the tests and `deno task bench:speech`.
 *
 * @module
 */
import process from "node:process";
import {
  audio,
  type AudioData,
  type JsonData,
  monotonicNs,
  MultiprocessExecutor,
  Pipeline,
  type ProgressEvent,
  type Session,
  type TextData,
} from "../../mod.ts";
import { SpeechLoopError } from "./errors.ts";

/**
 * The pipeline's sample rate (Hz).
 *
 * @example
 * ```ts
 * import { RATE } from "./speech_loop.ts";
 * console.log(RATE); // 16000
 * ```
 */
export const RATE = 16000;
/**
 * Samples per 20 ms frame.
 *
 * @example
 * ```ts
 * import { FRAME, RATE } from "./speech_loop.ts";
 * console.log(FRAME * 1000 / RATE); // 20
 * ```
 */
export const FRAME = 320;

const HERE = new URL(".", import.meta.url).pathname;

/** The monotonic clock (CLOCK_MONOTONIC, the nodes' clock) in ms. */
function nowMs(): number {
  return Number(monotonicNs()) / 1e6;
}

/** One planned utterance inside a stream. */
export interface PlannedUtterance {
  /** What is said. */
  text: string;
  /** First sample of speech. */
  startSample: number;
  /** One past the last sample of speech. */
  endSample: number;
}

/** An input stream: samples and where the utterances are. */
export interface StreamPlan {
  /** 16 kHz mono samples. */
  samples: Float32Array;
  /** The utterances, in order. */
  utterances: PlannedUtterance[];
}

/** Options for {@linkcode composeStream}. */
export interface ComposeStreamOptions {
  /**
   * Silence before the first utterance, in ms.
   *
   * @default {600}
   */
  leadMs?: number;
  /**
   * Silence after each utterance (one value, or one per utterance), in ms.
   *
   * @default {3000}
   */
  gapMs?: number | number[];
  /**
   * Low noise added everywhere (peak amplitude; 0 = none). Deterministic.
   *
   * @default {0.002}
   */
  noise?: number;
}

/**
 * Lays utterances out one after another with silence between them.
 *
 * @param clips The utterances' samples (16 kHz, trimmed).
 * @param texts What each says.
 * @param options Lead, gaps and noise.
 * @returns The stream and where each utterance is.
 *
 * @example
 * ```ts
 * import { composeStream } from "./speech_loop.ts";
 * const plan = composeStream([new Float32Array(1600)], ["hi"], { gapMs: 100 });
 * console.log(plan.utterances[0].startSample); // 9600
 * ```
 */
export function composeStream(
  clips: Float32Array[],
  texts: string[],
  options: ComposeStreamOptions = {},
): StreamPlan {
  const lead = Math.round((options.leadMs ?? 600) * RATE / 1000);
  const gaps = clips.map((_, i) => {
    const g = options.gapMs ?? 3000;
    return Math.round((Array.isArray(g) ? g[i] : g) * RATE / 1000);
  });
  let total = lead;
  clips.forEach((c, i) => total += c.length + gaps[i]);
  total = Math.ceil(total / FRAME) * FRAME;
  const samples = new Float32Array(total);
  const noise = options.noise ?? 0.002;
  let seed = 12345;
  for (let i = 0; i < total && noise > 0; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    samples[i] = ((seed / 0xffffffff) * 2 - 1) * noise;
  }
  const utterances: PlannedUtterance[] = [];
  let at = lead;
  clips.forEach((c, i) => {
    for (let k = 0; k < c.length; k++) samples[at + k] += c[k];
    utterances.push({
      text: texts[i],
      startSample: at,
      endSample: at + c.length,
    });
    at += c.length + gaps[i];
  });
  return { samples, utterances };
}

/** What became of one planned utterance. */
export interface UtteranceResult {
  /** What was said. */
  text: string;
  /** Where its speech ends in the stream, in ms. */
  endMs: number;
  /** The VAD segment that confirmed it (undefined: never detected). */
  segment?: number;
  /** What the ASR recognised. */
  transcript?: string;
  /** The responder's reply. */
  reply?: string;
  /** End of speech -> the VAD's `speech_end` reached Deno, in ms. */
  vadEndMs?: number;
  /** End of speech -> its transcript reached Deno, in ms (may be negative: speculative). */
  transcriptMs?: number;
  /** End of speech -> its reply text reached Deno, in ms. */
  replyTextMs?: number;
  /** End of speech -> the first reply audio chunk reached Deno, in ms. */
  firstAudioMs?: number;
  /** The reply's audio (16 kHz), as received. */
  replyAudio: Float32Array;
  /** Whether the reply played to its end. */
  done: boolean;
  /** When the reply was cut: what the TTS node said it cut. */
  cut?: CutReport;
}

/** The TTS node's account of a cut reply. */
export interface CutReport {
  /** The reply's segment. */
  segment: number;
  /** Audio sent before the cut, in ms. */
  playedMs: number;
  /** The words already spoken. */
  said: string;
  /** The words cut. */
  cut: string;
  /** Stream time (ms) of the interrupting speech's start (the next utterance's). */
  interruptAtMs?: number;
  /** Interrupting speech start -> the cut notice reached Deno, in ms. */
  noticeMs?: number;
  /** Interrupting speech start -> the last reply chunk reached Deno, in ms. */
  lastAudioMs?: number;
}

/** Everything a run measured. */
export interface SpeechLoopRun {
  /** One entry per planned utterance. */
  utterances: UtteranceResult[];
  /** Segments the VAD confirmed that match no planned utterance. */
  extraSegments: number[];
  /** Every reply chunk in arrival order, concatenated. */
  replyAudio: Float32Array;
  /** The worst lag of a frame behind real time at the VAD, in ms. */
  maxFrameLagMs: number;
  /** CPU seconds of Deno and every node process while streaming. */
  cpuS: number;
  /** CPU seconds per node while streaming. */
  cpuByNode: Record<string, number>;
  /** From spawning to every model loaded, in ms. */
  loadMs: number;
  /** One entry per segment the ASR decoded (speculative ones included). */
  asrTimings: AsrTiming[];
  /** Text in -> first phrase synthesised, per reply played, in ms. */
  ttsFirstPhraseMs: number[];
}

/** How long the ASR node took for one segment. */
export interface AsrTiming {
  /** The segment id. */
  segment: number;
  /** Its length, in ms. */
  audioMs: number;
  /** Wall time of the decode, in ms. */
  decodeMs: number;
  /** CPU time of the decode (all threads), in ms. */
  cpuMs: number;
}

/** Options for {@linkcode runSpeechLoop}. */
export interface RunSpeechLoopOptions {
  /** The Python interpreter of the speech environment. */
  python: string;
  /**
   * Node config values merged over `pipeline.toml`'s, by node id.
   *
   * @default {{}}
   */
  config?: Record<string, Record<string, string | number | boolean>>;
  /**
   * Per-node loading progress.
   *
   * @default {undefined}
   */
  onProgress?: (p: ProgressEvent) => void;
  /**
   * Called when the models are loaded, before streaming starts.
   *
   * @default {undefined}
   */
  onReady?: (loadMs: number) => void;
  /**
   * How long to wait after the stream for the last replies, in ms.
   *
   * @default {20000}
   */
  drainMs?: number;
  /**
   * Print node log lines on stderr.
   *
   * @default {true}
   */
  printLogs?: boolean;
}

/**
 * The pipeline of `pipeline.toml` with config overrides.
 *
 * @param config Values merged over each node's config, by node id.
 * @returns The pipeline.
 *
 * @example
 * ```ts ignore
 * const p = await speechPipeline({ tts: { engine: "espeak" } });
 * ```
 */
export async function speechPipeline(
  config: Record<string, Record<string, string | number | boolean>> = {},
): Promise<Pipeline> {
  const def = (await Pipeline.load(`${HERE}pipeline.toml`)).toJSON();
  for (const node of def.nodes) {
    const extra = config[node.id];
    if (extra) node.config = { ...node.config, ...extra };
  }
  return Pipeline.fromJSON(def);
}

/** CPU seconds (user + system) of a process, from /proc. */
function processCpuS(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (ticks)
  } catch {
    return 0;
  }
}

function cpuSnapshot(session: Session): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of session.status()) {
    if (n.pid !== undefined) out[n.nodeId] = processCpuS(n.pid);
  }
  const u = process.cpuUsage();
  out.deno = (u.user + u.system) / 1e6;
  return out;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

interface Arrival<T> {
  at: number;
  value: T;
}

/**
 * Runs the loop on `plan`: loads every model (a process per node), streams
 * the frames in real time while collecting every output, waits (bounded)
 * for the last reply, and closes the session.
 *
 * @param plan The input stream.
 * @param options The interpreter, config overrides, callbacks, bounds.
 * @returns What was measured.
 * @throws {SpeechLoopError} When the stream cannot be sent in time.
 *
 * @example
 * ```ts ignore
 * const run = await runSpeechLoop(plan, { python: SPEECH_PYTHON });
 * console.log(run.utterances[0].transcript);
 * ```
 */
export async function runSpeechLoop(
  plan: StreamPlan,
  options: RunSpeechLoopOptions,
): Promise<SpeechLoopRun> {
  const pipeline = await speechPipeline(options.config);
  await using executor = new MultiprocessExecutor({
    python: {
      executable: options.python,
      env: { HF_HUB_OFFLINE: "1", TRANSFORMERS_OFFLINE: "1" },
    },
    initTimeoutSecs: 180,
  });
  const spawned = performance.now();
  await using session = await executor.createSession(pipeline, {
    modules: ["speech_nodes"],
    modulePaths: [HERE],
    onProgress: options.onProgress,
    printLogs: options.printLogs ?? true,
  });
  await session.initialize();
  const loadMs = performance.now() - spawned;
  options.onReady?.(loadMs);

  const stop = new AbortController();
  const vadEvents: Arrival<Record<string, unknown>>[] = [];
  const ttsEvents: Arrival<Record<string, unknown>>[] = [];
  const transcripts = new Map<number, Arrival<string>>();
  const replies = new Map<number, Arrival<string>>();
  const chunks: Arrival<{ segment: number; samples: Float32Array }>[] = [];
  const asrTimings: AsrTiming[] = [];
  let wake: () => void = () => {};
  const listen = async (
    name: string,
    onSample: (data: unknown, at: number) => void,
  ): Promise<void> => {
    try {
      for await (const s of session.receive(name, { signal: stop.signal })) {
        onSample(s.data, nowMs());
        wake();
      }
    } catch (e) {
      if (!stop.signal.aborted) throw e;
    }
  };
  const listeners = Promise.all([
    listen("vad_events", (d, at) =>
      vadEvents.push({
        at,
        value: (d as JsonData).value as Record<string, unknown>,
      })),
    listen("tts_events", (d, at) =>
      ttsEvents.push({
        at,
        value: (d as JsonData).value as Record<string, unknown>,
      })),
    listen("transcripts", (d, at) => {
      const t = d as TextData;
      transcripts.set(Number(t.sequence), { at, value: t.text });
    }),
    listen("asr_timing", (d) => {
      const v = (d as JsonData).value as Record<string, number>;
      asrTimings.push({
        segment: v.segment,
        audioMs: v.audio_ms,
        decodeMs: v.decode_ms,
        cpuMs: v.cpu_ms,
      });
    }),
    listen("replies", (d, at) => {
      const t = d as TextData;
      replies.set(Number(t.sequence), { at, value: t.text });
    }),
    listen("reply_audio", (d, at) => {
      const a = d as AudioData;
      chunks.push({
        at,
        value: {
          segment: Number(a.sequence),
          samples: Float32Array.from(a.samples as Float32Array),
        },
      });
    }),
  ]);

  // Stream the frames in real time (absolute due times: no drift).
  const cpu0 = cpuSnapshot(session);
  const t0 = nowMs() + 50;
  const frames = plan.samples.length / FRAME;
  for (let i = 0; i < frames; i++) {
    const due = t0 + i * 20;
    const wait = due - nowMs();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    await session.send(
      "audio",
      audio(plan.samples.subarray(i * FRAME, (i + 1) * FRAME), {
        sampleRate: RATE,
        channels: 1,
        timestampNs: BigInt(Math.round(due * 1e6)),
      }),
    );
  }
  const streamEnd = nowMs();

  // Wait (bounded) until every detected utterance's reply is done or cut.
  const settled = (): boolean => {
    const ends = vadEvents.filter((e) => e.value.event === "speech_end");
    return ends.every((e) =>
      ttsEvents.some((t) =>
        (t.value.event === "reply_done" || t.value.event === "cut") &&
        t.value.segment === e.value.segment
      )
    );
  };
  const deadline = streamEnd + (options.drainMs ?? 20000);
  while (!settled() && nowMs() < deadline) {
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, 100);
    });
  }
  const cpu1 = cpuSnapshot(session);
  stop.abort();
  await listeners;

  const cpuByNode: Record<string, number> = {};
  for (const k of Object.keys(cpu1)) {
    cpuByNode[k] = Math.round((cpu1[k] - (cpu0[k] ?? 0)) * 1000) / 1000;
  }
  const cpuS = Object.values(cpuByNode).reduce((a, b) => a + b, 0);
  const maxFrameLagMs = Math.max(
    0,
    ...vadEvents.filter((e) => e.value.event === "lag").map((e) =>
      Number(e.value.max_lag_ms)
    ),
  );

  // Match VAD segments to planned utterances.
  const monoOf = (streamMs: number): number => t0 + streamMs;
  const results: UtteranceResult[] = plan.utterances.map((u) => ({
    text: u.text,
    endMs: u.endSample * 1000 / RATE,
    replyAudio: new Float32Array(0),
    done: false,
  }));
  const extraSegments: number[] = [];
  for (const e of vadEvents.filter((e) => e.value.event === "speech_end")) {
    const at = Number(e.value.stream_ms);
    const segment = Number(e.value.segment);
    let best = -1;
    results.forEach((r, i) => {
      if (r.endMs <= at && at - r.endMs < 2000 && r.segment === undefined) {
        if (best < 0 || r.endMs > results[best].endMs) best = i;
      }
    });
    if (best < 0) {
      extraSegments.push(segment);
      continue;
    }
    const r = results[best];
    const end = monoOf(r.endMs);
    r.segment = segment;
    r.vadEndMs = e.at - end;
    const tr = transcripts.get(segment);
    if (tr) {
      r.transcript = tr.value;
      r.transcriptMs = tr.at - end;
    }
    const rp = replies.get(segment);
    if (rp) {
      r.reply = rp.value;
      r.replyTextMs = rp.at - end;
    }
    const mine = chunks.filter((c) => c.value.segment === segment);
    if (mine.length) r.firstAudioMs = mine[0].at - end;
    r.replyAudio = concat(mine.map((c) => c.value.samples));
    r.done = ttsEvents.some((t) =>
      t.value.event === "reply_done" && t.value.segment === segment
    );
    const cut = ttsEvents.find((t) =>
      t.value.event === "cut" && t.value.segment === segment
    );
    if (cut) {
      const next = plan.utterances[best + 1];
      const interruptAtMs = next ? next.startSample * 1000 / RATE : undefined;
      const onset = interruptAtMs === undefined
        ? undefined
        : monoOf(interruptAtMs);
      r.cut = {
        segment,
        playedMs: Number(cut.value.played_ms),
        said: String(cut.value.said),
        cut: String(cut.value.cut),
        interruptAtMs,
        noticeMs: onset === undefined ? undefined : cut.at - onset,
        lastAudioMs: onset === undefined || !mine.length
          ? undefined
          : mine[mine.length - 1].at - onset,
      };
    }
  }
  if (frames > 0 && streamEnd - t0 > frames * 20 + 5000) {
    throw new SpeechLoopError(
      `Streaming fell behind real time: ${frames} frames took ${
        Math.round(streamEnd - t0)
      } ms`,
      { stage: "stream" },
    );
  }
  return {
    utterances: results,
    extraSegments,
    replyAudio: concat(chunks.map((c) => c.value.samples)),
    maxFrameLagMs,
    cpuS,
    cpuByNode,
    loadMs,
    asrTimings,
    ttsFirstPhraseMs: ttsEvents.filter((t) =>
      t.value.event === "reply_start" &&
      typeof t.value.synth_first_ms === "number"
    ).map((t) => Number(t.value.synth_first_ms)),
  };
}

/** Options for {@linkcode synthesize}. */
export interface SynthesizeOptions {
  /** The speech environment's interpreter. */
  python: string;
}

/** One utterance to synthesise. */
export interface SynthItem {
  /** The words. */
  text: string;
  /** The voice: eSpeak NG (en-us) or Piper (joe, medium). */
  voice: "espeak" | "piper";
}

/**
 * Synthesises utterances at 16 kHz with leading and trailing silence trimmed
 * (`synth.py`, one Python process for all).
 *
 * @param items What to say, and with which voice.
 * @param options The interpreter.
 * @returns One array of samples per item.
 * @throws {SpeechLoopError} When synthesis fails.
 *
 * @example
 * ```ts ignore
 * const [clip] = await synthesize([{ text: "hello", voice: "espeak" }], { python });
 * ```
 */
export async function synthesize(
  items: SynthItem[],
  options: SynthesizeOptions,
): Promise<Float32Array[]> {
  const dir = await Deno.makeTempDir({ prefix: "rmp_speech_synth_" });
  try {
    const child = new Deno.Command(options.python, {
      args: [`${HERE}synth.py`, dir],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { HF_HUB_OFFLINE: "1" },
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify({ items })));
    await writer.close();
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const out = await child.output();
    clearTimeout(timer);
    if (!out.success) {
      throw new SpeechLoopError(
        `Synthesising ${items.length} utterances failed (exit ${out.code}): ${
          new TextDecoder().decode(out.stderr).split("\n").slice(-8).join("\n")
        }`,
        { stage: "synthesis" },
      );
    }
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    const { files } = JSON.parse(lines[lines.length - 1]) as {
      files: string[];
    };
    return await Promise.all(
      files.map(async (f) => new Float32Array((await Deno.readFile(f)).buffer)),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Writes 16 kHz mono float samples as a 16-bit PCM WAV file.
 *
 * @param path Where.
 * @param samples The samples (-1..1).
 * @param rate The sample rate.
 *
 * @example
 * ```ts ignore
 * await writeWav("reply.wav", new Float32Array(16000), 16000);
 * ```
 */
export async function writeWav(
  path: string,
  samples: Float32Array,
  rate: number = RATE,
): Promise<void> {
  const buf = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buf);
  const str = (at: number, s: string) => {
    for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i));
  };
  str(0, "RIFF");
  v.setUint32(4, 36 + samples.length * 2, true);
  str(8, "WAVE");
  str(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  str(36, "data");
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, Math.round(s * 32767), true);
  }
  await Deno.writeFile(path, new Uint8Array(buf));
}

/**
 * Word error rate of `hypotheses` against `references` (lower-cased,
 * punctuation removed, numbers as spelled): word edits / reference words.
 *
 * @param references What was said.
 * @param hypotheses What was recognised.
 * @returns The WER, 0 to 1 (or more).
 *
 * @example
 * ```ts
 * import { wordErrorRate } from "./speech_loop.ts";
 * console.log(wordErrorRate(["the cat sat"], ["the cat sat down"])); // 0.3333333333333333
 * ```
 */
export function wordErrorRate(
  references: readonly string[],
  hypotheses: readonly string[],
): number {
  const words = (s: string) =>
    s.toLowerCase().replace(/[^a-z0-9' ]+/g, " ").split(/\s+/).filter((w) => w);
  let edits = 0;
  let total = 0;
  references.forEach((ref, i) => {
    const r = words(ref);
    const h = words(hypotheses[i] ?? "");
    total += r.length;
    let prev = Array.from({ length: h.length + 1 }, (_, j) => j);
    for (let a = 1; a <= r.length; a++) {
      const cur = [a];
      for (let b = 1; b <= h.length; b++) {
        cur[b] = Math.min(
          prev[b] + 1,
          cur[b - 1] + 1,
          prev[b - 1] + (r[a - 1] === h[b - 1] ? 0 : 1),
        );
      }
      prev = cur;
    }
    edits += prev[h.length];
  });
  return total === 0 ? 0 : edits / total;
}
