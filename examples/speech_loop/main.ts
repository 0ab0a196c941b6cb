/**
 * `deno task demo`: the speech-to-speech loop on an utterance it synthesises
 * itself. Builds `.venvs/speech` on first use, prints per-node progress while
 * the models load, then the recognised text, the reply, the latencies, and
 * writes the reply to `speech_reply.wav` (or the path given as argument).
 *
 *   audio (20 ms frames, real time) -> vad -> asr -> responder -> tts -> reply audio
 */
import { ensureSpeechEnv } from "./env.ts";
import {
  composeStream,
  runSpeechLoop,
  synthesize,
  writeWav,
} from "./speech_loop.ts";

const out = Deno.args[0] ?? "speech_reply.wav";
const said = "What is the weather like today?";
const python = await ensureSpeechEnv();
console.log(`synthesising the question with Piper: "${said}"`);
const [clip] = await synthesize([{ text: said, voice: "piper" }], { python });
const plan = composeStream([clip], [said], { leadMs: 800, gapMs: 6000 });
console.log("spawning one process per node, loading models:");
const run = await runSpeechLoop(plan, {
  python,
  onProgress: (p) => {
    if (p.heartbeat) return;
    const pct = p.fraction === null ? "" : `${Math.round(p.fraction * 100)}%`;
    console.log(
      `  [${String(p.elapsedMs).padStart(5)} ms] ${p.nodeId.padEnd(9)} ${
        p.phase.padEnd(8)
      } ${pct.padStart(4)} ${p.message}`,
    );
  },
  onReady: (ms) =>
    console.log(
      `every model loaded in ${Math.round(ms)} ms; streaming ${
        (plan.samples.length / 16000).toFixed(1)
      } s of audio in 20 ms frames, in real time`,
    ),
});
const u = run.utterances[0];
const ms = (v: number | undefined) =>
  v === undefined ? "-" : `${Math.round(v)} ms`;
console.log(`recognised: "${u.transcript ?? "(nothing)"}"`);
console.log(`reply:      "${u.reply ?? "(none)"}"`);
console.log(
  `latency after the end of speech: end detected ${ms(u.vadEndMs)}, ` +
    `transcript ${ms(u.transcriptMs)}, reply text ${ms(u.replyTextMs)}, ` +
    `first reply audio ${ms(u.firstAudioMs)}`,
);
console.log(
  `worst frame lag at the VAD ${ms(run.maxFrameLagMs)}; CPU while streaming ${
    run.cpuS.toFixed(2)
  } s (${
    Object.entries(run.cpuByNode).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(
      ", ",
    )
  })`,
);
await writeWav(out, u.replyAudio);
console.log(
  `wrote ${
    (u.replyAudio.length / 16000).toFixed(2)
  } s of reply audio to ${out}`,
);
if (!u.transcript || !u.replyAudio.length) Deno.exit(1);
