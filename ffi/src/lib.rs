//! librmp_iceoryx2: the C ABI declared in `ffi/include/rmp.h`, a thin layer over the
//! `iceoryx2` crate (=0.10.0) implementing docs/channel-protocol.md for the Deno side of
//! @remotemedia/multiprocess.
//!
//! Every exported function runs behind a panic barrier ([`error::guard`]) and reports
//! failures as negative codes plus a thread-local message ([`rmp_last_error`]).

#![allow(clippy::missing_safety_doc)]

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

#[no_mangle]
pub unsafe extern "C" fn rmp_node_destroy(node: *mut RmpNode) {
    if !node.is_null() {
        // SAFETY: node was created by rmp_node_create and is destroyed once.
        guard_void(|| drop(unsafe { Box::from_raw(node) }));
    }
}

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

#[no_mangle]
pub unsafe extern "C" fn rmp_channel_destroy(channel: *mut RmpChannel) {
    if !channel.is_null() {
        // SAFETY: created by rmp_channel_open_or_create, destroyed once.
        guard_void(|| drop(unsafe { Box::from_raw(channel) }));
    }
}

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

#[no_mangle]
pub unsafe extern "C" fn rmp_waker_rearm(waker: *mut RmpWaker) {
    // SAFETY: NULL or a live waker handle.
    if let Some(w) = unsafe { waker.as_ref() } {
        w.inner.rearm();
    }
}

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

#[no_mangle]
pub unsafe extern "C" fn rmp_loan_discard(loan: *mut RmpLoan) {
    if !loan.is_null() {
        // SAFETY: created by rmp_publisher_loan, consumed once.
        guard_void(|| drop(unsafe { Box::from_raw(loan) }));
    }
}

#[no_mangle]
pub unsafe extern "C" fn rmp_publisher_request_credit(publisher: *mut RmpPublisher) -> i32 {
    guard(|| {
        // SAFETY: live publisher handle or NULL (rejected).
        let publisher = unsafe { handle(publisher, "publisher") }?;
        publisher.request_credit()?;
        Ok(RMP_OK)
    })
}

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

#[no_mangle]
pub unsafe extern "C" fn rmp_publisher_destroy(publisher: *mut RmpPublisher) {
    if !publisher.is_null() {
        // SAFETY: created by rmp_publisher_create, destroyed once.
        guard_void(|| drop(unsafe { Box::from_raw(publisher) }));
    }
}

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
        let waker = unsafe { waker_arc(waker) };
        let s = RmpSubscriber::create(channel, waker)?;
        // SAFETY: checked non-NULL out slot.
        unsafe { *out_subscriber = Box::into_raw(Box::new(s)) };
        Ok(RMP_OK)
    })
}

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

#[no_mangle]
pub unsafe extern "C" fn rmp_sample_release(sample: *mut RmpSample) {
    if !sample.is_null() {
        // SAFETY: created by rmp_subscriber_receive, released once.
        guard_void(|| drop(unsafe { Box::from_raw(sample) }));
    }
}

#[no_mangle]
pub unsafe extern "C" fn rmp_subscriber_destroy(subscriber: *mut RmpSubscriber) {
    if !subscriber.is_null() {
        // SAFETY: created by rmp_subscriber_create, destroyed once.
        guard_void(|| drop(unsafe { Box::from_raw(subscriber) }));
    }
}
