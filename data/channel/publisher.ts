/**
 * {@linkcode Publisher}: writes messages into loaned shared memory, waits
 * for space without blocking the event loop, and sends in place.
 *
 * @module
 */
import {
  CHANNEL_CREDIT_REQUEST_INTERVAL_SECS,
  WIRE_OFFSETS,
} from "../../protocol/contracts.ts";
import { BackpressureTimeoutError, ChannelError } from "../../errors.ts";
import { checkCode, RMP_WOULD_BLOCK } from "../native.ts";
import {
  decode,
  encodedSize,
  encodeInto,
  payloadBytes,
  type RuntimeData,
  writeHeader,
} from "../runtime_data/mod.ts";
import { HEADER_BYTES, type Pointer } from "./_shared.ts";
import type { Channel } from "./channel.ts";
import type { ChannelContext } from "./context.ts";
import type { PortStats, PublishOptions } from "./options.ts";

/**
 * Writes messages into loaned shared memory. One loan is open at a time:
 * `loan(n)` returns the writable bytes and `send()` publishes them.
 *
 * @example Write in place, then publish RuntimeData
 * ```ts
 * import { ChannelContext } from "@remotemedia/multiprocess/channel";
 * import { text } from "@remotemedia/multiprocess/runtime-data";
 * await using ctx = await ChannelContext.create();
 * const channel = ctx.channel("t");
 * using sub = channel.subscriber();
 * using pub = channel.publisher();
 * await pub.publish(text("hello"));
 * using sample = await sub.receive();
 * console.log(sample?.data.kind); // "text"
 * ```
 */
export class Publisher implements Disposable {
  readonly #ctx: ChannelContext;
  readonly #channel: Channel;
  readonly #handle: Pointer;
  readonly #maxPayloadBytes: number;
  readonly #timeoutMs: number;
  readonly #loanOut = new BigUint64Array(1);
  readonly #addressOut = new BigUint64Array(1);
  #loan: Pointer | null = null;
  #loanBytes = 0;
  /** The message {@linkcode Publisher.allocate} made in the open loan. */
  #allocated: { data: RuntimeData; bytes: Uint8Array } | null = null;
  #sequence = 0n;
  /** The last delivery counter stamped (header offset 12; wraps, skipping 0). */
  #delivery = 0;
  #messages = 0;
  #bytes = 0;
  #closed = false;

  /** @internal */
  constructor(
    ctx: ChannelContext,
    channel: Channel,
    handle: Pointer,
    maxPayloadBytes: number,
    timeoutMs: number,
  ) {
    this.#ctx = ctx;
    this.#channel = channel;
    this.#handle = handle;
    this.#maxPayloadBytes = maxPayloadBytes;
    this.#timeoutMs = timeoutMs;
  }

  /** The channel name. */
  get channel(): string {
    return this.#channel.name;
  }

  /** Messages and bytes sent, and loans held (0 or 1). */
  get stats(): PortStats {
    return {
      messages: this.#messages,
      bytes: this.#bytes,
      held: this.#loan ? 1 : 0,
      lost: 0,
    };
  }

