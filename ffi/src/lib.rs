//! librmp_iceoryx2: the C ABI declared in `ffi/include/rmp.h`, a thin layer over the
//! `iceoryx2` crate (=0.10.0) implementing docs/channel-protocol.md for the Deno side of
//! @remotemedia/multiprocess.
//!
//! Every exported function runs behind a panic barrier ([`error::guard`]) and reports
//! failures as negative codes plus a thread-local message ([`rmp_last_error`]).
//!
//! Every exported `unsafe` function states its contract in a `# Safety` section, and every
//! `unsafe` block says why it holds in a `// SAFETY:` comment (checked by clippy).

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod channel;
pub mod contracts;
pub mod error;
pub mod waker;

use std::sync::Arc;

use channel::{RmpChannel, RmpLoan, RmpNode, RmpPublisher, RmpSample, RmpSubscriber};
use error::{guard, guard_void, invalid, utf8, RMP_OK, RMP_WOULD_BLOCK};

/// The opaque waker handle: an Arc so that watcher threads can share it.
pub struct RmpWaker {
    inner: Arc<waker::Waker>,
}

/// ABI version of rmp.h (protocol/contracts.toml).
pub const RMP_ABI_VERSION: u32 = contracts::ABI_VERSION;

fn out<T>(ptr: *mut T, what: &str) -> error::Result<()> {
    if ptr.is_null() {
        Err(invalid(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

/// Converts a C handle into a shared reference, NULL being an invalid argument.
///
/// # Safety
/// `ptr` must be NULL or a live handle created by this library and not in use elsewhere.
unsafe fn handle<'a, T>(ptr: *mut T, what: &str) -> error::Result<&'a mut T> {
    // SAFETY: guaranteed by the caller (see above).
    unsafe { ptr.as_mut() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

fn to_usize(v: u64, what: &str) -> error::Result<usize> {
    usize::try_from(v).map_err(|_| invalid(format!("{what} out of range")))
}

#[no_mangle]
pub extern "C" fn rmp_abi_version() -> u32 {
    RMP_ABI_VERSION
}

/// # Safety
///
/// `buf` must be NULL or point to `cap` writable bytes that stay valid for the call; it
/// must not overlap the library's own memory. Reads the calling thread's message only.
#[no_mangle]
pub unsafe extern "C" fn rmp_last_error(buf: *mut u8, cap: usize) -> usize {
    std::panic::catch_unwind(|| error::copy_last_error(buf, cap)).unwrap_or(0)
}

#[no_mangle]
pub extern "C" fn rmp_monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// # Safety
///
/// `name`, `prefix` and `root` each must point to `*_len` readable bytes that stay valid
/// for the call (NULL only when `*_len` is 0).
///
/// `out_node` must be NULL (rejected with RMP_ERR_INVALID_ARGUMENT) or point to a writable
/// slot; on RMP_OK it receives a handle owned by the caller, freed with `rmp_node_destroy`
/// after every channel of the node.
#[no_mangle]
pub unsafe extern "C" fn rmp_node_create(
    name: *const u8,
    name_len: usize,
    prefix: *const u8,
    prefix_len: usize,
    root: *const u8,
    root_len: usize,
    out_node: *mut *mut RmpNode,
) -> i32 {
    guard(|| {
        out(out_node, "out")?;
        let name = utf8(name, name_len, "name")?;
        let prefix = utf8(prefix, prefix_len, "prefix")?;
        let root = utf8(root, root_len, "root")?;
        let node = RmpNode::create(name, prefix, root)?;
        // SAFETY: out_node was checked non-NULL; the caller provides a writable slot.
        unsafe { *out_node = Box::into_raw(Box::new(node)) };
        Ok(RMP_OK)
    })
}

/// # Safety
///
/// `node` must be NULL or a handle from `rmp_node_create` not yet destroyed, whose channels
/// are already destroyed; it is invalid afterwards. No other thread may use it during or
/// after the call.
#[no_mangle]
pub unsafe extern "C" fn rmp_node_destroy(node: *mut RmpNode) {
    if !node.is_null() {
        // SAFETY: node was created by rmp_node_create and is destroyed once.
        guard_void(|| drop(unsafe { Box::from_raw(node) }));
    }
}

/// # Safety
///
/// `prefix` and `root` each must point to `*_len` readable bytes that stay valid for the
/// call (NULL only when `*_len` is 0).
///
/// `out_cleaned` must be NULL or point to a writable `u64`.
#[no_mangle]
pub unsafe extern "C" fn rmp_cleanup_dead_nodes(
    prefix: *const u8,
    prefix_len: usize,
    root: *const u8,
    root_len: usize,
    out_cleaned: *mut u64,
) -> i32 {
    guard(|| {
        let prefix = utf8(prefix, prefix_len, "prefix")?;
        let root = utf8(root, root_len, "root")?;
        let n = channel::cleanup_dead_nodes(prefix, root)?;
        if !out_cleaned.is_null() {
            // SAFETY: non-NULL out pointer provided by the caller.
            unsafe { *out_cleaned = n };
        }
        Ok(RMP_OK)
    })
}

/// # Safety
///
/// `node` must be NULL (rejected) or a live node handle returned by `rmp_node_create` and
/// not yet destroyed.
///
/// `name` must point to `name_len` readable bytes that stay valid for the call (NULL only
/// when `name_len` is 0).
///
/// `out_channel` must be NULL (rejected with RMP_ERR_INVALID_ARGUMENT) or point to a
/// writable slot; the channel it receives must be destroyed before `node`.
///
/// Handles are not thread-safe: no other thread may use a handle passed here during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn rmp_channel_open_or_create(
    node: *mut RmpNode,
    name: *const u8,
    name_len: usize,
    capacity: u64,
    max_subscribers: u64,
    out_channel: *mut *mut RmpChannel,
) -> i32 {
    guard(|| {
        out(out_channel, "out")?;
        // SAFETY: a live node handle (or NULL, rejected).
        let node = unsafe { handle(node, "node") }?;
        let name = utf8(name, name_len, "name")?;
        let ch = RmpChannel::open_or_create(
            node,
            name,
            to_usize(capacity, "capacity")?,
            to_usize(max_subscribers, "max_subscribers")?,
        )?;
        // SAFETY: checked non-NULL out slot.
        unsafe { *out_channel = Box::into_raw(Box::new(ch)) };
        Ok(RMP_OK)
    })
}

/// # Safety
///
/// `channel` must be NULL or a handle from `rmp_channel_open_or_create` not yet destroyed,
/// whose publishers and subscribers are already destroyed; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn rmp_channel_destroy(channel: *mut RmpChannel) {
    if !channel.is_null() {
        // SAFETY: created by rmp_channel_open_or_create, destroyed once.
        guard_void(|| drop(unsafe { Box::from_raw(channel) }));
    }
}

/// # Safety
///
/// `path` must point to `path_len` readable bytes that stay valid for the call (NULL only
/// when `path_len` is 0).
///
/// `out_waker` must be NULL (rejected with RMP_ERR_INVALID_ARGUMENT) or point to a writable
/// slot; the waker it receives may be shared by the watcher threads of several
/// publishers/subscribers and must outlive them.
#[no_mangle]
pub unsafe extern "C" fn rmp_waker_create(
    path: *const u8,
    path_len: usize,
    out_waker: *mut *mut RmpWaker,
) -> i32 {
    guard(|| {
        out(out_waker, "out")?;
        let path = utf8(path, path_len, "path")?;
        if path.is_empty() {
            return Err(invalid("path is empty"));
        }
        let w = waker::Waker::connect(path)?;
        // SAFETY: checked non-NULL out slot.
        unsafe {
            *out_waker = Box::into_raw(Box::new(RmpWaker { inner: Arc::new(w) }));
        }
        Ok(RMP_OK)
    })
}

/// # Safety
///
/// `waker` must be NULL (ignored) or a live handle from `rmp_waker_create`. May be called
/// from any thread while the waker lives.
#[no_mangle]
pub unsafe extern "C" fn rmp_waker_rearm(waker: *mut RmpWaker) {
    // SAFETY: NULL or a live waker handle.
    if let Some(w) = unsafe { waker.as_ref() } {
        w.inner.rearm();
    }
}

/// # Safety
///
/// `waker` must be NULL or a handle from `rmp_waker_create` not yet destroyed; every
/// publisher/subscriber created with it must already be destroyed. It is invalid
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn rmp_waker_destroy(waker: *mut RmpWaker) {
    if !waker.is_null() {
        // SAFETY: created by rmp_waker_create, destroyed once.
        guard_void(|| drop(unsafe { Box::from_raw(waker) }));
    }
}

/// # Safety
/// `waker` must be NULL or a live waker handle.
unsafe fn waker_arc(waker: *mut RmpWaker) -> Option<Arc<waker::Waker>> {
    // SAFETY: guaranteed by the caller.
    unsafe { waker.as_ref() }.map(|w| w.inner.clone())
}

/// # Safety
///
/// `channel` must be NULL (rejected) or a live channel handle returned by
/// `rmp_channel_open_or_create` and not yet destroyed; `waker` must be NULL or a live
/// handle from `rmp_waker_create`.
///
/// `out_publisher` must be NULL (rejected with RMP_ERR_INVALID_ARGUMENT) or point to a
/// writable slot; the publisher it receives must be destroyed before `channel` and `waker`.
///
/// Handles are not thread-safe: no other thread may use a handle passed here during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn rmp_publisher_create(
    channel: *mut RmpChannel,
    waker: *mut RmpWaker,
    initial_max_slice_len: u64,
    max_payload: u64,
    out_publisher: *mut *mut RmpPublisher,
) -> i32 {
    guard(|| {
        out(out_publisher, "out")?;
        // SAFETY: live channel handle or NULL (rejected); waker NULL or live.
        let channel = unsafe { handle(channel, "channel") }?;
        // SAFETY: waker is NULL or a live waker handle (the caller's contract).
        let waker = unsafe { waker_arc(waker) };
        let p = RmpPublisher::create(
            channel,
            waker,
            to_usize(initial_max_slice_len, "initial_max_slice_len")?,
            to_usize(max_payload, "max_payload")?,
        )?;
        // SAFETY: checked non-NULL out slot.
        unsafe { *out_publisher = Box::into_raw(Box::new(p)) };
        Ok(RMP_OK)
    })
}

/// # Safety
///
/// `publisher` must be NULL (rejected) or a live publisher handle returned by
/// `rmp_publisher_create` and not yet destroyed.
///
/// `out_loan` and `out_ptr` must each be NULL (rejected) or point to a writable slot. On
/// RMP_OK `*out_ptr` is valid for `len` bytes of writing until the loan is sent or
/// discarded, which must happen before the publisher is destroyed.
///
/// Handles are not thread-safe: no other thread may use a handle passed here during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn rmp_publisher_loan(
    publisher: *mut RmpPublisher,
    len: u64,
    out_loan: *mut *mut RmpLoan,
    out_ptr: *mut *mut u8,
) -> i32 {
    guard(|| {
        out(out_loan, "out_loan")?;
        out(out_ptr, "out_ptr")?;
        // SAFETY: live publisher handle or NULL (rejected).
        let publisher = unsafe { handle(publisher, "publisher") }?;
        match publisher.loan(to_usize(len, "len")?)? {
            (code, Some(mut loan)) => {
                let ptr = loan.ptr();
                // SAFETY: both out slots were checked non-NULL.
                unsafe {
                    *out_ptr = ptr;
                    *out_loan = Box::into_raw(loan);
                }
                Ok(code)
            }
            (code, None) => Ok(code),
        }
    })
}

/// # Safety
///
/// `loan` must be NULL (rejected) or a loan from `rmp_publisher_loan` not yet sent or
/// discarded; it is consumed (even on error) and its pointer is invalid afterwards. Its
/// publisher must still be alive and not in use by another thread.
///
/// `out_recipients` must be NULL or point to a writable `u64`.
#[no_mangle]
pub unsafe extern "C" fn rmp_loan_send(loan: *mut RmpLoan, out_recipients: *mut u64) -> i32 {
    guard(|| {
        if loan.is_null() {
            return Err(invalid("loan is NULL"));
        }
        // SAFETY: created by rmp_publisher_loan; consumed here exactly once.
        let loan = unsafe { Box::from_raw(loan) };
        let n = loan.send()?;
        if !out_recipients.is_null() {
            // SAFETY: non-NULL out pointer from the caller.
            unsafe { *out_recipients = n as u64 };
        }
        Ok(RMP_OK)
    })
}

/// # Safety
///
/// `loan` must be NULL or a loan from `rmp_publisher_loan` not yet sent or discarded, whose
/// publisher is still alive; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn rmp_loan_discard(loan: *mut RmpLoan) {
    if !loan.is_null() {
        // SAFETY: created by rmp_publisher_loan, consumed once.
        guard_void(|| drop(unsafe { Box::from_raw(loan) }));
    }
}

/// # Safety
///
/// `publisher` must be NULL (rejected) or a live publisher handle returned by
/// `rmp_publisher_create` and not yet destroyed.
///
/// Handles are not thread-safe: no other thread may use a handle passed here during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn rmp_publisher_request_credit(publisher: *mut RmpPublisher) -> i32 {
    guard(|| {
        // SAFETY: live publisher handle or NULL (rejected).
        let publisher = unsafe { handle(publisher, "publisher") }?;
        publisher.request_credit()?;
        Ok(RMP_OK)
    })
}

