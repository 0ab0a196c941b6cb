//! Safe helpers over the C ABI for the integration tests (they call the real exported
//! functions, with real iceoryx2 shared memory, isolated by a unique prefix and root).
#![allow(dead_code)]

use std::ptr;

use rmp_iceoryx2::channel::{RmpChannel, RmpLoan, RmpNode, RmpPublisher, RmpSample, RmpSubscriber};
use rmp_iceoryx2::error::RMP_OK;
use rmp_iceoryx2::*;

pub const MAX_PAYLOAD: u64 = 64 * 1024 * 1024 + 128;

/// A unique iceoryx2 prefix and root for one test; removes what is left on drop.
pub struct Isolation {
    pub prefix: String,
    pub root: String,
}

impl Isolation {
    pub fn new(tag: &str) -> Self {
        let nanos = rmp_monotonic_ns();
        let prefix = format!("rmp{}x{:08x}{}_", std::process::id(), nanos as u32, tag);
        let root = format!("/tmp/rmp/{prefix}/");
        Self { prefix, root }
    }

    /// Files in /dev/shm that belong to this isolation prefix.
    pub fn shm_files(&self) -> Vec<String> {
        std::fs::read_dir("/dev/shm")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&self.prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Files below the root path.
    pub fn root_files(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            if let Ok(d) = std::fs::read_dir(dir) {
                for e in d.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, out);
                    } else {
                        out.push(p.to_string_lossy().into_owned());
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(std::path::Path::new(&self.root), &mut out);
        out
    }

    pub fn node(&self) -> Node {
        Node::new(self, "")
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        for f in self.shm_files() {
            let _ = std::fs::remove_file(format!("/dev/shm/{f}"));
        }
    }
}

pub fn last_error() -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: buf is writable for its length.
    let n = unsafe { rmp_last_error(buf.as_mut_ptr(), buf.len()) };
    buf.truncate(n.min(buf.len()));
    String::from_utf8_lossy(&buf).into_owned()
}

#[track_caller]
pub fn check(rc: i32) {
    assert_eq!(rc, RMP_OK, "rc {rc}: {}", last_error());
}

pub struct Node(pub *mut RmpNode);
impl Node {
    pub fn new(iso: &Isolation, name: &str) -> Self {
        let mut out = ptr::null_mut();
        // SAFETY: valid (ptr, len) strings and out slot.
        check(unsafe {
            rmp_node_create(
                name.as_ptr(),
                name.len(),
                iso.prefix.as_ptr(),
                iso.prefix.len(),
                iso.root.as_ptr(),
                iso.root.len(),
                &mut out,
            )
        });
        Self(out)
    }
    pub fn channel(&self, name: &str, capacity: u64, max_subscribers: u64) -> Channel {
        let mut out = ptr::null_mut();
        // SAFETY: live node, valid name, out slot.
        check(unsafe {
            rmp_channel_open_or_create(
                self.0,
                name.as_ptr(),
                name.len(),
                capacity,
                max_subscribers,
                &mut out,
            )
        });
        Channel(out)
    }
}
impl Drop for Node {
    fn drop(&mut self) {
        // SAFETY: handle created above, destroyed once.
        unsafe { rmp_node_destroy(self.0) }
    }
}

pub struct Channel(pub *mut RmpChannel);
impl Channel {
    pub fn publisher(&self, waker: Option<&Waker>, initial: u64) -> Publisher {
        let mut out = ptr::null_mut();
        let w = waker.map(|w| w.0).unwrap_or(ptr::null_mut());
        // SAFETY: live channel and waker (or NULL), out slot.
        check(unsafe { rmp_publisher_create(self.0, w, initial, MAX_PAYLOAD, &mut out) });
        Publisher(out)
    }
    pub fn subscriber(&self, waker: Option<&Waker>) -> Subscriber {
        let mut out = ptr::null_mut();
        let w = waker.map(|w| w.0).unwrap_or(ptr::null_mut());
        // SAFETY: live channel and waker (or NULL), out slot.
        check(unsafe { rmp_subscriber_create(self.0, w, &mut out) });
        Subscriber(out)
    }
}
impl Drop for Channel {
    fn drop(&mut self) {
        // SAFETY: handle created above, destroyed once.
        unsafe { rmp_channel_destroy(self.0) }
    }
}

