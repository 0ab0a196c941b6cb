/*
 * rmp.h: the C ABI of librmp_iceoryx2, a small layer over the iceoryx2 crate
 * (pinned to =0.10.0, the version of the iceoryx2 PyPI package) used by the
 * Deno side of @remotemedia/multiprocess. See docs/channel-protocol.md.
 *
 * Conventions
 * - Every fallible function returns int32_t: RMP_OK (0), RMP_WOULD_BLOCK (1)
 *   where documented, or a negative RMP_ERR_* code. After a negative code,
 *   rmp_last_error() returns the message for the calling thread.
 * - No panic crosses this boundary: a caught panic returns RMP_ERR_PANIC.
 * - Strings are (pointer, length) pairs of UTF-8 bytes, not NUL-terminated.
 * - Handles are opaque pointers created by *_create and freed by the matching
 *   *_destroy (which accepts NULL). Destroy children before parents:
 *   samples before their subscriber, loans before their publisher,
 *   publishers/subscribers before their channel, channels before their node,
 *   and every watched publisher/subscriber before the waker.
 * - Handles are not meant to be used from several threads at once.
 */
#ifndef RMP_H
#define RMP_H

#include <stddef.h>
#include <stdint.h>

#define RMP_OK 0
#define RMP_WOULD_BLOCK 1
#define RMP_ERR_INVALID_ARGUMENT (-1)
#define RMP_ERR_ICEORYX2 (-2)       /* iceoryx2 reported an error */
#define RMP_ERR_TOO_LARGE (-3)      /* loan larger than max_payload */
#define RMP_ERR_IO (-4)             /* socket / OS error */
#define RMP_ERR_PANIC (-5)          /* a Rust panic was caught */

typedef struct RmpNode RmpNode;
typedef struct RmpChannel RmpChannel;
typedef struct RmpPublisher RmpPublisher;
typedef struct RmpLoan RmpLoan;
typedef struct RmpSubscriber RmpSubscriber;
typedef struct RmpSample RmpSample;
typedef struct RmpWaker RmpWaker;

/* ABI version of this header: 1. */
uint32_t rmp_abi_version(void);

/* Copies the calling thread's last error message (UTF-8, not NUL-terminated)
 * into buf (up to cap bytes) and returns its full length in bytes. */
size_t rmp_last_error(uint8_t *buf, size_t cap);

/* CLOCK_MONOTONIC in nanoseconds: the clock shared by every process here,
 * the same as Python's time.monotonic_ns(). */
uint64_t rmp_monotonic_ns(void);

/* An iceoryx2 node (ipc_threadsafe) with the given isolation prefix and root
 * path, signal handling disabled. name may be empty. */
int32_t rmp_node_create(const uint8_t *name, size_t name_len,
                        const uint8_t *prefix, size_t prefix_len,
                        const uint8_t *root, size_t root_len, RmpNode **out);
void rmp_node_destroy(RmpNode *node);

/* Removes the resources of dead iceoryx2 nodes under this prefix/root;
 * writes how many nodes were cleaned to *out_cleaned (may be NULL). */
int32_t rmp_cleanup_dead_nodes(const uint8_t *prefix, size_t prefix_len,
                               const uint8_t *root, size_t root_len,
                               uint64_t *out_cleaned);

/* Opens or creates the three services of channel `name` (see the protocol). */
int32_t rmp_channel_open_or_create(RmpNode *node, const uint8_t *name,
                                   size_t name_len, uint64_t capacity,
                                   uint64_t max_subscribers, RmpChannel **out);
void rmp_channel_destroy(RmpChannel *channel);

/* Connects to the Unix stream socket at path (Deno listens on it). */
int32_t rmp_waker_create(const uint8_t *path, size_t path_len, RmpWaker **out);
/* Clears the pending flag: the next event writes a new byte. Call it after
 * reading the socket and before re-checking subscribers and publishers. */
void rmp_waker_rearm(RmpWaker *waker);
/* Joins nothing: every watching thread belongs to a publisher/subscriber
 * that must already be destroyed. */
void rmp_waker_destroy(RmpWaker *waker);

/* A publisher with the protocol's settings: exactly `capacity` chunks of
 * initial_max_slice_len bytes (Static allocation, see ffi/README.md "Growth").
 * waker may be NULL (no thread); otherwise a thread rings it when FREED
 * arrives. */
int32_t rmp_publisher_create(RmpChannel *channel, RmpWaker *waker,
                             uint64_t initial_max_slice_len,
                             uint64_t max_payload, RmpPublisher **out);
/* Loans len bytes (1 <= len <= max_payload). RMP_OK: *out_loan and *out_ptr
 * (64-byte aligned, writable, len bytes, NOT zeroed) are set. RMP_WOULD_BLOCK:
 * no chunk is free (the channel is full). A loan larger than the current chunk
 * size replaces the publisher's port by a larger one once every chunk is back
 * (RMP_WOULD_BLOCK until then; RMP_ERR_INVALID_ARGUMENT if an unsent loan of
 * this publisher is outstanding). len > max_payload: RMP_ERR_TOO_LARGE.
 * At most `capacity` unsent loans per publisher. */
int32_t rmp_publisher_loan(RmpPublisher *publisher, uint64_t len,
                           RmpLoan **out_loan, uint8_t **out_ptr);
/* Sends the loan (always consumed, even on error), then notifies DATA.
 * *out_recipients (may be NULL) gets the number of subscribers reached. */
int32_t rmp_loan_send(RmpLoan *loan, uint64_t *out_recipients);
/* Returns an unsent loan. */
void rmp_loan_discard(RmpLoan *loan);
/* Notifies CREDIT_REQUEST: subscribers answer with FREED. */
int32_t rmp_publisher_request_credit(RmpPublisher *publisher);
/* Number of subscribers currently connected to the publish-subscribe service. */
int32_t rmp_publisher_subscriber_count(RmpPublisher *publisher,
                                       uint64_t *out_count);
void rmp_publisher_destroy(RmpPublisher *publisher);

/* A subscriber. waker may be NULL (no thread: CREDIT_REQUEST is then handled
 * inside rmp_subscriber_receive); otherwise a thread rings it on DATA and
 * answers CREDIT_REQUEST by itself. */
int32_t rmp_subscriber_create(RmpChannel *channel, RmpWaker *waker,
                              RmpSubscriber **out);
/* RMP_OK: *out_sample, *out_ptr (read-only, in shared memory) and *out_len
 * are set. RMP_WOULD_BLOCK: no sample is waiting. */
int32_t rmp_subscriber_receive(RmpSubscriber *subscriber, RmpSample **out_sample,
                               const uint8_t **out_ptr, uint64_t *out_len);
/* Releases a sample back to its publisher (and answers a pending
 * CREDIT_REQUEST with FREED). */
void rmp_sample_release(RmpSample *sample);
void rmp_subscriber_destroy(RmpSubscriber *subscriber);

#endif /* RMP_H */