/// # Safety
///
/// `publisher` must be NULL (rejected) or a live publisher handle returned by
/// `rmp_publisher_create` and not yet destroyed.
///
/// `out_count` must be NULL (rejected) or point to a writable `u64`.
///
/// Handles are not thread-safe: no other thread may use a handle passed here during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn rmp_publisher_subscriber_count(
    publisher: *mut RmpPublisher,
    out_count: *mut u64,
) -> i32 {
    guard(|| {
        out(out_count, "out_count")?;
        // SAFETY: live publisher handle or NULL (rejected).
        let publisher = unsafe { handle(publisher, "publisher") }?;
        // SAFETY: checked non-NULL out slot.
        unsafe { *out_count = publisher.subscriber_count() as u64 };
        Ok(RMP_OK)
    })
}

/// # Safety
///
/// `publisher` must be NULL or a handle from `rmp_publisher_create` not yet destroyed, with
/// no outstanding loan; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn rmp_publisher_destroy(publisher: *mut RmpPublisher) {
    if !publisher.is_null() {
        // SAFETY: created by rmp_publisher_create, destroyed once.
        guard_void(|| drop(unsafe { Box::from_raw(publisher) }));
    }
}

/// # Safety
///
/// `channel` must be NULL (rejected) or a live channel handle returned by
/// `rmp_channel_open_or_create` and not yet destroyed; `waker` must be NULL or a live
/// handle from `rmp_waker_create`.
///
/// `out_subscriber` must be NULL (rejected with RMP_ERR_INVALID_ARGUMENT) or point to a
/// writable slot; the subscriber it receives must be destroyed before `channel` and
/// `waker`.
///
/// Handles are not thread-safe: no other thread may use a handle passed here during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn rmp_subscriber_create(
    channel: *mut RmpChannel,
    waker: *mut RmpWaker,
    out_subscriber: *mut *mut RmpSubscriber,
) -> i32 {
    guard(|| {
        out(out_subscriber, "out")?;
        // SAFETY: live channel handle or NULL (rejected); waker NULL or live.
        let channel = unsafe { handle(channel, "channel") }?;
        // SAFETY: waker is NULL or a live waker handle (the caller's contract).
        let waker = unsafe { waker_arc(waker) };
        let s = RmpSubscriber::create(channel, waker)?;
        // SAFETY: checked non-NULL out slot.
        unsafe { *out_subscriber = Box::into_raw(Box::new(s)) };
        Ok(RMP_OK)
    })
}

