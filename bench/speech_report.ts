/**
 * `deno task bench:speech [--json] [--rounds=N]`: the speech-to-speech loop
 * (examples/speech_loop) on a 60 s input of ten utterances with pauses,
 * streamed in real time in 20 ms frames, once as the pipeline (a process per
 * node) and once in a single Python process that runs the same models in
 * turn on the same frames (examples/speech_loop/sequential.py). Rounds
 * alternate the order (multiprocess first, then sequential first, ...).
 *
 * Reports per mode: end of utterance -> first reply audio p50/p95 (pooled
 * over rounds), the worst lag of a frame behind real time at the VAD, CPU
 * seconds while streaming (median over rounds); and the word error rate of
 * VAD + ASR in the pipeline. `--json` prints one object per line:
 * `{"bench":"speech","mode","first_audio_p50_ms","first_audio_p95_ms",
 * "max_frame_lag_ms","cpu_s"}` and `{"bench":"speech_wer","wer"}`.
 */
import { ensureSpeechEnv } from "../examples/speech_loop/env.ts";
import { SENTENCES } from "../examples/speech_loop/sentences.ts";
import {
  composeStream,
  RATE,
  runSpeechLoop,
  speechPipeline,
  type StreamPlan,
  synthesize,
  wordErrorRate,
} from "../examples/speech_loop/speech_loop.ts";
import { bounded } from "./bounded.ts";

const json = Deno.args.includes("--json");
const rounds = Number(
  Deno.args.find((a) => a.startsWith("--rounds="))?.slice(9) ?? 2,
);
const HERE = new URL("../examples/speech_loop/", import.meta.url).pathname;
const INPUT_S = 60;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
function median(xs: number[]): number {
  return pct(xs, 50);
}
function info(line: string): void {
  if (!json) console.log(line);
  else console.error(line);
}

interface ModeRun {
  firstAudio: (number | undefined)[];
  maxLag: number;
  cpuS: number;
  transcripts: (string | undefined)[];
}

const python = await ensureSpeechEnv({ log: info });
const texts = SENTENCES.slice(0, 10);
const clips = await synthesize(
  texts.map((text, i) => ({ text, voice: i % 2 === 0 ? "espeak" : "piper" })),
  { python },
);
const speech = clips.reduce((n, c) => n + c.length, 0) / RATE;
const gapMs = Math.round(((INPUT_S - 0.6 - speech) / texts.length) * 1000);
const plan: StreamPlan = composeStream(clips, texts, { gapMs });
info(
  `input: ${
    (plan.samples.length / RATE).toFixed(1)
  } s, ${texts.length} utterances (${
    speech.toFixed(1)
  } s of speech, ${gapMs} ms pauses), espeak-ng and piper voices`,
);

async function multiprocess(): Promise<ModeRun> {
  const run = await bounded(
    runSpeechLoop(plan, { python, printLogs: false }),
    (INPUT_S + 120) * 1000,
    "multiprocess run",
  );
  info(
    `  multiprocess: cpu by process ${
      Object.entries(run.cpuByNode).map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(", ")
    } s; first audio ${
      run.utterances.map((u) => u.firstAudioMs?.toFixed(0) ?? "-").join(" ")
    } ms; vad end ${
      run.utterances.map((u) => u.vadEndMs?.toFixed(0) ?? "-").join(" ")
    }; transcript ${
      run.utterances.map((u) => u.transcriptMs?.toFixed(0) ?? "-").join(" ")
    }; reply text ${
      run.utterances.map((u) => u.replyTextMs?.toFixed(0) ?? "-").join(" ")
    }`,
  );
  info(
    `  multiprocess: ${run.asrTimings.length} ASR decodes for ${texts.length} utterances (wall/cpu ms: ${
      run.asrTimings.map((t) =>
        `${t.decodeMs.toFixed(0)}/${t.cpuMs.toFixed(0)}`
      )
        .join(" ")
    }); TTS text -> first phrase ms: ${
      run.ttsFirstPhraseMs.map((v) => v.toFixed(0)).join(" ")
    }`,
  );
  return {
    firstAudio: run.utterances.map((u) => u.firstAudioMs),
    maxLag: run.maxFrameLagMs,
    cpuS: run.cpuS,
    transcripts: run.utterances.map((u) => u.transcript),
  };
}

