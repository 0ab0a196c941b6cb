/**
 * {@linkcode Sample}: a received message, viewed in shared memory until it is
 * released.
 *
 * @module
 */
import { ChannelError } from "../../errors.ts";
import { decode, type RuntimeData } from "../runtime_data/mod.ts";
import type { Pointer } from "./_shared.ts";
import type { Subscriber } from "./subscriber.ts";

/** Returns the object it is given, so a subclass can add a private field to
 * any object (the "private field stamp" pattern). */
class Stampable {
  constructor(target: object) {
    return target;
  }
}

/**
 * Makes a payload view keep the sample's `bytes` reachable, so the
 * garbage-collection backstop (registered on `bytes`) never frees a chunk
 * that is still viewed. A private field, unlike a `WeakMap` entry, costs the
 * collector nothing and, unlike a property, is invisible to `Object.keys`,
 * `JSON.stringify` and deep equality.
 */
class KeepAlive extends Stampable {
  #owner: Uint8Array;
  private constructor(view: object, owner: Uint8Array) {
    super(view);
    this.#owner = owner;
  }

  static attach(view: object, owner: Uint8Array): void {
    if (#owner in view) (view as KeepAlive).#owner = owner;
    else new KeepAlive(view, owner);
  }
}

/** The typed array that holds the payload of a decoded message. */
function payloadField(data: RuntimeData): object {
  switch (data.kind) {
    case "audio":
      return data.samples;
    case "text":
    case "json":
      return data.bytes;
    default:
      return data.data;
  }
}

/**
 * A received message: `bytes` is a read-only view of the sample in shared
 * memory, valid until `release()` (or the end of a `using` block). Release
 * samples promptly: each one holds a chunk of the publisher's capacity.
 *
 * A sample that is never released gives its chunk back when it is garbage
 * collected (a backstop for leaks, at a time of the engine's choosing, not a
 * substitute for `release()` or `using`). Its `bytes`, its `data` and the
 * payload view of `data` keep it alive while any of them is reachable; a
 * view derived from them (`subarray()`, a new typed array over the same
 * memory) does not, so keep the sample while you use one. Closing the
 * subscriber releases its samples.
 *
 * @example
 * ```ts
 * import { ChannelContext } from "@remotemedia/multiprocess/channel";
 * import { text } from "@remotemedia/multiprocess/runtime-data";
 * await using ctx = await ChannelContext.create();
 * const channel = ctx.channel("x");
 * using sub = channel.subscriber();
 * using pub = channel.publisher();
 * await pub.publish(text("hi"));
 * const sample = await sub.receive();
 * console.log(sample?.data.kind); // "text"
 * sample?.release();
 * ```
 */
export class Sample implements Disposable {
  readonly #subscriber: Subscriber;
  #handle: Pointer | null;
  #bytes: Uint8Array;
  #data: RuntimeData | undefined;

  /** @internal */
  constructor(subscriber: Subscriber, handle: Pointer, bytes: Uint8Array) {
    this.#subscriber = subscriber;
    this.#handle = handle;
    this.#bytes = bytes;
  }

  /** The raw message (header and payload) in shared memory. */
  get bytes(): Uint8Array {
    this.#assertHeld();
    return this.#bytes;
  }

  /**
   * The message decoded as RuntimeData; its payload views the shared memory.
   * @throws {WireFormatError} when the header is invalid.
   */
  get data(): RuntimeData {
    this.#assertHeld();
    if (this.#data === undefined) {
      const data = decode(this.#bytes);
      // `data` holds its payload view, which now holds `bytes`.
      KeepAlive.attach(payloadField(data), this.#bytes);
      this.#data = data;
    }
    return this.#data;
  }

  /** True until released. */
  get held(): boolean {
    return this.#handle !== null && this.#subscriber.holds(this.#handle);
  }

  #assertHeld(): void {
    if (!this.held) {
      throw new ChannelError(
        "The sample was released: its memory may already be reused",
      );
    }
  }

  /**
   * Gives the sample back to its publisher. Views of it become invalid.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using sub = ctx.channel("x").subscriber();
   * sub.tryReceive()?.release();
   * ```
   */
  release(): void {
    const handle = this.#handle;
    if (!handle) return;
    this.#handle = null;
    this.#bytes = new Uint8Array(0);
    this.#data = undefined;
    this.#subscriber.released(this, handle);
  }

  /** Same as {@linkcode Sample.release}. */
  [Symbol.dispose](): void {
    this.release();
  }
}