/// # Safety
///
/// `subscriber` must be NULL (rejected) or a live subscriber handle returned by
/// `rmp_subscriber_create` and not yet destroyed.
///
/// `out_sample`, `out_ptr` and `out_len` must each be NULL (rejected) or point to a
/// writable slot. On RMP_OK `*out_ptr` is valid for `*out_len` bytes of reading until the
/// sample is released, which must happen before the subscriber is destroyed.
///
/// Handles are not thread-safe: no other thread may use a handle passed here during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn rmp_subscriber_receive(
    subscriber: *mut RmpSubscriber,
    out_sample: *mut *mut RmpSample,
    out_ptr: *mut *const u8,
    out_len: *mut u64,
) -> i32 {
    guard(|| {
        out(out_sample, "out_sample")?;
        out(out_ptr, "out_ptr")?;
        out(out_len, "out_len")?;
        // SAFETY: live subscriber handle or NULL (rejected).
        let subscriber = unsafe { handle(subscriber, "subscriber") }?;
        match subscriber.receive()? {
            Some(sample) => {
                let payload = sample.payload();
                let (ptr, len) = (payload.as_ptr(), payload.len() as u64);
                // SAFETY: all three out slots were checked non-NULL.
                unsafe {
                    *out_ptr = ptr;
                    *out_len = len;
                    *out_sample = Box::into_raw(sample);
                }
                Ok(RMP_OK)
            }
            None => Ok(RMP_WOULD_BLOCK),
        }
    })
}

/// # Safety
///
/// `sample` must be NULL or a sample from `rmp_subscriber_receive` not yet released, whose
/// subscriber is still alive; it and its payload pointer are invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn rmp_sample_release(sample: *mut RmpSample) {
    if !sample.is_null() {
        // SAFETY: created by rmp_subscriber_receive, released once.
        guard_void(|| drop(unsafe { Box::from_raw(sample) }));
    }
}

/// # Safety
///
/// `subscriber` must be NULL or a handle from `rmp_subscriber_create` not yet destroyed,
/// with every sample released; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn rmp_subscriber_destroy(subscriber: *mut RmpSubscriber) {
    if !subscriber.is_null() {
        // SAFETY: created by rmp_subscriber_create, destroyed once.
        guard_void(|| drop(unsafe { Box::from_raw(subscriber) }));
    }
}
