//! Return codes, the thread-local last error and the panic barrier.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub const RMP_OK: i32 = 0;
pub const RMP_WOULD_BLOCK: i32 = 1;
pub const RMP_ERR_INVALID_ARGUMENT: i32 = -1;
pub const RMP_ERR_ICEORYX2: i32 = -2;
pub const RMP_ERR_TOO_LARGE: i32 = -3;
pub const RMP_ERR_IO: i32 = -4;
pub const RMP_ERR_PANIC: i32 = -5;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// An error on its way to the C caller: a negative code and a message.
#[derive(Debug)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

pub fn invalid(message: impl Into<String>) -> Error {
    Error {
        code: RMP_ERR_INVALID_ARGUMENT,
        message: message.into(),
    }
}

pub fn iox(context: &str, e: impl std::fmt::Debug) -> Error {
    Error {
        code: RMP_ERR_ICEORYX2,
        message: format!("{context}: {e:?}"),
    }
}

pub fn io(context: &str, e: impl std::fmt::Display) -> Error {
    Error {
        code: RMP_ERR_IO,
        message: format!("{context}: {e}"),
    }
}

pub fn set_last_error(message: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = message);
}

/// Copies the last error into `buf` and returns its full length.
pub(crate) fn copy_last_error(buf: *mut u8, cap: usize) -> usize {
    LAST_ERROR.with(|e| {
        let e = e.borrow();
        let bytes = e.as_bytes();
        if !buf.is_null() && cap > 0 {
            let n = bytes.len().min(cap);
            // SAFETY: the caller guarantees buf points to cap writable bytes; n <= cap.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, n) };
        }
        bytes.len()
    })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `f` behind the panic barrier and turns its result into a return code.
pub fn guard(f: impl FnOnce() -> Result<i32>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            set_last_error(e.message);
            e.code
        }
        Err(payload) => {
            set_last_error(format!("panic: {}", panic_message(payload.as_ref())));
            RMP_ERR_PANIC
        }
    }
}

/// Runs a function that returns nothing (destroy/release): a panic is recorded and swallowed.
pub fn guard_void(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        set_last_error(format!("panic: {}", panic_message(payload.as_ref())));
    }
}

/// Borrows a (ptr, len) byte string; NULL is allowed only when len is 0.
pub(crate) fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: the caller guarantees ptr points to len readable bytes that live for the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

pub(crate) fn utf8<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes(ptr, len, what)?).map_err(|_| invalid(format!("{what} is not UTF-8")))
}
