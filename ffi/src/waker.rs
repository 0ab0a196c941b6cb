//! The doorbell: one byte on a Unix stream socket that Deno reads, coalesced by a flag.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{io, Result};

#[derive(Debug)]
pub struct Waker {
    stream: UnixStream,
    pending: AtomicBool,
}

impl Waker {
    pub fn connect(path: &str) -> Result<Self> {
        let stream = UnixStream::connect(path).map_err(|e| io(&format!("connect to {path}"), e))?;
        // A stalled reader must never block a watcher thread.
        stream
            .set_nonblocking(true)
            .map_err(|e| io("set_nonblocking", e))?;
        Ok(Self {
            stream,
            pending: AtomicBool::new(false),
        })
    }

    /// Writes one byte unless one is already pending. Errors (EAGAIN: a byte is
    /// already queued; EPIPE: the reader is gone) are ignored on purpose.
    pub fn ring(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            let byte = [1u8];
            // SAFETY: the fd is owned by self.stream and open; the buffer is 1 valid byte.
            // MSG_NOSIGNAL: a closed peer must not raise SIGPIPE in the host process.
            unsafe {
                libc::send(
                    self.stream.as_raw_fd(),
                    byte.as_ptr().cast(),
                    1,
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                );
            }
        }
    }

    pub fn rearm(&self) {
        self.pending.store(false, Ordering::Release);
    }
}
