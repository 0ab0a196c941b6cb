/**
 * {@linkcode Subscriber}: receives samples in place, waiting on the doorbell
 * without blocking the event loop.
 *
 * @module
 */
import { ChannelError } from "../../errors.ts";
import { checkCode, RMP_WOULD_BLOCK } from "../native.ts";
import { HEADER_BYTES, type Pointer } from "./_shared.ts";
import { WIRE_MAGIC, WIRE_OFFSETS } from "../../protocol/contracts.ts";
import type { Channel } from "./channel.ts";
import type { ChannelContext } from "./context.ts";
import type { PortStats, ReceiveOptions } from "./options.ts";
import { Sample } from "./sample.ts";

/** What the garbage-collection backstop needs to give a leaked sample back.
 * It must not reference the sample. */
interface Leak {
  subscriber: Subscriber;
  handle: Pointer;
}

/**
 * Receives samples in place. Iterate with `for await` (each sample is
 * released when the loop moves on, unless you keep it with `keep()`), or call
 * `receive()` / `tryReceive()` and release samples yourself.
 *
 * @example
 * ```ts
 * import { ChannelContext } from "@remotemedia/multiprocess/channel";
 * import { text } from "@remotemedia/multiprocess/runtime-data";
 * await using ctx = await ChannelContext.create();
 * const channel = ctx.channel("x");
 * using sub = channel.subscriber();
 * using pub = channel.publisher();
 * await pub.publish(text("one"));
 * for await (const sample of sub) {
 *   console.log(sample.data.kind); // "text"
 *   break;
 * }
 * ```
 */
export class Subscriber implements Disposable, AsyncIterable<Sample> {
  readonly #ctx: ChannelContext;
  readonly #channel: Channel;
  readonly #handle: Pointer;
  readonly #sampleOut = new BigUint64Array(1);
  readonly #addressOut = new BigUint64Array(1);
  readonly #lengthOut = new BigUint64Array(1);
  /**
   * Gives back the chunk of a sample collected unreleased. Registered on the
   * sample's `bytes` (which the sample, its data and its payload view keep
   * reachable) with the sample as unregister token; `release()` unregisters,
   * and `#held` decides which of the two paths releases (exactly one does).
   * No `WeakRef` or `WeakMap` per sample: those cost the collector ~1 µs each.
   */
  static readonly #backstop: FinalizationRegistry<Leak> =
    new FinalizationRegistry<Leak>(({ subscriber, handle }) =>
      subscriber.#reclaim(handle)
    );
  /** Native handles of the samples not yet given back. */
  readonly #held = new Set<Pointer>();
  readonly #closeController = new AbortController();
  #messages = 0;
  #bytes = 0;
  /** The last delivery counter seen (0: none yet), and what its gaps lost. */
  #delivery = 0;
  #lost = 0;
  #closed = false;

  /** @internal */
  constructor(ctx: ChannelContext, channel: Channel, handle: Pointer) {
    this.#ctx = ctx;
    this.#channel = channel;
    this.#handle = handle;
  }

  /** The channel name. */
  get channel(): string {
    return this.#channel.name;
  }

  /** True once closed (directly or with its channel or context). */
  get closed(): boolean {
    return this.#closed || this.#ctx.closed;
  }

  /** Messages and bytes received, and samples held. */
  get stats(): PortStats {
    return {
      messages: this.#messages,
      bytes: this.#bytes,
      held: this.#held.size,
      lost: this.#lost,
    };
  }

  /**
   * Messages this subscriber missed so far: gaps in its publisher's delivery
   * counter (the same figure as `stats.lost`, without building the stats).
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using sub = ctx.channel("x").subscriber();
   * console.log(sub.lost); // 0
   * ```
   */
  get lost(): number {
    return this.#lost;
  }

