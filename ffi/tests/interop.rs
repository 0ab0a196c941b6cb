//! Interop with the official iceoryx2 Python package (0.10.0): a Python process opens the
//! services this crate created, with the builder calls of ffi/README.md, and exchanges
//! samples and protocol events both ways. Needs /work/main/.venv (or RMP_PYTHON).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CAPACITY: u64 = 4;

fn python() -> String {
    std::env::var("RMP_PYTHON")
        .unwrap_or_else(|_| format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR")))
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(iso: &Isolation, down: &str, up: &str) -> Self {
        let script = format!("{}/tests/interop_peer.py", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(python())
            .args([
                &script,
                &iso.prefix,
                &iso.root,
                down,
                up,
                &CAPACITY.to_string(),
                "8",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the Python peer (set RMP_PYTHON to a python with iceoryx2==0.10.0)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }
    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).unwrap();
        assert!(!s.is_empty(), "Python peer exited early");
        assert!(!s.starts_with("error"), "Python peer: {s}");
        s.trim().to_string()
    }
    fn cmd(&mut self, c: &str) {
        writeln!(self.stdin, "{c}").unwrap();
        self.stdin.flush().unwrap();
    }
}

fn wait_byte(stream: &mut UnixStream, timeout: Duration) -> bool {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut b = [0u8; 16];
    matches!(stream.read(&mut b), Ok(n) if n > 0)
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
fn python_opens_rust_services_and_exchanges_both_ways() {
    let iso = Isolation::new("py");
    let sock = format!("/tmp/{}.sock", iso.prefix);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    {
        let sub_waker = Waker::connect(&sock);
        let (mut sub_bell, _) = listener.accept().unwrap();
        let pub_waker = Waker::connect(&sock);
        let (mut pub_bell, _) = listener.accept().unwrap();
        let node = iso.node();
        // Rust creates both channels before Python opens them.
        let down = node.channel("py/down", CAPACITY, 8);
        let up = node.channel("py/up", CAPACITY, 8);
        let publisher = down.publisher(Some(&pub_waker), 4096);
        let subscriber = up.subscriber(Some(&sub_waker));

        let mut peer = Peer::spawn(&iso, "py/down", "py/up");
        assert_eq!(peer.line(), "ready");

        // Wait until Python's subscriber is connected.
        let t = Instant::now();
        while publisher.subscriber_count() < 1 {
            assert!(t.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(1));
        }

        // Echo: Rust -> Python -> Rust, content checked, timed with the real wake-ups.
        peer.cmd("echo");
        let mut echo = |data: &[u8]| -> Duration {
            let t = Instant::now();
            assert_eq!(publisher.send_bytes(data), 1);
            loop {
                if let Some(s) = subscriber.receive() {
                    assert!(s.bytes() == data, "echo of {} bytes differs", data.len());
                    return t.elapsed();
                }
                assert!(
                    wait_byte(&mut sub_bell, Duration::from_secs(10)),
                    "no DATA ring"
                );
                sub_waker.rearm();
            }
        };
        echo(&[7]);
        let kib = pattern(1024, 3);
        let mut small: Vec<Duration> = (0..200).map(|_| echo(&kib)).collect();
        let big = pattern(10 * 1024 * 1024, 9);
        let mut large: Vec<Duration> = (0..10).map(|_| echo(&big)).collect();
        assert_eq!(publisher.send_bytes(&[0xFF]), 1);
        assert_eq!(peer.line(), "echoed 211 aligned=True");
        eprintln!(
            "Rust->Python->Rust echo, wake-ups via listener/waker: 1 KiB p50 {:?} p95 {:?}; 10 MiB p50 {:?} p95 {:?}",
            percentile(&mut small, 0.5),
            percentile(&mut small, 0.95),
            percentile(&mut large, 0.5),
            percentile(&mut large, 0.95),
        );

        // Python publisher runs out of chunks, asks for credit; Rust's watcher answers on release.
        peer.cmd("fill");
        let full = peer.line();
        assert_eq!(full, format!("full after {CAPACITY}"));
        let first = subscriber.receive().expect("first filled sample");
        assert_eq!(first.bytes(), &[0u8; 10]);
        std::thread::sleep(Duration::from_millis(50)); // let the watcher see CREDIT_REQUEST
        drop(first); // -> FREED on py/up/freed
        assert_eq!(peer.line(), "resumed");
        let mut rest = Vec::new();
        let t = Instant::now();
        while rest.len() < CAPACITY as usize {
            if let Some(s) = subscriber.receive() {
                rest.push(s.bytes().to_vec());
            }
            assert!(t.elapsed() < Duration::from_secs(10));
        }
        assert_eq!(rest.last().unwrap(), &b"R".repeat(10));

        // Python subscriber holds every chunk; Rust asks for credit; Python releases + FREED.
        peer.cmd("hold");
        for i in 0..CAPACITY as u8 {
            publisher.send_bytes(&[i; 64]);
        }
        assert_eq!(peer.line(), format!("holding {CAPACITY}"));
        assert!(
            publisher.loan(64).unwrap().is_none(),
            "Rust publisher is full"
        );
        pub_waker.rearm();
        publisher.request_credit();
        assert_eq!(peer.line(), "answered");
        assert!(
            wait_byte(&mut pub_bell, Duration::from_secs(10)),
            "FREED rang the publisher waker"
        );
        publisher
            .loan(64)
            .unwrap()
            .expect("credit back from Python")
            .discard();

        peer.cmd("quit");
        assert_eq!(peer.line(), "bye");
        assert!(peer.child.wait().unwrap().success());
    }
    let _ = std::fs::remove_file(&sock);
    assert_clean(&iso);
}

#[test]
fn dead_python_subscriber_is_cleaned_up() {
    let iso = Isolation::new("dn");
    {
        let node = iso.node();
        let ch = node.channel("dn/a", CAPACITY, 8);
        let publisher = ch.publisher(None, 4096);
        let script = format!("{}/tests/interop_peer.py", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(python())
            .args([
                "-u",
                &script,
                "linger",
                &iso.prefix,
                &iso.root,
                "dn/a",
                &CAPACITY.to_string(),
                "8",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the Python peer");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        assert_eq!(publisher.subscriber_count(), 1);
        // The dead subscriber still holds chunks in its buffer: fill the channel.
        for _ in 0..CAPACITY {
            assert_eq!(publisher.send_bytes(&[1; 8]), 1);
        }
        assert!(publisher.loan(8).unwrap().is_none());

        child.kill().unwrap();
        child.wait().unwrap(); // reaped: its file locks are gone
        let mut cleaned = 0u64;
        // SAFETY: valid strings and out slot.
        check(unsafe {
            rmp_iceoryx2::rmp_cleanup_dead_nodes(
                iso.prefix.as_ptr(),
                iso.prefix.len(),
                iso.root.as_ptr(),
                iso.root.len(),
                &mut cleaned,
            )
        });
        assert_eq!(cleaned, 1, "one dead node");
        assert_eq!(publisher.subscriber_count(), 0);
        // Its chunks came back: the publisher can loan again.
        publisher
            .loan(8)
            .unwrap()
            .expect("chunks reclaimed from the dead subscriber")
            .discard();
    }
    assert_clean(&iso);
}