  /**
   * Loans `size` bytes of shared memory, or returns null when the channel is
   * full (every chunk is still held by a subscriber).
   *
   * @param size Bytes to loan, 1 to `maxPayloadBytes`.
   * @returns Writable bytes in shared memory, or null.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using pub = ctx.channel("x").publisher();
   * const bytes = pub.tryLoan(16);
   * bytes?.fill(7);
   * pub.discard();
   * ```
   */
  tryLoan(size: number): Uint8Array | null {
    this.#assertOpen();
    if (this.#loan) {
      throw new ChannelError(
        `A loan on "${this.channel}" is already open: send() or discard() it first`,
        { channel: this.channel },
      );
    }
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(
        `Cannot loan ${size} bytes: the size must be a positive integer`,
      );
    }
    if (size > this.#maxPayloadBytes) {
      throw new ChannelError(
        `A ${size}-byte message exceeds the ${this.#maxPayloadBytes}-byte limit of "${this.channel}"`,
        { channel: this.channel },
      );
    }
    const rc = this.#ctx.lib.rmp_publisher_loan(
      this.#handle,
      BigInt(size),
      this.#loanOut,
      this.#addressOut,
    );
    if (rc === RMP_WOULD_BLOCK) return null;
    checkCode(rc, `loaning ${size} bytes on "${this.channel}"`);
    this.#loan = Deno.UnsafePointer.create(this.#loanOut[0]) as Pointer;
    this.#loanBytes = size;
    return this.#ctx.views.view(this.#addressOut[0], size);
  }

  /**
   * Loans `size` bytes of shared memory to write in place; throws when the
   * channel is full (use {@linkcode Publisher.loanAsync} to wait instead).
   *
   * @param size Bytes to loan, 1 to `maxPayloadBytes`.
   * @returns Writable bytes in shared memory.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * const channel = ctx.channel("x");
   * using sub = channel.subscriber();
   * using pub = channel.publisher();
   * pub.loan(3).set([1, 2, 3]);
   * console.log(pub.send()); // 1
   * ```
   */
  loan(size: number): Uint8Array {
    const bytes = this.tryLoan(size);
    if (!bytes) {
      throw new ChannelError(`Channel "${this.channel}" is full`, {
        channel: this.channel,
      });
    }
    return bytes;
  }

  /**
   * Loans `size` bytes, waiting (without blocking the event loop) until a
   * subscriber frees space.
   *
   * @param size Bytes to loan.
   * @param options Abort signal and timeout.
   * @returns Writable bytes in shared memory.
   * @throws {BackpressureTimeoutError} when no space frees up in time.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using pub = ctx.channel("x").publisher();
   * (await pub.loanAsync(8)).fill(1);
   * pub.discard();
   * ```
   */
  async loanAsync(
    size: number,
    options: PublishOptions = {},
  ): Promise<Uint8Array> {
    const first = this.tryLoan(size);
    if (first) return first;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const deadline = performance.now() + timeoutMs;
    while (true) {
      options.signal?.throwIfAborted();
      // Ask subscribers to say when they free a chunk, then re-check: a
      // chunk freed between the failed loan and the request is answered too.
      checkCode(
        this.#ctx.lib.rmp_publisher_request_credit(this.#handle),
        `requesting credit on "${this.channel}"`,
      );
      const bytes = this.tryLoan(size);
      if (bytes) return bytes;
      const left = deadline - performance.now();
      if (left <= 0) break;
      // Bounded by the retry interval: a FREED that never comes (a
      // subscriber that died or drained its events late) costs one retry.
      await this.#ctx.waitForDoorbell(
        options.signal,
        Math.min(left, CHANNEL_CREDIT_REQUEST_INTERVAL_SECS * 1000),
      );
      this.#assertOpen();
      const again = this.tryLoan(size);
      if (again) return again;
    }
    // Let iceoryx2 reclaim what dead subscribers held, so the channel can
    // recover, but still report this publish as failed.
    try {
      this.#ctx.cleanupDeadNodes();
    } catch { /* the timeout below is the error to report */ }
    throw new BackpressureTimeoutError(
      `No subscriber of "${this.channel}" freed space within ${timeoutMs} ms (dead or stalled)`,
      { channel: this.channel, timeoutMs },
    );
  }

  /**
   * Publishes the open loan and wakes the subscribers.
   *
   * @returns How many subscribers received it.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using pub = ctx.channel("x").publisher();
   * pub.loan(1)[0] = 42;
   * console.log(pub.send()); // 0 (nobody subscribed)
   * ```
   */
  send(): number {
    const loan = this.#takeLoan();
    const size = this.#loanBytes;
    const out = this.#loanOut;
    checkCode(
      this.#ctx.lib.rmp_loan_send(loan, out),
      `sending on "${this.channel}"`,
    );
    this.#messages++;
    this.#bytes += size;
    return Number(out[0]);
  }

  /**
   * Returns the open loan unsent.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using pub = ctx.channel("x").publisher();
   * pub.loan(1);
   * pub.discard();
   * ```
   */
  discard(): void {
    if (!this.#loan) return;
    this.#ctx.lib.rmp_loan_discard(this.#takeLoan());
  }

  #takeLoan(): Pointer {
    this.#assertOpen();
    const loan = this.#loan;
    if (!loan) {
      throw new ChannelError(`No open loan on "${this.channel}"`, {
        channel: this.channel,
      });
    }
    this.#loan = null;
    this.#allocated = null;
    return loan;
  }

  /**
   * A message shaped like `like` (kind, metadata, payload length and element
   * type) whose payload is a writable view of a loan of this publisher: fill
   * it in place, then {@linkcode Publisher.publish} it and nothing is copied.
   * Metadata changed on it before then (`frameNumber`...) is sent too. It is
   * the open loan: `discard()` gives it back, and there is one at a time.
   * Do not touch it after publishing: the memory is the subscribers' then.
   *
   * @param like Any message of the wanted kind and size (its payload is not
   * read), e.g. a template or the previous frame.
   * @param options Bound of the wait for a free chunk.
   * @returns The message to fill.
   * @throws {TypeError} For text and json (their payload must be valid
   * UTF-8 or JSON: build them and publish).
   * @throws {BackpressureTimeoutError} When no chunk frees in time.
   *
   * @example Render a frame in shared memory and send it without a copy
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * import { video, type VideoData } from "@remotemedia/multiprocess/runtime-data";
   * await using ctx = await ChannelContext.create();
   * const channel = ctx.channel("frames");
   * using sub = channel.subscriber();
   * using pub = channel.publisher();
   * const template = video(new Uint8Array(4 * 2 * 3), { width: 4, height: 2, pixelFormat: "rgb24" });
   * const frame = await pub.allocate(template);
   * frame.data.fill(255);
   * frame.frameNumber = 1n;
   * await pub.publish(frame);
   * using sample = await sub.receive();
   * console.log((sample?.data as VideoData).frameNumber); // 1n
   * ```
   */
  async allocate<T extends RuntimeData>(
    like: T,
    options: PublishOptions = {},
  ): Promise<T> {
    if (like.kind === "text" || like.kind === "json") {
      throw new TypeError(
        `Cannot allocate ${like.kind} in place: build it and publish()`,
      );
    }
    const payloadLength = payloadBytes(like).byteLength;
    const bytes = await this.loanAsync(HEADER_BYTES + payloadLength, options);
    try {
      writeHeader(bytes, {
        ...like,
        payloadLength,
        sequence: 0n,
        timestampNs: 0n,
      });
      const data = decode(bytes) as T;
      this.#allocated = { data, bytes };
      return data;
    } catch (e) {
      this.discard();
      throw e;
    }
  }

  /** Sends `data` in place when it is the allocated message; null if not. */
  #sendAllocated(data: RuntimeData): number | null {
    const allocated = this.#allocated;
    if (!allocated || allocated.data !== data) return null;
    const { bytes } = allocated;
    const payload = payloadBytes(data);
    if (
      payload.buffer !== bytes.buffer ||
      payload.byteOffset !== bytes.byteOffset + HEADER_BYTES ||
      payload.byteLength !== bytes.byteLength - HEADER_BYTES
    ) {
      // Its payload was replaced: give the loan back and copy as usual.
      this.discard();
      return null;
    }
    writeHeader(bytes, { ...data, payloadLength: payload.byteLength });
    this.#stamp(data, bytes);
    return this.send();
  }

  #write(data: RuntimeData, bytes: Uint8Array): void {
    encodeInto(data, bytes);
    this.#stamp(data, bytes);
  }

  #stamp(data: RuntimeData, bytes: Uint8Array): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
    // The port's own counter, always: readers count gaps in it as losses.
    this.#delivery = (this.#delivery % 0xffffffff) + 1;
    view.setUint32(WIRE_OFFSETS.delivery, this.#delivery, true);
    // Stamp what the producer left unset: sequence and send time.
    if (data.sequence === undefined || data.sequence === 0n) {
      view.setBigUint64(WIRE_OFFSETS.sequence, ++this.#sequence, true);
    }
    if (data.timestampNs === undefined || data.timestampNs === 0n) {
      view.setBigUint64(
        WIRE_OFFSETS.timestamp_ns,
        this.#ctx.lib.rmp_monotonic_ns(),
        true,
      );
    }
  }

  /**
   * Publishes RuntimeData, waiting (without blocking the event loop) while
   * the channel is full. Nothing is dropped. Unset `sequence` and
   * `timestampNs` are stamped at send time.
   *
   * @param data The message.
   * @param options Abort signal and timeout.
   * @returns How many subscribers received it.
   * @throws {BackpressureTimeoutError} when no space frees up in time.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * import { binary } from "@remotemedia/multiprocess/runtime-data";
   * await using ctx = await ChannelContext.create();
   * using pub = ctx.channel("x").publisher();
   * console.log(await pub.publish(binary(new Uint8Array([1])))); // 0
   * ```
   */
  async publish(
    data: RuntimeData,
    options: PublishOptions = {},
  ): Promise<number> {
    const sent = this.#sendAllocated(data);
    if (sent !== null) return sent;
    const bytes = await this.loanAsync(encodedSize(data), options);
    try {
      this.#write(data, bytes);
    } catch (e) {
      this.discard();
      throw e;
    }
    return this.send();
  }

  /**
   * Publishes RuntimeData if the channel has space.
   *
   * @param data The message.
   * @returns false when the channel is full (nothing was sent).
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * import { json } from "@remotemedia/multiprocess/runtime-data";
   * await using ctx = await ChannelContext.create();
   * using pub = ctx.channel("x").publisher();
   * console.log(pub.tryPublish(json({ a: 1 }))); // true
   * ```
   */
  tryPublish(data: RuntimeData): boolean {
    if (this.#sendAllocated(data) !== null) return true;
    const bytes = this.tryLoan(encodedSize(data));
    if (!bytes) return false;
    try {
      this.#write(data, bytes);
    } catch (e) {
      this.discard();
      throw e;
    }
    this.send();
    return true;
  }

  /**
   * How many subscribers are connected.
   *
   * @returns The count.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * const channel = ctx.channel("x");
   * using pub = channel.publisher();
   * using sub = channel.subscriber();
   * console.log(pub.subscriberCount()); // 1
   * ```
   */
  subscriberCount(): number {
    this.#assertOpen();
    checkCode(
      this.#ctx.lib.rmp_publisher_subscriber_count(this.#handle, this.#loanOut),
      `counting subscribers of "${this.channel}"`,
    );
    return Number(this.#loanOut[0]);
  }

  #assertOpen(): void {
    if (this.#closed || this.#ctx.closed) {
      throw new ChannelError(`The publisher of "${this.channel}" is closed`, {
        channel: this.channel,
      });
    }
  }

  /**
   * Discards an open loan and closes the publisher.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * ctx.channel("x").publisher().close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    if (this.#loan) this.#ctx.lib.rmp_loan_discard(this.#loan);
    this.#loan = null;
    this.#closed = true;
    this.#ctx.lib.rmp_publisher_destroy(this.#handle);
    this.#channel.forget(this);
  }

  /** Same as {@linkcode Publisher.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
