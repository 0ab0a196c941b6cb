//! Integration tests over the exported C ABI with real iceoryx2 shared memory.

mod common;

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::*;
use rmp_iceoryx2::error::*;
use rmp_iceoryx2::*;

#[test]
fn round_trip_1_byte_and_10_mib() {
    let iso = Isolation::new("rt");
    {
        let node = iso.node();
        let ch = node.channel("rt/a", 4, 8);
        let publisher = ch.publisher(None, 4096);
        let sub = ch.subscriber(None);
        assert_eq!(publisher.subscriber_count(), 1);

        assert_eq!(publisher.send_bytes(&[0xa5]), 1);
        let s = sub.receive().expect("1 B sample");
        assert_eq!(s.bytes(), &[0xa5]);
        assert_eq!(s.1 as usize % 8, 0, "payload is 8-byte aligned");
        drop(s);

        // 10 MiB: larger than initial_max_slice_len, so the publisher grows.
        let big = pattern(10 * 1024 * 1024, 7);
        let mut loan = publisher.loan(big.len()).unwrap().unwrap();
        assert_eq!(loan.1 as usize % 8, 0, "loan is 8-byte aligned");
        loan.bytes().copy_from_slice(&big);
        assert_eq!(loan.send(), 1);
        let s = sub.receive().expect("10 MiB sample");
        assert_eq!(s.2, big.len());
        assert!(s.bytes() == &big[..], "10 MiB content differs");
        drop(s);
        assert!(sub.receive().is_none());

        // Small again after growth: the grown chunks serve small loans too.
        assert_eq!(publisher.send_bytes(b"tail"), 1);
        assert_eq!(sub.receive().unwrap().bytes(), b"tail");
    }
    assert_clean(&iso);
}

#[test]
fn credit_exhaustion_and_release() {
    let iso = Isolation::new("cr");
    {
        let node = iso.node();
        let ch = node.channel("cr/a", 4, 8);
        let publisher = ch.publisher(None, 4096);
        let sub = ch.subscriber(None);
        for i in 0..4u8 {
            assert_eq!(publisher.send_bytes(&[i; 100]), 1);
        }
        // The four chunks sit in the subscriber buffer: the fifth loan must not block.
        let t = Instant::now();
        assert!(
            publisher.loan(100).unwrap().is_none(),
            "5th loan must be WOULD_BLOCK"
        );
        assert!(t.elapsed() < Duration::from_millis(100));

        let held: Vec<Sample> = (0..4).map(|_| sub.receive().unwrap()).collect();
        for (i, s) in held.iter().enumerate() {
            assert_eq!(s.bytes(), &[i as u8; 100], "order kept");
        }
        assert!(
            publisher.loan(100).unwrap().is_none(),
            "held samples keep their chunks"
        );
        let mut held = held.into_iter();
        drop(held.next());
        let loan = publisher.loan(100).unwrap().expect("one chunk is back");
        loan.discard();
        // Growth is refused (WOULD_BLOCK) while chunks are out, then works once all are back.
        assert!(publisher.loan(100_000).unwrap().is_none());
        drop(held);
        let mut loan = publisher
            .loan(100_000)
            .unwrap()
            .expect("grown after all chunks returned");
        loan.bytes()[0] = 42;
        assert_eq!(loan.send(), 1);
        assert_eq!(sub.receive().unwrap().bytes()[0], 42);
    }
    assert_clean(&iso);
}

#[test]
fn fan_out_shares_one_chunk() {
    let iso = Isolation::new("fo");
    {
        let node = iso.node();
        let ch = node.channel("fo/a", 2, 8);
        let publisher = ch.publisher(None, 4096);
        let a = ch.subscriber(None);
        let b = ch.subscriber(None);
        assert_eq!(publisher.subscriber_count(), 2);
        let data = pattern(3000, 1);
        assert_eq!(publisher.send_bytes(&data), 2);
        assert_eq!(publisher.send_bytes(&data[..10]), 2);
        let sa = a.receive().unwrap();
        let sb = b.receive().unwrap();
        assert_eq!(sa.bytes(), &data[..]);
        assert_eq!(sb.bytes(), &data[..]);
        let sa2 = a.receive().unwrap();
        let sb2 = b.receive().unwrap();
        assert_eq!(sa2.bytes(), &data[..10]);
        // Two chunks, both shared by both subscribers: the channel is full.
        assert!(publisher.loan(1).unwrap().is_none());
        drop(sa);
        drop(sa2);
        assert!(
            publisher.loan(1).unwrap().is_none(),
            "b still holds both chunks"
        );
        drop(sb);
        publisher
            .loan(1)
            .unwrap()
            .expect("chunk back after both released")
            .discard();
        drop(sb2);
    }
    assert_clean(&iso);
}

fn read_byte(stream: &mut std::os::unix::net::UnixStream, timeout: Duration) -> bool {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut b = [0u8; 16];
    matches!(stream.read(&mut b), Ok(n) if n > 0)
}