  /**
   * The next sample if one is waiting, else null. Never waits.
   *
   * @returns A sample or null.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using sub = ctx.channel("x").subscriber();
   * console.log(sub.tryReceive()); // null
   * ```
   */
  tryReceive(): Sample | null {
    this.#assertOpen();
    const rc = this.#ctx.lib.rmp_subscriber_receive(
      this.#handle,
      this.#sampleOut,
      this.#addressOut,
      this.#lengthOut,
    );
    if (rc === RMP_WOULD_BLOCK) return null;
    checkCode(rc, `receiving on "${this.channel}"`);
    const length = Number(this.#lengthOut[0]);
    const handle = Deno.UnsafePointer.create(this.#sampleOut[0]) as Pointer;
    const bytes = length === 0
      ? new Uint8Array(0)
      : this.#ctx.views.view(this.#addressOut[0], length);
    const sample = new Sample(this, handle, bytes);
    this.#held.add(handle);
    Subscriber.#backstop.register(bytes, { subscriber: this, handle }, sample);
    this.#messages++;
    this.#bytes += length;
    if (length >= HEADER_BYTES && readU32(bytes, 0) === WIRE_MAGIC) {
      this.#noteDelivery(readU32(bytes, WIRE_OFFSETS.delivery));
    }
    return sample;
  }

  #noteDelivery(got: number): void {
    if (got === 0) return;
    if (this.#delivery !== 0) this.#lost += deliveryGap(this.#delivery, got);
    this.#delivery = got;
  }

  /**
   * Waits for the next sample without blocking the event loop.
   *
   * @param options Abort signal and timeout.
   * @returns The sample, or null when the timeout passed, the signal aborted
   * or the subscriber closed.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using sub = ctx.channel("x").subscriber();
   * console.log(await sub.receive({ timeoutMs: 10 })); // null
   * ```
   */
  async receive(options: ReceiveOptions = {}): Promise<Sample | null> {
    const deadline = options.timeoutMs === undefined
      ? undefined
      : performance.now() + options.timeoutMs;
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closeController.signal])
      : this.#closeController.signal;
    while (true) {
      if (this.#closed || signal.aborted) return null;
      const sample = this.tryReceive();
      if (sample) return sample;
      const left = deadline === undefined
        ? undefined
        : deadline - performance.now();
      if (left !== undefined && left <= 0) return null;
      await this.#ctx.waitForDoorbell(signal, left);
    }
  }

  /**
   * Yields samples until the subscriber closes; each yielded sample is
   * released when the loop asks for the next one.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Sample, void, undefined> {
    while (true) {
      const sample = await this.receive();
      if (!sample) return;
      try {
        yield sample;
      } finally {
        sample.release();
      }
    }
  }

  /** @internal True while `handle` is not given back. */
  holds(handle: Pointer): boolean {
    return this.#held.has(handle);
  }

  /** @internal */
  released(sample: Sample, handle: Pointer): void {
    if (!this.#held.delete(handle)) return;
    Subscriber.#backstop.unregister(sample);
    this.#ctx.lib.rmp_sample_release(handle);
  }

  /** The backstop: `handle`'s sample was collected without `release()`.
   * A no-op when it was released meanwhile or the subscriber closed. */
  #reclaim(handle: Pointer): void {
    if (!this.#held.delete(handle)) return;
    this.#ctx.lib.rmp_sample_release(handle);
  }

  #assertOpen(): void {
    if (this.#closed || this.#ctx.closed) {
      throw new ChannelError(`The subscriber of "${this.channel}" is closed`, {
        channel: this.channel,
      });
    }
  }

  /**
   * Releases every held sample and closes the subscriber; pending
   * `receive()` calls return null.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * ctx.channel("x").subscriber().close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    // Samples still held see `held` turn false; their backstops find
    // nothing left to give back.
    for (const handle of [...this.#held]) this.#reclaim(handle);
    this.#closed = true;
    this.#closeController.abort();
    this.#ctx.lib.rmp_subscriber_destroy(this.#handle);
    this.#ctx.removeBell(this.channel);
    this.#channel.forget(this);
  }

  /** Same as {@linkcode Subscriber.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

const DELIVERY_WRAP = 0xffffffff;

/**
 * Messages missed between delivery counters `last` and `got`: 0 when `got`
 * follows `last`, and when it is not ahead (a publisher that started over).
 */
function deliveryGap(last: number, got: number): number {
  const gap = ((got - last - 1) % DELIVERY_WRAP + DELIVERY_WRAP) %
    DELIVERY_WRAP;
  return gap < DELIVERY_WRAP / 2 ? gap : 0;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16 |
    bytes[at + 3] << 24) >>> 0;
}
