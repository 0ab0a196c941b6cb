/**
 * Zero-copy publish-subscribe channels over iceoryx2 shared memory.
 *
 * A {@linkcode ChannelContext} owns one iceoryx2 node in one isolation (prefix
 * and root) and one Unix socket that native threads ring when a sample or
 * free space arrives: an idle subscriber costs no CPU, and waiting never
 * blocks the event loop. Publishers write RuntimeData straight into loaned
 * shared memory; subscribers get views of the sample in place.
 *
 * @module
 */
import { BellRegistry } from "./bells.ts";
import {
  CHANNEL_DEFAULT_MAX_PAYLOAD_BYTES,
  WIRE_OFFSETS,
} from "../protocol/contracts.ts";
import { BackpressureTimeoutError, ChannelError } from "../errors.ts";
import {
  holdIsolation,
  type Isolation,
  type IsolationLock,
  newIsolation,
  removeIsolation,
  sweepStaleIsolations,
} from "./isolation.ts";
import {
  checkCode,
  nativeLibrary,
  type NativeSymbols,
  RMP_WOULD_BLOCK,
} from "./native.ts";
import {
  decode,
  encodedSize,
  encodeInto,
  payloadBytes,
  type RuntimeData,
  writeHeader,
} from "./runtime_data.ts";

/** Bytes of the RuntimeData header that precedes every payload. */
const HEADER_BYTES = 128;
const encoder = new TextEncoder();

/** Options of {@linkcode ChannelContext.create}. */
export interface ChannelContextOptions {
  /**
   * The isolation to use. When omitted, a new one is made (and locked), and
   * removed from disk by {@linkcode ChannelContext.close}. A given one is
   * held with a shared lock while the context is open, when it has a lock
   * file (docs/channel-protocol.md, "Isolation").
   */
  isolation?: Isolation;
  /**
   * Remove the isolation's files on close. With false, an isolation made
   * here stays locked (so no sweeper removes it) until the process exits.
   * @default {true when the isolation was made here}
   */
  removeOnClose?: boolean;
}

/** Options of {@linkcode ChannelContext.channel}. */
export interface ChannelOptions {
  /**
   * Samples in flight per channel: the subscriber buffer and the publisher's
   * chunk count. Shared memory per channel is about
   * `capacity * nextPowerOfTwo(128 + largest payload)` bytes.
   * @default {8}
   */
  capacity?: number;
  /**
   * Most subscribers the channel accepts.
   * @default {8}
   */
  maxSubscribers?: number;
}

/** Options of {@linkcode Channel.publisher}. */
export interface PublisherOptions {
  /**
   * Largest message (header + payload) a loan may hold, in bytes.
   * @default {67108992 (64 MiB + 128)}
   */
  maxPayloadBytes?: number;
  /**
   * Initial chunk size; chunks grow by powers of two up to the largest loan.
   * @default {4096}
   */
  initialChunkBytes?: number;
  /**
   * How long `publish()` waits for a subscriber to free space before it
   * fails with {@linkcode BackpressureTimeoutError}, in milliseconds.
   * @default {5000}
   */
  publishTimeoutMs?: number;
}

/** Options of {@linkcode Publisher.publish} and {@linkcode Publisher.loanAsync}. */
export interface PublishOptions {
  /** Aborts the wait for space. */
  signal?: AbortSignal;
  /**
   * Overrides the publisher's `publishTimeoutMs` for this call.
   * @default {the publisher's publishTimeoutMs}
   */
  timeoutMs?: number;
}

/** Options of {@linkcode Subscriber.receive}. */
export interface ReceiveOptions {
  /** Aborts the wait. */
  signal?: AbortSignal;
  /**
   * Gives up after this many milliseconds (then `receive` returns null).
   * @default {no bound: the wait ends with a sample, the signal or close()}
   */
  timeoutMs?: number;
}

/** Statistics of one publisher or subscriber. */
export interface PortStats {
  /** Messages sent or received. */
  messages: number;
  /** Bytes sent or received (headers included). */
  bytes: number;
  /** Loans (publisher) or samples (subscriber) held right now. */
  held: number;
}

type Pointer = NonNullable<Deno.PointerValue>;

/** Caches zero-copy views by (address, length): creating one costs ~0.7 us. */
class ViewCache {
  #views = new Map<bigint, Map<number, ArrayBuffer>>();
  #size = 0;

