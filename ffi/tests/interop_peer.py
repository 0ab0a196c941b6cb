"""Python peer for ffi/tests/interop.rs: the official iceoryx2 0.10.0 package opening the
services that the Rust crate created, with the builder calls documented in ffi/README.md.

Usage: interop_peer.py PREFIX ROOT DOWN UP CAPACITY MAX_SUBSCRIBERS
       interop_peer.py linger PREFIX ROOT NAME CAPACITY MAX_SUBSCRIBERS
DOWN is published by Rust (Python subscribes), UP is published by Python (Rust subscribes).
Progress lines go to stdout; commands come from stdin, one per line.
"""

from __future__ import annotations

import ctypes
import sys
import time

import iceoryx2 as iox2

DATA = iox2.EventId.new(1)
CREDIT_REQUEST = iox2.EventId.new(2)
FREED = iox2.EventId.new(1)
WAIT = iox2.Duration.from_secs(10)


def wait_for(
    listener: iox2.Listener, event: iox2.EventId, seconds: float = 10.0
) -> bool:
    """Waits until `event` arrives. A wait may return early with no event at all (the wake-up
    primitive counts notifications, the id set coalesces them), so loop on a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = iox2.Duration.from_secs_f64(max(deadline - time.monotonic(), 0.001))
        if event.as_value in [e.id.as_value for e in listener.timed_wait(left)]:
            return True
    return False


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make_node(prefix: str, root: str) -> iox2.Node:
    cfg = iox2.config.default()
    cfg.global_cfg.prefix = iox2.FileName.new(prefix)
    cfg.global_cfg.root_path = iox2.Path.new(root)
    return (
        iox2.NodeBuilder.new()
        .config(cfg)
        .signal_handling_mode(iox2.SignalHandlingMode.Disabled)
        .create(iox2.ServiceType.Ipc)
    )


def open_channel(node: iox2.Node, name: str, capacity: int, max_subscribers: int):
    pubsub = (
        node.service_builder(iox2.ServiceName.new(name))
        .publish_subscribe(iox2.Slice[ctypes.c_uint8])
        .payload_alignment(iox2.Alignment.new(1))
        .enable_safe_overflow(False)
        .subscriber_max_buffer_size(capacity)
        .subscriber_max_borrowed_samples(capacity)
        .history_size(0)
        .max_subscribers(max_subscribers)
        .max_publishers(2)
        .open_or_create()
    )
    data = (
        node.service_builder(iox2.ServiceName.new(name + "/data"))
        .event()
        .open_or_create()
    )
    freed = (
        node.service_builder(iox2.ServiceName.new(name + "/freed"))
        .event()
        .open_or_create()
    )
    return pubsub, data, freed


class GrowingPublisher:
    """Static chunks (exactly `capacity`), replaced by a larger port only when all are back."""

    def __init__(self, pubsub, capacity: int, slice_len: int) -> None:
        self.pubsub = pubsub
        self.capacity = capacity
        self.slice_len = slice_len
        self.port = self._create(slice_len)

    def _create(self, slice_len: int):
        return (
            self.pubsub.publisher_builder()
            .initial_max_slice_len(slice_len)
            .allocation_strategy(iox2.AllocationStrategy.Static)
            .max_loaned_samples(self.capacity)
            .override_sample_preallocation(self.capacity)
            .create()
        )

    def loan(self, n: int):
        """Returns a SampleMutUninit or None when no chunk is free."""
        if n > self.slice_len:
            probe = []
            try:
                for _ in range(self.capacity):
                    probe.append(self.port.loan_slice_uninit(1))
            except iox2.LoanError:
                return None
            finally:
                for p in probe:
                    p.delete()
            self.port.delete()
            self.slice_len = max(1 << (n - 1).bit_length(), self.slice_len * 2)
            self.port = self._create(self.slice_len)
        try:
            return self.port.loan_slice_uninit(n)
        except iox2.LoanError as e:
            if str(e) == "OutOfMemory":
                return None
            raise


def linger(prefix: str, root: str, name: str, capacity: int, max_subs: int) -> None:
    """Subscribes to `name`, says ready and blocks until killed (dead-node tests)."""
    node = make_node(prefix, root)
    pubsub, _data, _freed = open_channel(node, name, capacity, max_subs)
    _subscriber = pubsub.subscriber_builder().buffer_size(capacity).create()
    say("ready")
    sys.stdin.read()


def main() -> None:
    if sys.argv[1] == "linger":
        linger(
            sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
        )
        return
    prefix, root, down, up, capacity_s, max_subs_s = sys.argv[1:7]
    capacity, max_subs = int(capacity_s), int(max_subs_s)
    node = make_node(prefix, root)
    down_ps, down_data, down_freed = open_channel(node, down, capacity, max_subs)
    up_ps, up_data, up_freed = open_channel(node, up, capacity, max_subs)

    subscriber = down_ps.subscriber_builder().buffer_size(capacity).create()
    down_listener = down_data.listener_builder().create()
    down_freed_notifier = down_freed.notifier_builder().default_event_id(FREED).create()

    publisher = GrowingPublisher(up_ps, capacity, 4096)
    up_notifier = up_data.notifier_builder().default_event_id(DATA).create()
    up_freed_listener = up_freed.listener_builder().create()
    say("ready")

    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "echo":
            # Echo every sample of DOWN on UP until a 1-byte 0xFF sample arrives.
            count = 0
            aligned = True
            while True:
                down_listener.timed_wait(WAIT)
                done = False
                while True:
                    sample = subscriber.receive()
                    if sample is None:
                        break
                    n = sample.payload().len()
                    aligned &= sample.payload_ptr % 8 == 0
                    if n == 1 and sample.payload()[0] == 0xFF:
                        sample.delete()
                        done = True
                        break
                    loan = publisher.loan(n)
                    if loan is None:
                        say("error up channel full during echo")
                        return
                    ctypes.memmove(loan.payload_ptr, sample.payload_ptr, n)
                    sample.delete()
                    loan.assume_init().send()
                    up_notifier.notify()
                    count += 1
                if done:
                    break
            say(f"echoed {count} aligned={aligned}")
        elif cmd[0] == "fill":
            # Send until the publisher runs out of chunks, ask for credit, wait for FREED.
            sent = 0
            while True:
                loan = publisher.loan(10)
                if loan is None:
                    break
                ctypes.memmove(loan.payload_ptr, bytes([sent] * 10), 10)
                loan.assume_init().send()
                up_notifier.notify()
                sent += 1
                if sent > 10 * capacity:
                    say("error never full")
                    return
            say(f"full after {sent}")
            # A FREED may answer an older release (the flag is sticky): retry until a loan works.
            loan = None
            rounds = 0
            while loan is None and rounds < 5:
                rounds += 1
                up_notifier.notify_with_custom_event_id(CREDIT_REQUEST)
                if not wait_for(up_freed_listener, FREED):
                    say("error no FREED")
                    return
                loan = publisher.loan(10)
            say("resumed" if loan is not None else "error still full")
            if loan is not None:
                ctypes.memmove(loan.payload_ptr, b"R" * 10, 10)
                loan.assume_init().send()
                up_notifier.notify()
        elif cmd[0] == "hold":
            # Receive and hold `capacity` samples, then answer one CREDIT_REQUEST by a release.
            held = []
            while len(held) < capacity:
                down_listener.timed_wait(WAIT)
                while (s := subscriber.receive()) is not None:
                    held.append(s)
            say(f"holding {len(held)}")
            if not wait_for(down_listener, CREDIT_REQUEST):
                say("error no credit request")
                return
            held.pop(0).delete()
            down_freed_notifier.notify()
            say("answered")
            for s in held:
                s.delete()
        elif cmd[0] == "quit":
            break

    subscriber.delete()
    publisher.port.delete()
    say("bye")


if __name__ == "__main__":
    main()
