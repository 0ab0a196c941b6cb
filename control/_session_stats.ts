/**
 * Channel statistics of a session, computed from the counters each side
 * keeps: Deno's publishers and subscribers, and the runners' own counts.
 *
 * @module
 */
import type { Pipeline } from "../pipeline/mod.ts";
import type { ChannelStats } from "./session.ts";

/** A runner's last answer to a stats request. */
export interface NodeCounters {
  /** Messages the node received. */
  received: number;
  /** Messages the node sent. */
  sent: number;
  /** Payload bytes the node sent. */
  bytesOut: number;
}

/** Where the counters come from. */
export interface CounterSources {
  /** Deno's publisher of a pipeline input. */
  input(name: string): { messages: number; bytes: number } | undefined;
  /** Messages Deno's subscriber of a pipeline output took. */
  output(name: string): number;
  /** A node's last counters. */
  node(id: string): NodeCounters | undefined;
}

/**
 * One entry per channel: messages and bytes published, and occupancy (what
 * the slowest reader has not taken yet).
 */
export function channelStats(
  pipeline: Pipeline,
  counters: CounterSources,
): ChannelStats[] {
  const channels: ChannelStats[] = [];
  const occupancy = (messages: number, taken: number[]) =>
    Math.max(0, messages - Math.min(...taken, messages));
  for (const input of pipeline.inputChannels()) {
    const s = counters.input(input.input);
    const messages = s?.messages ?? 0;
    channels.push({
      name: input.name,
      messages,
      bytes: s?.bytes ?? 0,
      occupancy: occupancy(
        messages,
        input.readers.map((r) => counters.node(r.node)?.received ?? 0),
      ),
    });
  }
  for (const ch of pipeline.channels()) {
    const source = counters.node(ch.source.node);
    const messages = source?.sent ?? 0;
    channels.push({
      name: ch.name,
      messages,
      bytes: source?.bytesOut ?? 0,
      occupancy: occupancy(messages, [
        ...ch.readers.map((r) => counters.node(r.node)?.received ?? 0),
        ...ch.outputs.map((o) => counters.output(o)),
      ]),
    });
  }
  return channels;
}
