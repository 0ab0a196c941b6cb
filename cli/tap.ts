/**
 * `remotemedia tap SESSION CHANNEL [--hz]`: a read-only subscriber on a
 * channel of a running session (like `dora topic echo` / `topic hz`). Each
 * sample is released as soon as its header is read; what the terminal
 * cannot print in time is dropped from the print queue (never from the
 * channel) and counted. Channels have no overflow, so a sample waiting for
 * the tap to wake still holds a publisher chunk: on a saturated channel a
 * tap costs throughput (bench/cli_tap_report.ts).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ChannelContext } from "../data/channel/mod.ts";
import type { Sample } from "../data/channel/mod.ts";
import { removeIsolation } from "../data/isolation.ts";
import { monotonicNs } from "../data/native.ts";
import { readHeader } from "../data/runtime_data/mod.ts";
import { CliError, usage } from "./_errors.ts";
import { onInterrupt } from "./_interrupt.ts";
import { askSession, pickSession } from "./_sessions.ts";

/** The help text of `tap`. */
export const TAP_HELP = `remotemedia tap SESSION CHANNEL [options]

Prints each message of a channel of a running session: kind, size, sequence
and age (time since it was sent). Read-only: samples are released at once;
lines the output cannot keep up with are dropped and counted.

  --hz             print the message rate once a second instead
  --count N        stop after N messages
  --duration SECS  stop after SECS
  --json           one JSON object per message (or per second with --hz)
`;

/** Lines waiting to be printed; beyond this, lines are dropped (and counted). */
const PRINT_QUEUE = 1024;

interface Seen {
  kind: string;
  size: number;
  sequence: bigint;
  ageUs: number;
}

/**
 * Runs `remotemedia tap`.
 *
 * @param args The arguments after `tap`.
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await tapCommand(["3f2a", "asr.out", "--hz"]));
 * ```
 */
export async function tapCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      hz: { type: "boolean" },
      count: { type: "string" },
      duration: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(TAP_HELP);
    return 0;
  }
  if (positionals.length !== 2) {
    throw usage(
      "Give a session and a channel: `remotemedia tap SESSION CHANNEL` (`remotemedia inspect` lists both)",
    );
  }
  const count = values.count === undefined ? Infinity : Number(values.count);
  const duration = values.duration === undefined
    ? Infinity
    : Number(values.duration) * 1000;
  if (!(count > 0) || !(duration > 0)) {
    throw usage("--count and --duration must be positive numbers");
  }
  const [query, channelName] = positionals;
  const { socket, reply } = await pickSession(query);
  if (!reply.channels.includes(channelName)) {
    throw new CliError(
      `Session ${
        reply.sessionId.slice(0, 8)
      } has no channel "${channelName}"; its channels are: ${
        reply.channels.join(", ")
      }`,
    );
  }
  const ctx = await ChannelContext.create({
    isolation: reply.isolation,
    removeOnClose: false,
  });
  const stop = new AbortController();
  const finished = Promise.withResolvers<void>();
  // Ctrl-C: stop, close the subscriber and the context, then exit 130.
  const removeInterrupt = onInterrupt(async () => {
    stop.abort();
    await finished.promise;
  });
  let seen = 0;
  let dropped = 0;
  const queue: Seen[] = [];
  const out = Deno.stdout;
  const encoder = new TextEncoder();
  let sessionEnded = false;
  try {
    let channel;
    try {
      channel = ctx.channel(channelName, {
        capacity: reply.channelCapacity,
        maxSubscribers: reply.maxSubscribers,
      });
    } catch (e) {
      throw new CliError(
        `Cannot open channel "${channelName}" of session ${
          reply.sessionId.slice(0, 8)
        }: ${(e as Error).message}; the session may have ended`,
      );
    }
    let sub;
    try {
      sub = channel.subscriber();
    } catch (e) {
      throw new CliError(
        `Cannot tap channel "${channelName}": ${
          (e as Error).message
        }; every subscriber slot is taken (close another tap)`,
      );
    }
    const take = (sample: Sample) => {
      let h;
      try {
        h = readHeader(sample.bytes);
      } catch {
        h = undefined;
      }
      const size = sample.bytes.length;
      sample.release(); // at once: the tap holds no credit
      seen++;
      if (values.hz) return;
      if (queue.length >= PRINT_QUEUE) {
        dropped++;
        return;
      }
      const now = monotonicNs();
      queue.push({
        kind: h?.kind ?? "invalid",
        size,
        sequence: h?.sequence ?? 0n,
        ageUs: h && h.timestampNs > 0n && now > h.timestampNs
          ? Number(now - h.timestampNs) / 1000
          : NaN,
      });
    };
    // The session's end: its inspection socket stops answering.
    const watch = (async () => {
      while (!stop.signal.aborted) {
        await new Promise((r) => setTimeout(r, 500));
        try {
          await askSession(socket);
        } catch {
          sessionEnded = true;
          stop.abort();
        }
      }
    })();
    const printer = (async () => {
      let last = performance.now();
      let lastSeen = 0;
      while (!stop.signal.aborted || queue.length) {
        await new Promise((r) => setTimeout(r, values.hz ? 1000 : 20));
        if (values.hz) {
          const now = performance.now();
          const rate = (seen - lastSeen) * 1000 / (now - last);
          const line = values.json
            ? JSON.stringify({ channel: channelName, hz: rate, total: seen })
            : `${channelName}: ${rate.toFixed(1)} msg/s (${seen} total)`;
          await out.write(encoder.encode(line + "\n"));
          last = now;
          lastSeen = seen;
          continue;
        }
        const batch = queue.splice(0, queue.length);
        if (!batch.length) continue;
        const text = batch.map((s) =>
          values.json
            ? JSON.stringify({
              kind: s.kind,
              size: s.size,
              sequence: Number(s.sequence),
              ageUs: Number.isNaN(s.ageUs) ? null : Math.round(s.ageUs),
            })
            : `${s.kind.padEnd(7)} ${String(s.size).padStart(9)} B  seq ${
              String(s.sequence).padStart(6)
            }  age ${
              Number.isNaN(s.ageUs) ? "-" : `${(s.ageUs / 1000).toFixed(3)} ms`
            }`
        ).join("\n") + "\n";
        await out.write(encoder.encode(text));
      }
    })();
    const timer = duration === Infinity
      ? undefined
      : setTimeout(() => stop.abort(), duration);
    try {
      while (!stop.signal.aborted && seen < count) {
        let sample = sub.tryReceive();
        while (sample && seen < count) {
          take(sample);
          sample = seen < count ? sub.tryReceive() : null;
        }
        if (seen >= count) break;
        const next = await sub.receive({ signal: stop.signal, timeoutMs: 250 });
        if (next) take(next);
      }
    } finally {
      clearTimeout(timer);
      stop.abort();
      await printer;
      await watch;
      sub.close();
    }
  } finally {
    await ctx.close();
    // The session removes its files unless the tap still held them: then
    // the tap, last user of the isolation, removes them (only if nobody
    // holds its lock any more).
    if (sessionEnded) removeIsolation(reply.isolation);
    const note = dropped
      ? `, ${dropped} not printed (the output could not keep up; the channel was not slowed)`
      : "";
    console.error(
      `tap: ${seen} messages on ${channelName}${note}${
        sessionEnded ? "; the session ended" : ""
      }`,
    );
    finished.resolve();
    removeInterrupt();
  }
  return 0;
}