  view(address: bigint, length: number): Uint8Array {
    // Safe to reuse: a sample of `length` bytes at `address` proves that
    // [address, address + length) is mapped right now.
    let byLength = this.#views.get(address);
    let buffer = byLength?.get(length);
    if (!buffer) {
      if (this.#size >= 256) {
        this.#views.clear();
        this.#size = 0;
      }
      const pointer = Deno.UnsafePointer.create(address) as Pointer;
      buffer = Deno.UnsafePointerView.getArrayBuffer(pointer, length);
      if (!byLength) this.#views.set(address, byLength = new Map());
      byLength.set(length, buffer);
      this.#size++;
    }
    return new Uint8Array(buffer, 0, length);
  }

  clear(): void {
    this.#views.clear();
    this.#size = 0;
  }
}

/**
 * One iceoryx2 node in one isolation, plus the doorbell that wakes waiting
 * publishers and subscribers. Create with {@linkcode ChannelContext.create};
 * close with `close()` or `await using`.
 *
 * @example Send bytes to yourself
 * ```ts
 * import { ChannelContext } from "@remotemedia/multiprocess/channel";
 * await using ctx = await ChannelContext.create();
 * const channel = ctx.channel("demo");
 * using sub = channel.subscriber();
 * using pub = channel.publisher();
 * const bytes = pub.loan(4);
 * bytes.set([1, 2, 3, 4]);
 * pub.send();
 * using sample = await sub.receive();
 * console.log(sample?.bytes); // Uint8Array(4) [ 1, 2, 3, 4 ]
 * ```
 */
export class ChannelContext implements AsyncDisposable {
  /** The isolation this context's node lives in. */
  readonly isolation: Isolation;
  readonly #lib: NativeSymbols;
  readonly #node: Pointer;
  readonly #waker: Pointer;
  readonly #listener: Deno.UnixListener;
  readonly #conn: Deno.UnixConn;
  readonly #removeOnClose: boolean;
  readonly #held: IsolationLock | null;
  readonly #channels = new Set<Channel>();
  #waiters: Array<() => void> = [];
  #closed = false;
  #pump: Promise<void>;
  readonly #bells: BellRegistry;
  readonly #bellConns = new Set<Deno.UnixConn>();
  readonly #bellReads = new Set<Promise<void>>();
  readonly #bellAccept: Promise<void>;
  #bellsAccepted = 0;
  #bellRings = 0;
  /** @internal */
  readonly views: ViewCache = new ViewCache();
  /** @internal scratch out-parameters for native calls. */
  readonly out: BigUint64Array = new BigUint64Array(4);

  private constructor(
    isolation: Isolation,
    lib: NativeSymbols,
    node: Pointer,
    waker: Pointer,
    listener: Deno.UnixListener,
    conn: Deno.UnixConn,
    removeOnClose: boolean,
    held: IsolationLock | null,
  ) {
    this.isolation = isolation;
    this.#held = held;
    this.#lib = lib;
    this.#node = node;
    this.#waker = waker;
    this.#listener = listener;
    this.#conn = conn;
    this.#removeOnClose = removeOnClose;
    this.#pump = this.#runDoorbell();
    this.#bells = new BellRegistry(isolation.root, listener.addr.path);
    this.#bellAccept = this.#acceptBells();
  }

  /**
   * Creates a context: sweeps the leftovers of dead processes, creates the
   * iceoryx2 node and connects the native doorbell.
   *
   * @param options Isolation and clean-up.
   * @returns The context.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * const ctx = await ChannelContext.create();
   * await ctx.close();
   * ```
   */
  static async create(
    options: ChannelContextOptions = {},
  ): Promise<ChannelContext> {
    const lib = nativeLibrary();
    sweepStaleIsolations();
    // Made here: locked before any file of it exists. Given: held shared, so
    // no sweeper removes it while this context uses it.
    const isolation = options.isolation ?? newIsolation();
    const held = options.isolation ? holdIsolation(options.isolation) : null;
    const removeOnClose = options.removeOnClose ?? !options.isolation;
    try {
      await Deno.mkdir(isolation.root, { recursive: true });
      const prefix = encoder.encode(isolation.prefix);
      const root = encoder.encode(isolation.root);
      const out = new BigUint64Array(1);
      const name = encoder.encode(`deno-${Deno.pid}`);
      checkCode(
        lib.rmp_node_create(
          name,
          BigInt(name.length),
          prefix,
          BigInt(prefix.length),
          root,
          BigInt(root.length),
          out,
        ),
        "creating the iceoryx2 node",
      );
      const node = Deno.UnsafePointer.create(out[0]) as Pointer;
      const socketPath = `${isolation.root}doorbell-${Deno.pid}-${
        crypto.randomUUID().slice(0, 8)
      }.sock`;
      const listener = Deno.listen({ transport: "unix", path: socketPath });
      const accepted = listener.accept();
      const path = encoder.encode(socketPath);
      const rc = lib.rmp_waker_create(path, BigInt(path.length), out);
      if (rc < 0) {
        listener.close();
        lib.rmp_node_destroy(node);
        checkCode(rc, "connecting the native doorbell");
      }
      const waker = Deno.UnsafePointer.create(out[0]) as Pointer;
      const conn = await accepted;
      return new ChannelContext(
        isolation,
        lib,
        node,
        waker,
        listener,
        conn,
        removeOnClose,
        held,
      );
    } catch (e) {
      held?.release();
      if (!options.isolation) removeIsolation(isolation);
      throw e;
    }
  }

