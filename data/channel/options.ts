/**
 * Options and statistics of the channel classes.
 *
 * @module
 */
import type { Isolation } from "../isolation.ts";

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
  /**
   * Messages a subscriber missed: gaps in its publisher's delivery counter
   * (header offset 12). Always 0 for a publisher.
   */
  lost: number;
}