async function sequential(): Promise<ModeRun> {
  const dir = await Deno.makeTempDir({ prefix: "rmp_speech_bench_" });
  try {
    const def = (await speechPipeline()).toJSON();
    const cfg: Record<string, unknown> = {
      utterance_end_samples: plan.utterances.map((u) => u.endSample),
    };
    for (const n of def.nodes) cfg[n.id] = n.config;
    await Deno.writeFile(
      `${dir}/stream.f32`,
      new Uint8Array(plan.samples.buffer),
    );
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
    const out = await new Deno.Command(python, {
      args: [`${HERE}sequential.py`, `${dir}/stream.f32`, `${dir}/config.json`],
      env: { HF_HUB_OFFLINE: "1", TRANSFORMERS_OFFLINE: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout((INPUT_S + 120) * 1000),
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) {
      throw new Error(
        `sequential.py failed (exit ${out.code}, signal ${out.signal}): ${
          new TextDecoder().decode(out.stderr).slice(-2000)
        }`,
      );
    }
    const r = JSON.parse(text.split("\n").at(-1)!) as {
      first_audio_ms: (number | null)[];
      max_frame_lag_ms: number;
      cpu_s: number;
      transcripts: (string | null)[];
    };
    info(
      `  sequential: first audio ${
        r.first_audio_ms.map((v) => v?.toFixed(0) ?? "-").join(" ")
      } ms`,
    );
    return {
      firstAudio: r.first_audio_ms.map((v) => v ?? undefined),
      maxLag: r.max_frame_lag_ms,
      cpuS: r.cpu_s,
      transcripts: r.transcripts.map((v) => v ?? undefined),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const runs: Record<string, ModeRun[]> = { multiprocess: [], sequential: [] };
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0
    ? ["multiprocess", "sequential"]
    : ["sequential", "multiprocess"];
  for (const mode of order) {
    info(`round ${round + 1}: ${mode}`);
    runs[mode].push(
      mode === "multiprocess" ? await multiprocess() : await sequential(),
    );
  }
}

let missing = 0;
const p50s: Record<string, number> = {};
for (const mode of ["multiprocess", "sequential"]) {
  const rs = runs[mode];
  const lat = rs.flatMap((r) =>
    r.firstAudio.filter((v): v is number => v !== undefined)
  );
  const lost = rs.reduce(
    (n, r) => n + r.firstAudio.filter((v) => v === undefined).length,
    0,
  );
  missing += lost;
  const row = {
    bench: "speech",
    mode,
    first_audio_p50_ms: Math.round(pct(lat, 50)),
    first_audio_p95_ms: Math.round(pct(lat, 95)),
    max_frame_lag_ms: Math.round(Math.max(...rs.map((r) => r.maxLag))),
    cpu_s: Math.round(median(rs.map((r) => r.cpuS)) * 100) / 100,
  };
  p50s[mode] = row.first_audio_p50_ms;
  if (json) console.log(JSON.stringify(row));
  else {
    console.log(
      `${
        mode.padEnd(12)
      } first reply audio p50 ${row.first_audio_p50_ms} ms, p95 ${row.first_audio_p95_ms} ms ` +
        `(${lat.length} utterances${
          lost ? `, ${lost} without a reply` : ""
        }); ` +
        `worst frame lag at the VAD ${row.max_frame_lag_ms} ms; CPU ${row.cpu_s} s`,
    );
  }
}
const heard = runs.multiprocess.flatMap((r) =>
  r.transcripts.map((t) => t ?? "")
);
const refs = runs.multiprocess.flatMap(() => texts);
const wer = Math.round(wordErrorRate(refs, heard) * 1000) / 1000;
if (json) console.log(JSON.stringify({ bench: "speech_wer", wer }));
else {
  console.log(
    `VAD + ASR word error rate in the pipeline: ${(wer * 100).toFixed(1)}%`,
  );
  console.log(
    `multiprocess first audio ${
      Math.round((1 - p50s.multiprocess / p50s.sequential) * 100)
    }% sooner than sequential (p50); targets: p50 <= 800 ms, p95 <= 1200 ms, lag <= 60 ms, >= 25% sooner`,
  );
}
if (missing > 0) {
  console.error(`${missing} utterances got no reply audio`);
  Deno.exit(1);
}
