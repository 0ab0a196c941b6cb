//! Nodes, channels, publishers and subscribers following docs/channel-protocol.md.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::port::LoanError;
use iceoryx2::prelude::*;
use iceoryx2::sample::Sample;
use iceoryx2::sample_mut_uninit::SampleMutUninit;
use iceoryx2::service::ipc_threadsafe;
use iceoryx2::service::port_factory::{event, publish_subscribe};

use crate::contracts;
use crate::error::{invalid, iox, Error, Result, RMP_ERR_TOO_LARGE, RMP_OK, RMP_WOULD_BLOCK};
use crate::waker::Waker;

pub type Svc = ipc_threadsafe::Service;

/// Event ids of the protocol.
pub const DATA: EventId = EventId::new(contracts::EVENT_DATA);
pub const CREDIT_REQUEST: EventId = EventId::new(contracts::EVENT_CREDIT_REQUEST);
pub const FREED: EventId = EventId::new(contracts::EVENT_FREED);
pub const INTERNAL_WAKE: EventId = EventId::new(contracts::EVENT_INTERNAL_WAKE);

/// How long a watcher thread sleeps at most before it re-checks its stop flag (a safety
/// net only: destroy wakes it with INTERNAL_WAKE).
const WATCH_TIMEOUT: Duration = Duration::from_secs(5);

pub fn config(prefix: &str, root: &str) -> Result<Config> {
    let mut cfg = Config::default();
    cfg.global.prefix = FileName::new(prefix.as_bytes())
        .map_err(|e| invalid(format!("invalid prefix {prefix:?}: {e:?}")))?;
    let mut root = root.to_string();
    if !root.ends_with('/') {
        root.push('/');
    }
    let path = Path::new(root.as_bytes())
        .map_err(|e| invalid(format!("invalid root path {root:?}: {e:?}")))?;
    cfg.global.set_root_path(&path);
    Ok(cfg)
}

pub struct RmpNode {
    pub node: Node<Svc>,
}

impl RmpNode {
    pub fn create(name: &str, prefix: &str, root: &str) -> Result<Self> {
        let cfg = config(prefix, root)?;
        let mut builder = NodeBuilder::new()
            .config(&cfg)
            .signal_handling_mode(SignalHandlingMode::Disabled);
        if !name.is_empty() {
            let name = NodeName::new(name).map_err(|e| invalid(format!("node name: {e:?}")))?;
            builder = builder.name(&name);
        }
        let node = builder.create::<Svc>().map_err(|e| iox("node create", e))?;
        Ok(Self { node })
    }
}

/// Removes the resources of dead nodes; returns how many were cleaned.
pub fn cleanup_dead_nodes(prefix: &str, root: &str) -> Result<u64> {
    let cfg = config(prefix, root)?;
    let mut cleaned = 0u64;
    Node::<Svc>::list(&cfg, |state| {
        if let NodeState::Dead(view) = state {
            if view.try_remove_stale_resources().is_ok() {
                cleaned += 1;
            }
        }
        CallbackProgression::Continue
    })
    .map_err(|e| iox("node list", e))?;
    Ok(cleaned)
}

/// The three services of a channel. Shared (Arc) with its publishers, which re-create their
/// port when they grow.
pub struct ChannelServices {
    pub pubsub: publish_subscribe::PortFactory<Svc, [u8], ()>,
    pub data: event::PortFactory<Svc>,
    pub freed: event::PortFactory<Svc>,
    pub capacity: usize,
}

pub struct RmpChannel {
    pub services: Arc<ChannelServices>,
}

fn service_name(name: &str) -> Result<ServiceName> {
    ServiceName::new(name).map_err(|e| invalid(format!("service name {name:?}: {e:?}")))
}

