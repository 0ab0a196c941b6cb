/**
 * The speech-to-speech loop with its real models, one process per node
 * (examples/speech_loop). Needs `.venvs/speech` (`deno task test` builds it)
 * and the `espeak-ng` command.
 */
import { assert } from "./support/assert.ts";
import { ensureSpeechEnv } from "../examples/speech_loop/env.ts";
import {
  composeStream,
  runSpeechLoop,
  synthesize,
  type SynthItem,
  wordErrorRate,
  writeWav,
} from "../examples/speech_loop/speech_loop.ts";
import { SENTENCES } from "../examples/speech_loop/sentences.ts";

async function python(): Promise<string> {
  return await ensureSpeechEnv({ build: false });
}

Deno.test({
  name:
    "speech loop: VAD + ASR word error rate <= 15% on 12 sentences, two voices",
  sanitizeResources: false,
  fn: async () => {
    const py = await python();
    const items: SynthItem[] = SENTENCES.map((text, i) => ({
      text,
      voice: i % 2 === 0 ? "espeak" : "piper",
    }));
    const clips = await synthesize(items, { python: py });
    const plan = composeStream(clips, [...SENTENCES], { gapMs: 1800 });
    const run = await runSpeechLoop(plan, { python: py, printLogs: false });
    const heard = run.utterances.map((u) => u.transcript ?? "");
    const wer = wordErrorRate(SENTENCES, heard);
    const perVoice = (voice: string) => {
      const idx = items.flatMap((it, i) => it.voice === voice ? [i] : []);
      return wordErrorRate(
        idx.map((i) => SENTENCES[i]),
        idx.map((i) => heard[i]),
      );
    };
    console.log(
      `WER ${(wer * 100).toFixed(1)}% (espeak-ng ${
        (perVoice("espeak") * 100).toFixed(1)
      }%, piper ${
        (perVoice("piper") * 100).toFixed(1)
      }%) over ${SENTENCES.length} sentences; ` +
        `false segments: ${run.extraSegments.length}`,
    );
    run.utterances.forEach((u, i) =>
      console.log(`  [${items[i].voice}] ${u.text} -> ${u.transcript}`)
    );
    const missed = run.utterances.filter((u) => u.segment === undefined);
    assert(missed.length === 0, `VAD missed: ${missed.map((u) => u.text)}`);
    assert(wer <= 0.15, `WER ${wer} > 0.15`);
  },
});

Deno.test({
  name:
    "speech loop: the reply WAV holds the reply's words; barge-in cuts a reply within 150 ms",
  sanitizeResources: false,
  fn: async () => {
    const py = await python();
    const said = ["Tell me a long story.", "What time is it?"];
    const clips = await synthesize(
      said.map((text) => ({ text, voice: "piper" })),
      { python: py },
    );
    // The story's reply lasts ~13 s: the second question comes 6 s after the
    // first ends, while the reply plays even when recognition is slow.
    const plan = composeStream(clips, said, { gapMs: [6000, 6000] });
    const run = await runSpeechLoop(plan, { python: py, printLogs: false });
    const [story, time] = run.utterances;
    assert(
      story.segment !== undefined && time.segment !== undefined,
      "VAD missed an utterance",
    );

    // Interruption: the story's reply is cut, the node says what it cut.
    const cut = story.cut;
    assert(
      cut !== undefined,
      `the story's reply was not cut: ${JSON.stringify(story)}`,
    );
    console.log(
      `cut after ${Math.round(cut.playedMs)} ms of reply: notice ${
        cut.noticeMs?.toFixed(0)
      } ms, last chunk ${
        cut.lastAudioMs?.toFixed(0)
      } ms after the new speech began; ` +
        `said "${cut.said}" / cut "${cut.cut}"`,
    );
    assert(cut.said.length > 0 && cut.cut.length > 0, JSON.stringify(cut));
    assert(
      story.reply !== undefined &&
        story.reply.replace(/\s+/g, " ").startsWith(cut.said.slice(0, 10)),
      `${cut.said} vs ${story.reply}`,
    );
    assert(
      cut.noticeMs !== undefined && cut.noticeMs <= 150,
      `notice ${cut.noticeMs} ms`,
    );
    assert(
      cut.lastAudioMs !== undefined && cut.lastAudioMs <= 150,
      `last reply chunk ${cut.lastAudioMs} ms after the interruption`,
    );
    assert(!story.done, "a cut reply must not also be done");

    // The second reply plays to its end; its WAV holds its words.
    assert(time.done && time.reply !== undefined, JSON.stringify(time));
    const dir = await Deno.makeTempDir({ prefix: "rmp_speech_test_" });
    try {
      const wav = `${dir}/reply.wav`;
      await writeWav(wav, time.replyAudio);
      const out = await new Deno.Command(py, {
        args: [
          new URL("../examples/speech_loop/transcribe.py", import.meta.url)
            .pathname,
          wav,
        ],
        env: { HF_HUB_OFFLINE: "1" },
        signal: AbortSignal.timeout(60_000),
      }).output();
      assert(out.success, new TextDecoder().decode(out.stderr));
      const { texts } = JSON.parse(new TextDecoder().decode(out.stdout)) as {
        texts: string[];
      };
      const werReply = wordErrorRate([time.reply], texts);
      console.log(
        `reply "${time.reply}" -> ASR of the WAV "${texts[0]}" (WER ${
          (werReply * 100).toFixed(0)
        }%)`,
      );
      assert(
        werReply <= 0.25,
        `the reply WAV does not hold the reply: "${texts[0]}"`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
