/**
 * `deno bench -A bench/`: the in-process cost of one shared-memory hop
 * (loan, write the header in place, send, receive, release) against copying
 * the same number of bytes into a plain `Uint8Array`. The payload is not
 * written: a zero-copy hop costs the same at any size, a copy does not.
 */
import { ChannelContext } from "../data/channel/mod.ts";
import { HEADER_LENGTH, writeHeader } from "../data/runtime_data/mod.ts";

const ctx = await ChannelContext.create();
const channel = ctx.channel("bench", { capacity: 4, maxSubscribers: 1 });
const pub = channel.publisher();
const sub = channel.subscriber();

function hop(size: number, decode = false): void {
  const buf = pub.loan(HEADER_LENGTH + size);
  writeHeader(buf, { kind: "binary", payloadLength: size });
  pub.send();
  const sample = sub.tryReceive();
  if (!sample) throw new Error("sample not delivered");
  // What a session's receive loop does: decode the header in place.
  if (decode && sample.data.kind !== "binary") throw new Error("wrong kind");
  sample.release();
}

for (const [label, size] of [["1 KiB", 1024], ["10 MiB", 10 << 20]] as const) {
  const src = new Uint8Array(size).fill(1);
  const dst = new Uint8Array(size);
  hop(size); // grow the chunks before measuring
  Deno.bench({
    name: `shm loan+send+receive ${label}`,
    group: label,
    baseline: true,
    fn: () => hop(size),
  });
  Deno.bench({
    name: `shm loan+send+receive+decode ${label}`,
    group: label,
    fn: () => hop(size, true),
  });
  Deno.bench({
    name: `Uint8Array copy ${label}`,
    group: label,
    fn: () => dst.set(src),
  });
}

// Free the channel when the benches are done so the process can exit.
globalThis.addEventListener("unload", () => {
  sub.close();
  pub.close();
  channel.close();
  void ctx.close();
});
