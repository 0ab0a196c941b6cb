/**
 * Run by tests/channel_test.ts with `--v8-flags=--expose-gc`: leaks samples
 * and prints, as JSON, what the garbage-collection backstop of `Sample` did.
 *
 * @module
 */
import { ChannelContext, type Subscriber } from "../../data/channel/mod.ts";
import { binary, type BinaryData } from "../../data/runtime_data/mod.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

/** Collects garbage and lets the finalization callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    gc!();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Receives one sample and drops it unreleased. */
async function leak(sub: Subscriber): Promise<void> {
  if (!(await sub.receive({ timeoutMs: 2000 }))) throw new Error("no sample");
}

await using ctx = await ChannelContext.create();
const channel = ctx.channel("leak", { capacity: 2 });
using sub = channel.subscriber();
using pub = channel.publisher();
const result: Record<string, unknown> = {};

// Every chunk leaked: the publisher cannot loan until they are collected.
await pub.publish(binary(new Uint8Array([1])));
await leak(sub);
await pub.publish(binary(new Uint8Array([2])));
await leak(sub);
result.heldAfterLeak = sub.stats.held;
const full = pub.tryLoan(1);
result.fullBeforeGc = full === null;
if (full) pub.discard();
await settle();
result.heldAfterGc = sub.stats.held;
const loan = pub.tryLoan(1);
result.loanAfterGc = loan !== null;
if (loan) pub.discard();

// Data (and its payload view) keep the sample alive.
await pub.publish(binary(new Uint8Array([3])));
let data: BinaryData | null = (await sub.receive({ timeoutMs: 2000 }))!
  .data as BinaryData;
await settle();
result.heldWhileDataReachable = sub.stats.held;
result.payload = data.data[0];
data = null;
await settle();
result.heldAfterDataDropped = sub.stats.held;

// The payload view alone, or the bytes alone, keep the sample alive too.
await pub.publish(binary(new Uint8Array([6])));
let payload: Uint8Array | null =
  ((await sub.receive({ timeoutMs: 2000 }))!.data as BinaryData).data;
await settle();
result.heldWhilePayloadReachable = sub.stats.held;
result.payloadAfterGc = payload[0];
payload = null;
await settle();
result.heldAfterPayloadDropped = sub.stats.held;
await pub.publish(binary(new Uint8Array([7])));
let bytes: Uint8Array | null = (await sub.receive({ timeoutMs: 2000 }))!.bytes;
await settle();
result.heldWhileBytesReachable = sub.stats.held;
result.bytesAfterGc = bytes.length > 128;
bytes = null;
await settle();
result.heldAfterBytesDropped = sub.stats.held;

// Released explicitly, then collected: released once only.
for (let i = 0; i < 3; i++) {
  await pub.publish(binary(new Uint8Array([4])));
  (await sub.receive({ timeoutMs: 2000 }))!.release();
}
await settle();
result.heldAfterReleased = sub.stats.held;
await pub.publish(binary(new Uint8Array([5])));
using last = await sub.receive({ timeoutMs: 2000 });
result.last = (last?.data as BinaryData | undefined)?.data[0];

console.log(JSON.stringify(result));
