/**
 * {@linkcode Channel}: one publish-subscribe service and its event services;
 * it makes publishers and subscribers.
 *
 * @module
 */
import { CHANNEL_DEFAULT_MAX_PAYLOAD_BYTES } from "../../protocol/contracts.ts";
import { ChannelError } from "../../errors.ts";
import { checkCode } from "../native.ts";
import type { Pointer } from "./_shared.ts";
import type { ChannelContext } from "./context.ts";
import type { PublisherOptions } from "./options.ts";
import { Publisher } from "./publisher.ts";
import { Subscriber } from "./subscriber.ts";

/**
 * A channel: one publish-subscribe service plus its two event services.
 * Made by {@linkcode ChannelContext.channel}.
 *
 * @example
 * ```ts
 * import { ChannelContext } from "@remotemedia/multiprocess/channel";
 * await using ctx = await ChannelContext.create();
 * using channel = ctx.channel("frames");
 * console.log(channel.capacity); // 8
 * ```
 */
export class Channel implements Disposable {
  /** The channel name. */
  readonly name: string;
  /** Samples in flight. */
  readonly capacity: number;
  readonly #context: ChannelContext;
  readonly #handle: Pointer;
  readonly #ports = new Set<Publisher | Subscriber>();
  #closed = false;

  /** @internal */
  constructor(
    context: ChannelContext,
    name: string,
    capacity: number,
    handle: Pointer,
  ) {
    this.#context = context;
    this.name = name;
    this.capacity = capacity;
    this.#handle = handle;
  }

  /**
   * A publisher on this channel (its writes are zero copy).
   *
   * @param options Payload bound, chunk size and publish timeout.
   * @returns The publisher.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using pub = ctx.channel("x").publisher({ publishTimeoutMs: 1000 });
   * console.log(pub.channel); // "x"
   * ```
   */
  publisher(options: PublisherOptions = {}): Publisher {
    this.#assertOpen();
    const maxPayloadBytes = options.maxPayloadBytes ??
      CHANNEL_DEFAULT_MAX_PAYLOAD_BYTES;
    const initialChunkBytes = options.initialChunkBytes ?? 4096;
    const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
    for (
      const [key, value] of Object.entries({
        maxPayloadBytes,
        initialChunkBytes,
        publishTimeoutMs,
      })
    ) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`${key} must be a positive integer, got ${value}`);
      }
    }
    const ctx = this.#context;
    checkCode(
      ctx.lib.rmp_publisher_create(
        this.#handle,
        ctx.waker,
        BigInt(initialChunkBytes),
        BigInt(maxPayloadBytes),
        ctx.out,
      ),
      `creating a publisher on "${this.name}"`,
    );
    const publisher = new Publisher(
      ctx,
      this,
      Deno.UnsafePointer.create(ctx.out[0]) as Pointer,
      maxPayloadBytes,
      publishTimeoutMs,
    );
    this.#ports.add(publisher);
    return publisher;
  }

  /**
   * A subscriber on this channel; its samples are views of shared memory.
   *
   * @returns The subscriber.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * using sub = ctx.channel("x").subscriber();
   * console.log(sub.tryReceive()); // null
   * ```
   */
  subscriber(): Subscriber {
    this.#assertOpen();
    const ctx = this.#context;
    // Linked before the port exists: a publisher looks for bells when its
    // subscriber count changes (data/bells.ts).
    ctx.addBell(this.name);
    try {
      checkCode(
        ctx.lib.rmp_subscriber_create(this.#handle, ctx.waker, ctx.out),
        `creating a subscriber on "${this.name}"`,
      );
    } catch (e) {
      ctx.removeBell(this.name);
      throw e;
    }
    const subscriber = new Subscriber(
      ctx,
      this,
      Deno.UnsafePointer.create(ctx.out[0]) as Pointer,
    );
    this.#ports.add(subscriber);
    return subscriber;
  }

  /** @internal */
  forget(port: Publisher | Subscriber): void {
    this.#ports.delete(port);
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new ChannelError(`Channel "${this.name}" is closed`, {
        channel: this.name,
      });
    }
  }

  /**
   * Closes the channel's publishers and subscribers, then the channel.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * ctx.channel("x").close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const port of [...this.#ports]) port.close();
    this.#context.lib.rmp_channel_destroy(this.#handle);
    this.#context.forget(this);
  }

  /** Same as {@linkcode Channel.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