impl RmpChannel {
    pub fn open_or_create(
        node: &RmpNode,
        name: &str,
        capacity: usize,
        max_subscribers: usize,
    ) -> Result<Self> {
        if capacity == 0 || max_subscribers == 0 {
            return Err(invalid("capacity and max_subscribers must be >= 1"));
        }
        let alignment = Alignment::new(1).ok_or_else(|| invalid("alignment"))?;
        let pubsub = node
            .node
            .service_builder(&service_name(name)?)
            .publish_subscribe::<[u8]>()
            .payload_alignment(alignment)
            .enable_safe_overflow(false)
            .subscriber_max_buffer_size(capacity)
            .subscriber_max_borrowed_samples(capacity)
            .history_size(0)
            .max_subscribers(max_subscribers)
            .max_publishers(contracts::CHANNEL_MAX_PUBLISHERS)
            .open_or_create()
            .map_err(|e| iox(&format!("publish-subscribe service {name:?}"), e))?;
        let data = node
            .node
            .service_builder(&service_name(&format!("{name}/data"))?)
            .event()
            .open_or_create()
            .map_err(|e| iox(&format!("event service {name:?}/data"), e))?;
        let freed = node
            .node
            .service_builder(&service_name(&format!("{name}/freed"))?)
            .event()
            .open_or_create()
            .map_err(|e| iox(&format!("event service {name:?}/freed"), e))?;
        Ok(Self {
            services: Arc::new(ChannelServices {
                pubsub,
                data,
                freed,
                capacity,
            }),
        })
    }
}