#[test]
fn waker_rings_on_data_and_coalesces() {
    let iso = Isolation::new("wk");
    let sock = format!("/tmp/{}wk.sock", iso.prefix);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    {
        let waker = Waker::connect(&sock);
        let (mut stream, _) = listener.accept().unwrap();
        let node = iso.node();
        let ch = node.channel("wk/a", 8, 8);
        let publisher = ch.publisher(None, 4096);
        let sub = ch.subscriber(Some(&waker));
        assert!(
            !read_byte(&mut stream, Duration::from_millis(50)),
            "no ring before data"
        );

        let t = Instant::now();
        publisher.send_bytes(b"one");
        assert!(
            read_byte(&mut stream, Duration::from_secs(2)),
            "ring on DATA"
        );
        eprintln!("DATA -> waker byte: {:?}", t.elapsed());
        // Not rearmed: further data writes no byte.
        publisher.send_bytes(b"two");
        assert!(
            !read_byte(&mut stream, Duration::from_millis(100)),
            "coalesced"
        );
        waker.rearm();
        publisher.send_bytes(b"three");
        assert!(
            read_byte(&mut stream, Duration::from_secs(2)),
            "ring after rearm"
        );
        let got: Vec<Vec<u8>> =
            std::iter::from_fn(|| sub.receive().map(|s| s.bytes().to_vec())).collect();
        assert_eq!(
            got,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        // send -> watcher thread -> socket byte, measured with a blocking read.
        let mut lat: Vec<Duration> = (0..100)
            .map(|_| {
                waker.rearm();
                let t = Instant::now();
                publisher.send_bytes(b"x");
                assert!(read_byte(&mut stream, Duration::from_secs(2)));
                let d = t.elapsed();
                drop(sub.receive().unwrap());
                d
            })
            .collect();
        lat.sort();
        eprintln!(
            "send -> DATA -> waker byte: p50 {:?} p95 {:?}",
            lat[50], lat[95]
        );
        drop(sub);
        drop(publisher);
    }
    let _ = std::fs::remove_file(&sock);
    assert_clean(&iso);
}

/// Publisher with a waker; subscriber either with a watcher thread or polled.
fn credit_flow(subscriber_has_waker: bool) {
    let iso = Isolation::new(if subscriber_has_waker { "cw" } else { "cp" });
    let sock = format!("/tmp/{}.sock", iso.prefix);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    {
        let pub_waker = Waker::connect(&sock);
        let (mut pub_stream, _) = listener.accept().unwrap();
        let sub_waker = Waker::connect(&sock);
        let (_sub_stream, _) = listener.accept().unwrap();
        let node = iso.node();
        let ch = node.channel("cf/a", 2, 8);
        let publisher = ch.publisher(Some(&pub_waker), 4096);
        let sub = ch.subscriber(if subscriber_has_waker {
            Some(&sub_waker)
        } else {
            None
        });
        publisher.send_bytes(b"a");
        publisher.send_bytes(b"b");
        let s1 = sub.receive().unwrap();
        let s2 = sub.receive().unwrap();
        assert!(publisher.loan(1).unwrap().is_none());

        // Nothing released since: the subscriber defers its answer.
        publisher.request_credit();
        if !subscriber_has_waker {
            assert!(sub.receive().is_none()); // drains CREDIT_REQUEST
        }
        assert!(
            !read_byte(&mut pub_stream, Duration::from_millis(100)),
            "no FREED yet"
        );

        let t = Instant::now();
        drop(s1);
        assert!(
            read_byte(&mut pub_stream, Duration::from_secs(2)),
            "FREED rings the publisher"
        );
        eprintln!(
            "release -> FREED -> publisher waker byte: {:?}",
            t.elapsed()
        );
        publisher.loan(1).unwrap().expect("credit back").discard();

        // Released before the request: answered at once.
        pub_waker.rearm();
        publisher.send_bytes(b"c");
        assert!(publisher.loan(1).unwrap().is_none());
        drop(s2);
        let s3 = sub.receive().unwrap();
        assert_eq!(s3.bytes(), b"c");
        // The released chunk came back already; the publisher asks anyway, and is answered.
        publisher.request_credit();
        if !subscriber_has_waker {
            assert!(sub.receive().is_none());
        }
        assert!(
            read_byte(&mut pub_stream, Duration::from_secs(2)),
            "immediate FREED"
        );
        drop(s3);
        drop(sub);
        drop(publisher);
    }
    let _ = std::fs::remove_file(&sock);
    assert_clean(&iso);
}

#[test]
fn credit_request_answered_by_watcher_thread() {
    credit_flow(true);
}

#[test]
fn credit_request_answered_in_receive() {
    credit_flow(false);
}

#[test]
fn too_large_and_invalid_arguments() {
    let iso = Isolation::new("tl");
    {
        let node = iso.node();
        let ch = node.channel("tl/a", 2, 8);
        let publisher = ch.publisher(None, 4096);
        assert_eq!(
            publisher.loan(MAX_PAYLOAD as usize + 1).err(),
            Some(RMP_ERR_TOO_LARGE)
        );
        assert!(last_error().contains("max_payload"), "{}", last_error());
        assert_eq!(publisher.loan(0).err(), Some(RMP_ERR_INVALID_ARGUMENT));

        let mut out = std::ptr::null_mut();
        let mut p = std::ptr::null_mut();
        // SAFETY: NULL handles are part of the contract being tested.
        unsafe {
            assert_eq!(
                rmp_publisher_loan(std::ptr::null_mut(), 1, &mut out, &mut p),
                RMP_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                rmp_publisher_loan(publisher.0, 1, std::ptr::null_mut(), &mut p),
                RMP_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                rmp_loan_send(std::ptr::null_mut(), std::ptr::null_mut()),
                RMP_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                rmp_publisher_request_credit(std::ptr::null_mut()),
                RMP_ERR_INVALID_ARGUMENT
            );
            let mut n = 0u64;
            assert_eq!(
                rmp_publisher_subscriber_count(std::ptr::null_mut(), &mut n),
                RMP_ERR_INVALID_ARGUMENT
            );
            let mut s = std::ptr::null_mut();
            let mut sp = std::ptr::null();
            assert_eq!(
                rmp_subscriber_receive(std::ptr::null_mut(), &mut s, &mut sp, &mut n),
                RMP_ERR_INVALID_ARGUMENT
            );
            let mut ch_out = std::ptr::null_mut();
            assert_eq!(
                rmp_channel_open_or_create(node.0, b"x".as_ptr(), 1, 0, 8, &mut ch_out),
                RMP_ERR_INVALID_ARGUMENT
            );
            let mut w = std::ptr::null_mut();
            let bad = b"/nonexistent/dir/sock";
            assert_eq!(
                rmp_waker_create(bad.as_ptr(), bad.len(), &mut w),
                RMP_ERR_IO
            );
            assert!(last_error().contains("connect"), "{}", last_error());
            let mut nd = std::ptr::null_mut();
            let bad_utf8 = [0xffu8, 0xfe];
            assert_eq!(
                rmp_node_create(
                    std::ptr::null(),
                    0,
                    bad_utf8.as_ptr(),
                    2,
                    b"/tmp/".as_ptr(),
                    5,
                    &mut nd
                ),
                RMP_ERR_INVALID_ARGUMENT
            );
            // Destroy functions accept NULL.
            rmp_node_destroy(std::ptr::null_mut());
            rmp_channel_destroy(std::ptr::null_mut());
            rmp_publisher_destroy(std::ptr::null_mut());
            rmp_subscriber_destroy(std::ptr::null_mut());
            rmp_sample_release(std::ptr::null_mut());
            rmp_loan_discard(std::ptr::null_mut());
            rmp_waker_destroy(std::ptr::null_mut());
            rmp_waker_rearm(std::ptr::null_mut());
        }
        assert_eq!(rmp_abi_version(), 1);
        let a = rmp_monotonic_ns();
        std::thread::sleep(Duration::from_millis(2));
        assert!(rmp_monotonic_ns() - a >= 2_000_000);
    }
    assert_clean(&iso);
}

#[test]
fn cleanup_dead_nodes_on_clean_prefix_finds_none() {
    let iso = Isolation::new("cl");
    {
        let _node = iso.node();
        let mut n = 99u64;
        // SAFETY: valid strings and out slot.
        check(unsafe {
            rmp_cleanup_dead_nodes(
                iso.prefix.as_ptr(),
                iso.prefix.len(),
                iso.root.as_ptr(),
                iso.root.len(),
                &mut n,
            )
        });
        assert_eq!(n, 0, "a live node is not dead");
    }
    assert_clean(&iso);
}

#[test]
fn hot_path_loan_send_receive_release() {
    let iso = Isolation::new("hp");
    {
        let node = iso.node();
        let ch = node.channel("hp/a", 8, 8);
        let publisher = ch.publisher(None, 4096);
        let sub = ch.subscriber(None);
        let data = pattern(1024, 5);
        let n = 10_000u32;
        let t = Instant::now();
        for _ in 0..n {
            let mut loan = publisher.loan(data.len()).unwrap().unwrap();
            loan.bytes().copy_from_slice(&data);
            loan.send();
            let s = sub.receive().unwrap();
            assert_eq!(s.2, data.len());
        }
        let per = t.elapsed() / n;
        eprintln!("in-process loan+write 1 KiB+send+notify+receive+release: {per:?} per message");
        // Generous bound (debug builds, noisy 2-core machine); catches a pathological path.
        assert!(per < Duration::from_micros(500), "{per:?} per message");
    }
    assert_clean(&iso);
}
