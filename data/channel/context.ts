/**
 * {@linkcode ChannelContext}: one iceoryx2 node in one isolation, plus the
 * doorbell (a Unix socket rung by native threads and by publishers of other
 * processes) that wakes waiting publishers and subscribers.
 *
 * @module
 */
import { BellRegistry } from "../bells.ts";
import { ChannelError } from "../../errors.ts";
import {
  holdIsolation,
  type Isolation,
  type IsolationLock,
  newIsolation,
  removeIsolation,
  restrictGlobalSegment,
  sweepStaleIsolations,
} from "../isolation.ts";
import { checkCode, loadNativeLibrary, type NativeSymbols } from "../native.ts";
import { encoder, type Pointer, ViewCache } from "./_shared.ts";
import { Channel } from "./channel.ts";
import type { ChannelContextOptions, ChannelOptions } from "./options.ts";

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
  /** Opens in flight ({@linkcode ChannelContext.openChannel}), settled never rejecting. */
  readonly #opening = new Set<Promise<void>>();
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
    const lib = await loadNativeLibrary();
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
      // The node made the domain's world-writable counter segment.
      restrictGlobalSegment(isolation);
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
    const { capacity, bytes, maxSubscribers } = channelArgs(name, options);
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
    return this.#adopt(name, capacity, this.out[0]);
  }

  /**
   * {@linkcode ChannelContext.channel} without blocking the event loop:
   * creating a channel's services writes and fsyncs files, which takes
   * milliseconds on a busy disk, so this runs it on another thread.
   * {@linkcode ChannelContext.close} waits for opens in flight.
   *
   * @param name The channel name, e.g. `asr.out`.
   * @param options Capacity and subscriber limit.
   * @returns The channel.
   * @throws {ChannelError} When the context is (or gets) closed, or the open fails.
   * @throws {RangeError} For a capacity or subscriber limit below 1.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * const channel = await ctx.openChannel("audio", { capacity: 4 });
   * console.log(channel.name); // "audio"
   * ```
   */
  async openChannel(
    name: string,
    options: ChannelOptions = {},
  ): Promise<Channel> {
    this.#assertOpen();
    const { capacity, bytes, maxSubscribers } = channelArgs(name, options);
    // Its own out-parameter: other native calls may run meanwhile.
    const out = new BigUint64Array(1);
    const opening = (async () => {
      const rc = await this.#lib.rmp_channel_open_or_create_nonblocking(
        this.#node,
        bytes,
        BigInt(bytes.length),
        BigInt(capacity),
        BigInt(maxSubscribers),
        out,
      );
      if (this.#closed) {
        if (rc === 0) {
          this.#lib.rmp_channel_destroy(
            Deno.UnsafePointer.create(out[0]) as Pointer,
          );
        }
        throw new ChannelError(
          `Cannot open channel "${name}": the channel context was closed meanwhile`,
        );
      }
      checkCode(rc, `opening channel "${name}"`);
      return this.#adopt(name, capacity, out[0]);
    })();
    const settled = opening.then(() => {}, () => {});
    this.#opening.add(settled);
    settled.then(() => this.#opening.delete(settled));
    return await opening;
  }

  #adopt(name: string, capacity: number, handle: bigint): Channel {
    const channel = new Channel(
      this,
      name,
      capacity,
      Deno.UnsafePointer.create(handle) as Pointer,
    );
    this.#channels.add(channel);
    return channel;
  }

  /**
   * Removes what iceoryx2 nodes of processes that died left in this
   * context's isolation (their ports, so their publishers' chunks come back
   * to the readers' and their subscribers stop holding publishers' chunks).
   * Only dead nodes are touched: a live process's are never removed.
   *
   * @returns How many dead nodes were cleaned.
   *
   * @example
   * ```ts
   * import { ChannelContext } from "@remotemedia/multiprocess/channel";
   * await using ctx = await ChannelContext.create();
   * console.log(ctx.cleanupDeadNodes()); // 0
   * ```
   */
  cleanupDeadNodes(): number {
    this.#assertOpen();
    const prefix = encoder.encode(this.isolation.prefix);
    const root = encoder.encode(this.isolation.root);
    const out = new BigUint64Array(1);
    checkCode(
      this.#lib.rmp_cleanup_dead_nodes(
        prefix,
        BigInt(prefix.length),
        root,
        BigInt(root.length),
        out,
      ),
      "cleaning up dead iceoryx2 nodes",
    );
    return Number(out[0]);
  }

  /** @internal */
  forget(channel: Channel): void {
    this.#channels.delete(channel);
  }

  #assertOpen(): void {
    if (this.#closed) throw new ChannelError("The channel context is closed");
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
    // An open in flight uses the node on another thread: let it finish
    // (it then destroys its channel and fails).
    await Promise.all([...this.#opening]);
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

/** Checks and converts the arguments of a channel open. */
function channelArgs(
  name: string,
  options: ChannelOptions,
): { capacity: number; maxSubscribers: number; bytes: Uint8Array } {
  const capacity = options.capacity ?? 8;
  const maxSubscribers = options.maxSubscribers ?? 8;
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError(
      `Invalid capacity ${capacity}: it must be a positive integer`,
    );
  }
  if (!Number.isInteger(maxSubscribers) || maxSubscribers < 1) {
    throw new RangeError(
      `Invalid maxSubscribers ${maxSubscribers}: it must be a positive integer`,
    );
  }
  if (!name) throw new TypeError("Cannot open a channel: the name is empty");
  const bytes = encoder.encode(name);
  return { capacity, maxSubscribers, bytes };
}