/// A native thread blocked in a listener's wait; stopped by a flag plus INTERNAL_WAKE.
struct Watcher {
    stop: Arc<AtomicBool>,
    wake: Notifier<Svc>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// `on_event` gets every drained event id.
    fn spawn(
        name: &str,
        listener: Arc<Listener<Svc>>,
        wake: Notifier<Svc>,
        mut on_event: impl FnMut(EventId) + Send + 'static,
    ) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                // A panic here must not unwind out of the thread into nothing useful;
                // catch it so join() stays clean.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    while !thread_stop.load(Ordering::Acquire) {
                        let mut ids: [bool; 4] = [false; 4];
                        let r = listener.timed_wait(
                            |a| {
                                let v = a.id.as_value();
                                if v < ids.len() {
                                    ids[v] = true;
                                }
                            },
                            WATCH_TIMEOUT,
                        );
                        if r.is_err() {
                            // Never spin on a broken listener.
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                        if thread_stop.load(Ordering::Acquire) {
                            break;
                        }
                        for (v, seen) in ids.iter().enumerate() {
                            if *seen {
                                on_event(EventId::new(v));
                            }
                        }
                    }
                }));
            })
            .map_err(|e| crate::error::io("spawn watcher thread", e))?;
        Ok(Self {
            stop,
            wake,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.notify_with_custom_event_id(INTERNAL_WAKE);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------- publisher

type IoxPublisher = Publisher<Svc, [u8], ()>;
type Uninit = SampleMutUninit<Svc, [MaybeUninit<u8>], ()>;

pub struct RmpPublisher {
    // Field order matters for drop: the watcher thread stops first.
    watcher: Option<Watcher>,
    publisher: Option<IoxPublisher>,
    data_notifier: Arc<Notifier<Svc>>,
    outstanding: Arc<AtomicUsize>,
    channel: Arc<ChannelServices>,
    slice_len: usize,
    max_payload: usize,
    capacity: usize,
}

pub struct RmpLoan {
    /// Always Some until send() takes it.
    sample: Option<Uninit>,
    notifier: Arc<Notifier<Svc>>,
    outstanding: Arc<AtomicUsize>,
}

impl Drop for RmpLoan {
    fn drop(&mut self) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

fn create_iox_publisher(
    pubsub: &publish_subscribe::PortFactory<Svc, [u8], ()>,
    slice_len: usize,
    capacity: usize,
) -> Result<IoxPublisher> {
    // Static strategy with exactly `capacity` chunks: a dynamic strategy (PowerOfTwo/BestFit)
    // answers "no chunk left" by allocating a segment with MORE chunks, which breaks the credit
    // scheme and lets send() block forever on a full subscriber buffer. Growth in size is done
    // by replacing the publisher instead (see RmpPublisher::grow).
    pubsub
        .publisher_builder()
        .initial_max_slice_len(slice_len)
        .allocation_strategy(AllocationStrategy::Static)
        .max_loaned_samples(capacity)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .override_sample_preallocation(move |_| capacity)
        .create()
        .map_err(|e| iox("publisher create", e))
}

impl RmpPublisher {
    pub fn create(
        channel: &RmpChannel,
        waker: Option<Arc<Waker>>,
        initial_max_slice_len: usize,
        max_payload: usize,
    ) -> Result<Self> {
        if max_payload == 0 {
            return Err(invalid("max_payload must be >= 1"));
        }
        let channel = &channel.services;
        let slice_len = initial_max_slice_len.clamp(1, max_payload);
        let publisher = create_iox_publisher(&channel.pubsub, slice_len, channel.capacity)?;
        let data_notifier = channel
            .data
            .notifier_builder()
            .default_event_id(DATA)
            .create()
            .map_err(|e| iox("data notifier create", e))?;
        let watcher = match waker {
            None => None,
            Some(waker) => {
                let listener = channel
                    .freed
                    .listener_builder()
                    .create()
                    .map_err(|e| iox("freed listener create", e))?;
                let wake = channel
                    .freed
                    .notifier_builder()
                    .create()
                    .map_err(|e| iox("freed wake notifier create", e))?;
                Some(Watcher::spawn(
                    "rmp-pub-watch",
                    Arc::new(listener),
                    wake,
                    move |id| {
                        if id == FREED {
                            waker.ring();
                        }
                    },
                )?)
            }
        };
        Ok(Self {
            watcher,
            publisher: Some(publisher),
            data_notifier: Arc::new(data_notifier),
            outstanding: Arc::new(AtomicUsize::new(0)),
            channel: channel.clone(),
            slice_len,
            max_payload,
            capacity: channel.capacity,
        })
    }

    fn publisher(&self) -> Result<&IoxPublisher> {
        self.publisher
            .as_ref()
            .ok_or_else(|| invalid("publisher lost during a failed growth"))
    }

    /// Replaces the publisher by one with a larger chunk size. Only when every chunk of the old
    /// one is back (all subscribers received and released everything it sent): nothing can be
    /// lost or reordered. Returns false when chunks are still out (the caller sees WOULD_BLOCK).
    fn grow(&mut self, len: usize) -> Result<bool> {
        if self.outstanding.load(Ordering::Acquire) != 0 {
            return Err(invalid(
                "cannot loan a larger payload while an unsent loan of this publisher is outstanding",
            ));
        }
        {
            let publisher = self.publisher()?;
            let _ = publisher.update_connections();
            let mut probe = Vec::with_capacity(self.capacity);
            for _ in 0..self.capacity {
                match publisher.loan_slice_uninit(1) {
                    Ok(s) => probe.push(s),
                    Err(LoanError::OutOfMemory) => return Ok(false),
                    Err(e) => return Err(iox("publisher loan (growth probe)", e)),
                }
            }
        }
        let new_len = len
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .max(self.slice_len.saturating_mul(2))
            .min(self.max_payload);
        // Drop the old port first: max_publishers is 2 and the old one holds no chunk anymore.
        self.publisher = None;
        match create_iox_publisher(&self.channel.pubsub, new_len, self.capacity) {
            Ok(bigger) => self.publisher = Some(bigger),
            Err(e) => {
                // Keep the publisher usable at its old size (small loans still work) and
                // report the failed growth; only if that fails too is the port gone.
                self.publisher =
                    create_iox_publisher(&self.channel.pubsub, self.slice_len, self.capacity).ok();
                return Err(e);
            }
        }
        self.slice_len = new_len;
        Ok(true)
    }

    /// Returns RMP_OK with a loan, RMP_WOULD_BLOCK, or an error.
    pub fn loan(&mut self, len: usize) -> Result<(i32, Option<Box<RmpLoan>>)> {
        if len == 0 {
            return Err(invalid("loan length must be >= 1"));
        }
        if len > self.max_payload {
            return Err(Error {
                code: RMP_ERR_TOO_LARGE,
                message: format!(
                    "loan of {len} bytes exceeds max_payload {}",
                    self.max_payload
                ),
            });
        }
        if len > self.slice_len && !self.grow(len)? {
            return Ok((RMP_WOULD_BLOCK, None));
        }
        let publisher = self.publisher()?;
        let mut result = publisher.loan_slice_uninit(len);
        if matches!(result, Err(LoanError::OutOfMemory)) {
            // Chunks held by a subscriber that is gone (dropped, or a dead node that was
            // cleaned up) come back only when the connections are updated, which send() does
            // but loan() does not.
            // A failed connection to one subscriber must not fail the loan: ignored here.
            let _ = publisher.update_connections();
            result = publisher.loan_slice_uninit(len);
        }
        match result {
            Ok(sample) => {
                let ptr = sample.payload().as_ptr() as usize;
                if !ptr.is_multiple_of(8) {
                    return Err(iox(
                        "publisher loan",
                        format!("payload {ptr:#x} is not 8-byte aligned"),
                    ));
                }
                self.outstanding.fetch_add(1, Ordering::AcqRel);
                Ok((
                    RMP_OK,
                    Some(Box::new(RmpLoan {
                        sample: Some(sample),
                        notifier: self.data_notifier.clone(),
                        outstanding: self.outstanding.clone(),
                    })),
                ))
            }
            Err(LoanError::OutOfMemory) => Ok((RMP_WOULD_BLOCK, None)),
            Err(e) => Err(iox("publisher loan", e)),
        }
    }

    pub fn request_credit(&self) -> Result<()> {
        self.data_notifier
            .notify_with_custom_event_id(CREDIT_REQUEST)
            .map(|_| ())
            .map_err(|e| iox("notify CREDIT_REQUEST", e))
    }

    pub fn subscriber_count(&self) -> usize {
        self.channel.pubsub.dynamic_config().number_of_subscribers()
    }
}

impl Drop for RmpPublisher {
    fn drop(&mut self) {
        self.watcher.take();
    }
}

impl RmpLoan {
    pub fn ptr(&mut self) -> *mut u8 {
        match self.sample.as_mut() {
            Some(s) => s.payload_mut().as_mut_ptr().cast(),
            None => std::ptr::null_mut(),
        }
    }

    pub fn send(mut self: Box<Self>) -> Result<usize> {
        let sample = self
            .sample
            .take()
            .ok_or_else(|| invalid("loan already sent"))?;
        // SAFETY: the payload lives in shared memory that iceoryx2 zeroed when it created the
        // segment and that earlier samples wrote, so every byte holds a value the compiler
        // cannot see as uninitialized; u8 has no invalid bit patterns; the caller wrote the
        // bytes it means before send. Zeroing first would cost a memset of up to max_payload
        // bytes per message and defeat zero copy.
        let sample = unsafe { sample.assume_init() };
        let n = sample.send().map_err(|e| iox("send", e))?;
        self.notifier
            .notify_with_custom_event_id(DATA)
            .map_err(|e| iox("notify DATA", e))?;
        Ok(n)
    }
}

// --------------------------------------------------------------- subscriber

/// State shared by a subscriber handle, its samples and its watcher thread.
struct SubShared {
    subscriber: Subscriber<Svc, [u8], ()>,
    freed: Notifier<Svc>,
    released_since_answer: AtomicBool,
    answer_pending: AtomicBool,
    held: AtomicUsize,
}

impl SubShared {
    fn notify_freed(&self) {
        // A failed notify only delays a publisher until its bound; never fail a release.
        let _ = self.freed.notify_with_custom_event_id(FREED);
    }

    fn on_credit_request(&self) {
        let idle = self.held.load(Ordering::Acquire) == 0
            && !self.subscriber.has_samples().unwrap_or(true);
        if self.released_since_answer.swap(false, Ordering::AcqRel) || idle {
            self.notify_freed();
            return;
        }
        self.answer_pending.store(true, Ordering::Release);
        // A release may have run between the check and the store: answer it here.
        if self.released_since_answer.load(Ordering::Acquire)
            && self.answer_pending.swap(false, Ordering::AcqRel)
        {
            self.released_since_answer.store(false, Ordering::Release);
            self.notify_freed();
        }
    }

    fn on_release(&self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
        self.released_since_answer.store(true, Ordering::Release);
        if self.answer_pending.swap(false, Ordering::AcqRel) {
            self.released_since_answer.store(false, Ordering::Release);
            self.notify_freed();
        }
    }
}

pub struct RmpSubscriber {
    // Field order matters for drop: the watcher thread stops first.
    watcher: Option<Watcher>,
    /// Drained by receive() when there is no watcher thread.
    listener: Option<Listener<Svc>>,
    shared: Arc<SubShared>,
}

pub struct RmpSample {
    sample: Option<Sample<Svc, [u8], ()>>,
    shared: Arc<SubShared>,
}

impl RmpSubscriber {
    pub fn create(channel: &RmpChannel, waker: Option<Arc<Waker>>) -> Result<Self> {
        let channel = &channel.services;
        let subscriber = channel
            .pubsub
            .subscriber_builder()
            .buffer_size(channel.capacity)
            .create()
            .map_err(|e| iox("subscriber create", e))?;
        let freed = channel
            .freed
            .notifier_builder()
            .default_event_id(FREED)
            .create()
            .map_err(|e| iox("freed notifier create", e))?;
        let shared = Arc::new(SubShared {
            subscriber,
            freed,
            released_since_answer: AtomicBool::new(false),
            answer_pending: AtomicBool::new(false),
            held: AtomicUsize::new(0),
        });
        let listener = channel
            .data
            .listener_builder()
            .create()
            .map_err(|e| iox("data listener create", e))?;
        let (watcher, listener) = match waker {
            None => (None, Some(listener)),
            Some(waker) => {
                let wake = channel
                    .data
                    .notifier_builder()
                    .create()
                    .map_err(|e| iox("data wake notifier create", e))?;
                let thread_shared = shared.clone();
                let watcher =
                    Watcher::spawn("rmp-sub-watch", Arc::new(listener), wake, move |id| {
                        if id == CREDIT_REQUEST {
                            thread_shared.on_credit_request();
                        } else if id == DATA {
                            waker.ring();
                        }
                    })?;
                (Some(watcher), None)
            }
        };
        Ok(Self {
            watcher,
            listener,
            shared,
        })
    }

    pub fn receive(&self) -> Result<Option<Box<RmpSample>>> {
        if let Some(listener) = &self.listener {
            let mut credit = false;
            listener
                .try_wait(|a| credit |= a.id == CREDIT_REQUEST)
                .map_err(|e| iox("data listener try_wait", e))?;
            if credit {
                self.shared.on_credit_request();
            }
        }
        match self.shared.subscriber.receive() {
            Ok(Some(sample)) => {
                self.shared.held.fetch_add(1, Ordering::AcqRel);
                Ok(Some(Box::new(RmpSample {
                    sample: Some(sample),
                    shared: self.shared.clone(),
                })))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(iox("receive", e)),
        }
    }
}

impl Drop for RmpSubscriber {
    fn drop(&mut self) {
        self.watcher.take();
    }
}

impl RmpSample {
    pub fn payload(&self) -> &[u8] {
        self.sample.as_ref().map(|s| s.payload()).unwrap_or(&[])
    }
}

impl Drop for RmpSample {
    fn drop(&mut self) {
        // Return the chunk first, then tell a waiting publisher.
        if self.sample.take().is_some() {
            self.shared.on_release();
        }
    }
}