pub struct Publisher(pub *mut RmpPublisher);
pub struct Loan(pub *mut RmpLoan, pub *mut u8, pub usize);
impl Publisher {
    /// Ok(Some) on RMP_OK, Ok(None) on WOULD_BLOCK, Err(code) otherwise.
    pub fn loan(&self, len: usize) -> Result<Option<Loan>, i32> {
        let mut loan = ptr::null_mut();
        let mut p = ptr::null_mut();
        // SAFETY: live publisher and out slots.
        let rc = unsafe { rmp_publisher_loan(self.0, len as u64, &mut loan, &mut p) };
        match rc {
            0 => Ok(Some(Loan(loan, p, len))),
            1 => Ok(None),
            e => Err(e),
        }
    }
    /// Loans, copies `data` in, sends; returns the recipients.
    pub fn send_bytes(&self, data: &[u8]) -> u64 {
        let mut loan = self
            .loan(data.len())
            .expect("loan failed")
            .expect("channel full");
        loan.bytes().copy_from_slice(data);
        loan.send()
    }
    pub fn request_credit(&self) {
        // SAFETY: live publisher.
        check(unsafe { rmp_publisher_request_credit(self.0) });
    }
    pub fn subscriber_count(&self) -> u64 {
        let mut n = 0;
        // SAFETY: live publisher, out slot.
        check(unsafe { rmp_publisher_subscriber_count(self.0, &mut n) });
        n
    }
}
impl Drop for Publisher {
    fn drop(&mut self) {
        // SAFETY: handle created above, destroyed once.
        unsafe { rmp_publisher_destroy(self.0) }
    }
}
impl Loan {
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the loan owns len writable bytes at ptr until sent or discarded.
        unsafe { std::slice::from_raw_parts_mut(self.1, self.2) }
    }
    pub fn send(self) -> u64 {
        let mut n = 0;
        // SAFETY: live loan, consumed here.
        check(unsafe { rmp_loan_send(self.0, &mut n) });
        n
    }
    pub fn discard(self) {
        // SAFETY: live loan, consumed here.
        unsafe { rmp_loan_discard(self.0) }
    }
}

pub struct Subscriber(pub *mut RmpSubscriber);
pub struct Sample(pub *mut RmpSample, pub *const u8, pub usize);
impl Subscriber {
    pub fn receive(&self) -> Option<Sample> {
        let mut s = ptr::null_mut();
        let mut p = ptr::null();
        let mut len = 0u64;
        // SAFETY: live subscriber and out slots.
        let rc = unsafe { rmp_subscriber_receive(self.0, &mut s, &mut p, &mut len) };
        match rc {
            0 => Some(Sample(s, p, len as usize)),
            1 => None,
            e => panic!("receive failed {e}: {}", last_error()),
        }
    }
    /// Polls until a sample arrives (publishers in other processes).
    pub fn receive_within(&self, timeout: std::time::Duration) -> Option<Sample> {
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = self.receive() {
                return Some(s);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
impl Drop for Subscriber {
    fn drop(&mut self) {
        // SAFETY: handle created above, destroyed once.
        unsafe { rmp_subscriber_destroy(self.0) }
    }
}
impl Sample {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the sample keeps len readable bytes at ptr until released.
        unsafe { std::slice::from_raw_parts(self.1, self.2) }
    }
}
impl Drop for Sample {
    fn drop(&mut self) {
        // SAFETY: handle from receive, released once.
        unsafe { rmp_sample_release(self.0) }
    }
}

pub struct Waker(pub *mut RmpWaker);
impl Waker {
    pub fn connect(path: &str) -> Self {
        let mut out = ptr::null_mut();
        // SAFETY: valid path bytes and out slot.
        check(unsafe { rmp_waker_create(path.as_ptr(), path.len(), &mut out) });
        Self(out)
    }
    pub fn rearm(&self) {
        // SAFETY: live waker.
        unsafe { rmp_waker_rearm(self.0) }
    }
}
impl Drop for Waker {
    fn drop(&mut self) {
        // SAFETY: handle created above, destroyed once.
        unsafe { rmp_waker_destroy(self.0) }
    }
}

/// Deterministic, position-dependent bytes so that any misplaced byte is detected.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Asserts that nothing of this isolation is left in /dev/shm or under the root, except the
/// one file iceoryx2 keeps per prefix on purpose: the node-id generator
/// `<prefix><hash>_node.0_10_0.global_mgmt` (the session sweeper removes it).
pub fn assert_clean(iso: &Isolation) {
    let shm: Vec<String> = iso
        .shm_files()
        .into_iter()
        .filter(|f| !f.ends_with("_node.0_10_0.global_mgmt"))
        .collect();
    assert!(shm.is_empty(), "left in /dev/shm: {shm:?}");
    let files = iso.root_files();
    assert!(files.is_empty(), "left under {}: {files:?}", iso.root);
}
