/**
 * The FFI symbol table of `librmp_iceoryx2` (see `ffi/include/rmp.h`), with
 * the C signature beside each symbol. This is the only place that describes
 * the native ABI to Deno.
 *
 * @module
 */

/**
 * Every symbol of the native library, in the form `Deno.dlopen` takes.
 *
 * @example
 * ```ts
 * import { symbols } from "@remotemedia/multiprocess/ffi-symbols";
 * console.log(Object.keys(symbols).length > 0); // true
 * ```
 */
export const symbols = {
  /** uint32_t rmp_abi_version(void) */
  rmp_abi_version: { parameters: [], result: "u32" },
  /** size_t rmp_last_error(uint8_t *buf, size_t cap) */
  rmp_last_error: { parameters: ["buffer", "usize"], result: "usize" },
  /** uint64_t rmp_monotonic_ns(void) */
  rmp_monotonic_ns: { parameters: [], result: "u64" },
  /** int32_t rmp_node_create(const uint8_t *name, size_t name_len, const uint8_t *prefix, size_t prefix_len, const uint8_t *root, size_t root_len, RmpNode **out) */
  rmp_node_create: {
    parameters: [
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
    ],
    result: "i32",
  },
  /** void rmp_node_destroy(RmpNode *node) */
  rmp_node_destroy: { parameters: ["pointer"], result: "void" },
  /** int32_t rmp_cleanup_dead_nodes(const uint8_t *prefix, size_t prefix_len, const uint8_t *root, size_t root_len, uint64_t *out_cleaned) */
  rmp_cleanup_dead_nodes: {
    parameters: ["buffer", "usize", "buffer", "usize", "buffer"],
    result: "i32",
  },
  /** int32_t rmp_channel_open_or_create(RmpNode *node, const uint8_t *name, size_t name_len, uint64_t capacity, uint64_t max_subscribers, RmpChannel **out) */
  rmp_channel_open_or_create: {
    parameters: ["pointer", "buffer", "usize", "u64", "u64", "buffer"],
    result: "i32",
  },
  /**
   * The same function, run on a thread of Deno's pool: creating a service
   * fsyncs its static config file (iceoryx2 0.10, under the root in /tmp),
   * milliseconds each on a busy disk, which blocked the event loop for
   * hundreds of ms when sessions started at once.
   */
  rmp_channel_open_or_create_nonblocking: {
    name: "rmp_channel_open_or_create",
    parameters: ["pointer", "buffer", "usize", "u64", "u64", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  /** void rmp_channel_destroy(RmpChannel *channel) */
  rmp_channel_destroy: { parameters: ["pointer"], result: "void" },
  /** int32_t rmp_waker_create(const uint8_t *path, size_t path_len, RmpWaker **out) */
  rmp_waker_create: {
    parameters: ["buffer", "usize", "buffer"],
    result: "i32",
  },
  /** void rmp_waker_rearm(RmpWaker *waker) */
  rmp_waker_rearm: { parameters: ["pointer"], result: "void" },
  /** void rmp_waker_destroy(RmpWaker *waker) */
  rmp_waker_destroy: { parameters: ["pointer"], result: "void" },
  /** int32_t rmp_publisher_create(RmpChannel *channel, RmpWaker *waker, uint64_t initial_max_slice_len, uint64_t max_payload, RmpPublisher **out) */
  rmp_publisher_create: {
    parameters: ["pointer", "pointer", "u64", "u64", "buffer"],
    result: "i32",
  },
  /** int32_t rmp_publisher_loan(RmpPublisher *publisher, uint64_t len, RmpLoan **out_loan, uint8_t **out_ptr) */
  rmp_publisher_loan: {
    parameters: ["pointer", "u64", "buffer", "buffer"],
    result: "i32",
  },
  /** int32_t rmp_loan_send(RmpLoan *loan, uint64_t *out_recipients) */
  rmp_loan_send: { parameters: ["pointer", "buffer"], result: "i32" },
  /** void rmp_loan_discard(RmpLoan *loan) */
  rmp_loan_discard: { parameters: ["pointer"], result: "void" },
  /** int32_t rmp_publisher_request_credit(RmpPublisher *publisher) */
  rmp_publisher_request_credit: { parameters: ["pointer"], result: "i32" },
  /** int32_t rmp_publisher_subscriber_count(RmpPublisher *publisher, uint64_t *out_count) */
  rmp_publisher_subscriber_count: {
    parameters: ["pointer", "buffer"],
    result: "i32",
  },
  /** void rmp_publisher_destroy(RmpPublisher *publisher) */
  rmp_publisher_destroy: { parameters: ["pointer"], result: "void" },
  /** int32_t rmp_subscriber_create(RmpChannel *channel, RmpWaker *waker, RmpSubscriber **out) */
  rmp_subscriber_create: {
    parameters: ["pointer", "pointer", "buffer"],
    result: "i32",
  },
  /** int32_t rmp_subscriber_receive(RmpSubscriber *subscriber, RmpSample **out_sample, const uint8_t **out_ptr, uint64_t *out_len) */
  rmp_subscriber_receive: {
    parameters: ["pointer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  /** void rmp_sample_release(RmpSample *sample) */
  rmp_sample_release: { parameters: ["pointer"], result: "void" },
  /** void rmp_subscriber_destroy(RmpSubscriber *subscriber) */
  rmp_subscriber_destroy: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;