  /** The native waker's byte: re-arm it before waking anyone, so an event
   * after this point rings again. */
  #runDoorbell(): Promise<void> {
    return this.#readRings(this.#conn, () => {
      this.#lib.rmp_waker_rearm(this.#waker);
      this.#wakeAll();
    });
  }

  /** Calls `onRing` after every read from `conn` until it ends or the
   * context closes. */
  async #readRings(conn: Deno.UnixConn, onRing: () => void): Promise<void> {
    const buffer = new Uint8Array(64);
    while (!this.#closed) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch {
        n = null;
      }
      if (n === null) break;
      onRing();
    }
  }

  /** Publishers of other processes connect to ring the bell directly. */
  async #acceptBells(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.UnixConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // the listener closed
      }
      if (this.#closed) {
        conn.close();
        return;
      }
      this.#bellConns.add(conn);
      this.#bellsAccepted++;
      const read = this.#readBell(conn);
      this.#bellReads.add(read);
      read.finally(() => this.#bellReads.delete(read));
    }
  }

  async #readBell(conn: Deno.UnixConn): Promise<void> {
    await this.#readRings(conn, () => {
      this.#bellRings++;
      this.#wakeAll();
    });
    this.#bellConns.delete(conn);
    try {
      conn.close();
    } catch { /* closed by close() */ }
  }

  /** @internal Links this context's bell for one more subscriber of `channel`. */
  addBell(channel: string): void {
    this.#bells.add(channel);
  }

  /** @internal */
  removeBell(channel: string): void {
    this.#bells.remove(channel);
  }

  /** @internal Direct doorbell counters (tests and benchmarks). */
  get bellStats(): { connected: number; accepted: number; rings: number } {
    return {
      connected: this.#bellConns.size,
      accepted: this.#bellsAccepted,
      rings: this.#bellRings,
    };
  }

  #wakeAll(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** @internal Resolves on the next doorbell, abort, timeout or close. */
  waitForDoorbell(signal?: AbortSignal, timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      if (timeoutMs !== undefined) timer = setTimeout(done, timeoutMs);
      signal?.addEventListener("abort", done, { once: true });
      this.#waiters.push(done);
    });
  }

  /** @internal */
  get lib(): NativeSymbols {
    return this.#lib;
  }

  /** @internal */
  get waker(): Pointer {
    return this.#waker;
  }

  /** True once {@linkcode ChannelContext.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Opens (or creates) channel `name` with the protocol's settings.
   *
   * @param name The channel name, e.g. `asr.out`.
   * @param options Capacity and subscriber limit.
   * @returns The channel.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * const channel = ctx.channel("audio", { capacity: 4 });
   * console.log(channel.name); // "audio"
   * ```
   */
  channel(name: string, options: ChannelOptions = {}): Channel {
    this.#assertOpen();
    const capacity = options.capacity ?? 8;
    const maxSubscribers = options.maxSubscribers ?? 8;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `capacity must be a positive integer, got ${capacity}`,
      );
    }
    if (!Number.isInteger(maxSubscribers) || maxSubscribers < 1) {
      throw new RangeError(
        `maxSubscribers must be a positive integer, got ${maxSubscribers}`,
      );
    }
    if (!name) throw new TypeError("channel name must not be empty");
    const bytes = encoder.encode(name);
    checkCode(
      this.#lib.rmp_channel_open_or_create(
        this.#node,
        bytes,
        BigInt(bytes.length),
        BigInt(capacity),
        BigInt(maxSubscribers),
        this.out,
      ),
      `opening channel "${name}"`,
    );
    const channel = new Channel(
      this,
      name,
      capacity,
      Deno.UnsafePointer.create(this.out[0]) as Pointer,
    );
    this.#channels.add(channel);
    return channel;
  }

  /** @internal */
  forget(channel: Channel): void {
    this.#channels.delete(channel);
  }

  #assertOpen(): void {
    if (this.#closed) throw new ChannelError("the channel context is closed");
  }

  /**
   * Closes every channel, publisher, subscriber and sample of this context,
   * the doorbell and the node, then removes the isolation's files when it
   * owns them. Views of samples become invalid.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * const ctx = await ChannelContext.create();
   * await ctx.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const channel of [...this.#channels]) channel.close();
    this.views.clear();
    this.#wakeAll();
    // Channels joined their threads; the waker has no user left.
    this.#lib.rmp_waker_destroy(this.#waker);
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#bells.clear();
    this.#listener.close();
    for (const conn of this.#bellConns) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    await this.#bellAccept;
    await Promise.all([...this.#bellReads]);
    await this.#pump;
    this.#lib.rmp_node_destroy(this.#node);
    // Release our own shared hold first: removal needs the exclusive lock.
    this.#held?.release();
    if (this.#removeOnClose) removeIsolation(this.isolation);
  }

  /** Same as {@linkcode ChannelContext.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

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
      throw new ChannelError(`channel "${this.name}" is closed`, {
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
        `a loan on "${this.channel}" is already open: send() or discard() it first`,
        { channel: this.channel },
      );
    }
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(`loan size must be a positive integer, got ${size}`);
    }
    if (size > this.#maxPayloadBytes) {
      throw new ChannelError(
        `a ${size}-byte message exceeds the ${this.#maxPayloadBytes}-byte limit of "${this.channel}"`,
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
      throw new ChannelError(`channel "${this.channel}" is full`, {
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
      await this.#ctx.waitForDoorbell(options.signal, left);
      this.#assertOpen();
      const again = this.tryLoan(size);
      if (again) return again;
    }
    // Let iceoryx2 reclaim what dead subscribers held, so the channel can
    // recover, but still report this publish as failed.
    const isolation = this.#ctx.isolation;
    const prefix = encoder.encode(isolation.prefix);
    const root = encoder.encode(isolation.root);
    this.#ctx.lib.rmp_cleanup_dead_nodes(
      prefix,
      BigInt(prefix.length),
      root,
      BigInt(root.length),
      null,
    );
    throw new BackpressureTimeoutError(
      `no subscriber of "${this.channel}" freed space within ${timeoutMs} ms (dead or stalled)`,
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
      throw new ChannelError(`no open loan on "${this.channel}"`, {
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
        `cannot allocate ${like.kind} in place: build it and publish()`,
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
      throw new ChannelError(`the publisher of "${this.channel}" is closed`, {
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

/**
 * A received message: `bytes` is a read-only view of the sample in shared
 * memory, valid until `release()` (or the end of a `using` block). Release
 * samples promptly: each one holds a chunk of the publisher's capacity.
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
    return this.#data ??= decode(this.#bytes);
  }

  /** True until released. */
  get held(): boolean {
    return this.#handle !== null;
  }

  #assertHeld(): void {
    if (!this.#handle) {
      throw new ChannelError(
        "the sample was released: its memory may already be reused",
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
  readonly #held = new Set<Sample>();
  readonly #closeController = new AbortController();
  #messages = 0;
  #bytes = 0;
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
    };
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
    const sample = new Sample(
      this,
      Deno.UnsafePointer.create(this.#sampleOut[0]) as Pointer,
      length === 0
        ? new Uint8Array(0)
        : this.#ctx.views.view(this.#addressOut[0], length),
    );
    this.#held.add(sample);
    this.#messages++;
    this.#bytes += length;
    return sample;
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

  /** @internal */
  released(sample: Sample, handle: Pointer): void {
    if (!this.#held.delete(sample)) return;
    this.#ctx.lib.rmp_sample_release(handle);
  }

  #assertOpen(): void {
    if (this.#closed || this.#ctx.closed) {
      throw new ChannelError(`the subscriber of "${this.channel}" is closed`, {
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
    for (const sample of [...this.#held]) sample.release();
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
