//! The coordinator's side: a [`Runner`] that publishes each step attempt to the tasks stream
//! and turns what workers tell on the events stream back into the scheduler's events.
//!
//! A resumed run (same run id) first reads every event its run already has on the server:
//! a step the dead coordinator had published is not published again as a new message (its
//! message id dedups it), and a step a worker finished meanwhile is taken as it ended, not run
//! a second time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use futures_util::StreamExt;

use super::tracker::Flight;
use super::wire::{ATTEMPT_HEADER, EventMessage, RUN_HEADER, STEP_HEADER, TaskBody};
use super::{Bus, MAX_BLOB_BYTES, NatsError, NatsOptions, blobs, event_subject, task_message_id, task_subject};
use crate::executor::{Next, Runner, RunnerEvent, RunnerStopped, Task};
use crate::runtime::LoadedOp;

/// How long a task's publish is retried (the server restarting, a network blip) before the
/// step fails.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(120);
/// How long reading an event's body from the blob bucket is retried: a worker acks its task
/// once the event is stored, so an event dropped here would never come again.
const BLOB_PATIENCE: Duration = Duration::from_secs(600);

enum Incoming {
    Event(EventMessage),
    PublishFailed { key: String, attempt: u32, reason: String },
}

/// Runs steps on `sandmap worker`s through NATS JetStream.
pub struct NatsRunner {
    runtime: tokio::runtime::Runtime,
    bus: Bus,
    run_id: String,
    capacity: usize,
    incoming: Receiver<Incoming>,
    sender: Sender<Incoming>,
    /// Attempts handed out, by step key (a step has one attempt out at a time).
    flights: HashMap<String, Flight>,
    /// What workers told of attempts not handed out by this process (yet): a resumed run's.
    earlier: HashMap<(String, u32), Vec<EventMessage>>,
    pending: VecDeque<RunnerEvent>,
    listener: tokio::task::JoinHandle<()>,
}

impl NatsRunner {
    /// Connect, put the components where workers fetch them, and read what the run `run_id`
    /// already has on the server. `capacity` steps are handed out at once.
    pub fn connect(
        options: &NatsOptions,
        run_id: &str,
        ops: &[Arc<LoadedOp>],
        capacity: usize,
    ) -> Result<Self, NatsError> {
        if !super::is_subject_token(run_id) {
            return Err(NatsError::Malformed {
                subject: run_id.into(),
                reason: "a run id must be a subject token".into(),
            });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sandmap-nats")
            .enable_all()
            .build()
            .map_err(|e| NatsError::Runtime(e.to_string()))?;
        let bus = runtime.block_on(Bus::connect(options))?;
        let mut shipped = HashSet::new();
        for op in ops {
            if shipped.insert(op.digest.clone()) {
                runtime.block_on(blobs::put_once(&bus.components, &op.digest, &op.bytes))?;
            }
        }
        let (sender, incoming) = crossbeam_channel::unbounded();
        let subject = event_subject(run_id);
        let earlier = runtime.block_on(read_earlier(&bus, &subject))?;
        let listener = runtime.spawn(listen(bus.clone(), subject, earlier.last_sequence, sender.clone()));
        let mut by_attempt: HashMap<(String, u32), Vec<EventMessage>> = HashMap::new();
        for event in earlier.events {
            by_attempt.entry((event.key.clone(), event.attempt)).or_default().push(event);
        }
        Ok(Self {
            runtime,
            bus,
            run_id: run_id.to_owned(),
            capacity: capacity.max(1),
            incoming,
            sender,
            flights: HashMap::new(),
            earlier: by_attempt,
            pending: VecDeque::new(),
            listener,
        })
    }

    /// After the run: remove what is left of it on the server (tasks of steps that ended
    /// otherwise, its events).
    pub fn close(self) {
        self.listener.abort();
        let tasks = task_subject(&self.run_id);
        let events = event_subject(&self.run_id);
        let bus = self.bus.clone();
        let cleaned = self.runtime.block_on(async move {
            bus.tasks.purge().filter(tasks).await.map_err(|e| e.to_string())?;
            bus.events.purge().filter(events).await.map_err(|e| e.to_string())
        });
        if let Err(error) = cleaned {
            tracing::warn!("cannot clean up run {} on the server: {error}", self.run_id);
        }
    }

    fn route(&mut self, event: EventMessage) {
        match self.flights.get_mut(&event.key) {
            Some(flight) if flight.attempt() == event.attempt => {
                let key = event.key.clone();
                if let Some(out) = flight.apply(event) {
                    self.pending.push_back(out);
                }
                if flight.ended() {
                    self.flights.remove(&key);
                }
            }
            // Not handed out by this process: a step of the run from before it resumed, that
            // the scheduler has not come to yet, or a late one of an attempt that ended.
            _ => self.earlier.entry((event.key.clone(), event.attempt)).or_default().push(event),
        }
    }
}

impl Runner for NatsRunner {
    /// The workers are not told (a task cannot be withdrawn from one): their results come too
    /// late and are ignored, and the attempts end here, cancelled.
    fn cancel(&mut self) {
        for (_, mut flight) in self.flights.drain() {
            self.pending.extend(flight.end_with(crate::runtime::StepFailure::Cancelled));
        }
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn submit(&mut self, task: Task) -> Result<(), RunnerStopped> {
        let key = task.spec.key.clone();
        let attempt = task.spec.attempt;
        let mut flight = Flight::new(task.id, &task.spec);
        if let Some(told) = self.earlier.remove(&(key.clone(), attempt)) {
            for event in told {
                if let Some(out) = flight.apply(event) {
                    self.pending.push_back(out);
                }
            }
            // A worker took this attempt before this process handed it out (the run is resumed):
            // its task message is still on the server until a worker ends it, so it is not
            // published again (once the duplicate window is over, that would store a second copy).
            if !flight.ended() {
                self.flights.insert(key, flight);
            }
            return Ok(());
        }
        self.flights.insert(key.clone(), flight);
        let body = match serde_json::to_vec(&TaskBody { spec: task.spec }) {
            Ok(body) => body,
            Err(error) => {
                let _ = self.sender.send(Incoming::PublishFailed { key, attempt, reason: error.to_string() });
                return Ok(());
            }
        };
        let bus = self.bus.clone();
        let run_id = self.run_id.clone();
        let sender = self.sender.clone();
        self.runtime.spawn(async move {
            if let Err(reason) = publish_task(&bus, &run_id, &key, attempt, body).await {
                let _ = sender.send(Incoming::PublishFailed { key, attempt, reason });
            }
        });
        Ok(())
    }

    fn next(&mut self, until: Option<Instant>) -> Next {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Next::Event(event);
            }
            let received = match until {
                None => self.incoming.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(until) => self.incoming.recv_deadline(until),
            };
            match received {
                Ok(Incoming::Event(event)) => self.route(event),
                Ok(Incoming::PublishFailed { key, attempt, reason }) => {
                    if let Some(flight) = self.flights.get_mut(&key).filter(|f| f.attempt() == attempt)
                        && let Some(out) = flight.fail(format!("cannot hand step {key} to the workers: {reason}"))
                    {
                        self.pending.push_back(out);
                        self.flights.remove(&key);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Next::TimedOut,
                Err(RecvTimeoutError::Disconnected) => return Next::Stopped,
            }
        }
    }
}

impl Drop for NatsRunner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Publish one task, retrying while the server is unreachable: its message id makes a retry
/// that did reach the server harmless.
async fn publish_task(bus: &Bus, run_id: &str, key: &str, attempt: u32, body: Vec<u8>) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    headers.insert(RUN_HEADER, run_id);
    headers.insert(STEP_HEADER, key);
    headers.insert(ATTEMPT_HEADER, attempt.to_string().as_str());
    let payload = blobs::outgoing(&bus.blobs, &mut headers, body).await.map_err(|e| e.to_string())?;
    let id = task_message_id(run_id, key, attempt);
    bus.publish_until_stored(
        task_subject(run_id),
        &id,
        payload,
        headers,
        PUBLISH_PATIENCE,
        &format!("the task of step {key}"),
    )
    .await
}

/// Read the run's events from after `after` on, for as long as the runner lives: the ordered
/// consumer is made again (from the last sequence seen) whenever it ends or fails, and an event
/// already seen (a consumer remade from an older point) is dropped.
async fn listen(bus: Bus, subject: String, after: Option<u64>, sender: Sender<Incoming>) {
    let mut last = after.unwrap_or(0);
    let mut pause = Duration::from_millis(100);
    loop {
        let consumer = bus
            .events
            .create_consumer(OrderedConfig {
                filter_subject: subject.clone(),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: last + 1 },
                ..Default::default()
            })
            .await;
        let messages = match consumer {
            Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match messages {
            Err(error) => tracing::warn!("cannot read {subject}: {error}; trying again"),
            Ok(mut messages) => {
                pause = Duration::from_millis(100);
                while let Some(message) = messages.next().await {
                    let message = match message {
                        Ok(message) => message,
                        Err(error) => {
                            tracing::warn!("reading {subject}: {error}");
                            continue;
                        }
                    };
                    let sequence = message.info().map_or(0, |i| i.stream_sequence);
                    if sequence <= last {
                        continue;
                    }
                    last = sequence;
                    if let Some(event) = decode_event(&bus.blobs, &message).await
                        && sender.send(Incoming::Event(event)).is_err()
                    {
                        return;
                    }
                }
                tracing::warn!("reading {subject} stopped; reading again from sequence {}", last + 1);
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// What a run already has on the events stream.
struct Earlier {
    events: Vec<EventMessage>,
    last_sequence: Option<u64>,
}

async fn read_earlier(bus: &Bus, subject: &str) -> Result<Earlier, NatsError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let last = match bus.events.get_last_raw_message_by_subject(subject).await {
        Ok(last) => last,
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {
            return Ok(Earlier { events: Vec::new(), last_sequence: None });
        }
        Err(error) => return Err(NatsError::js(format!("cannot read {subject}"), error)),
    };
    let consumer = bus
        .events
        .create_consumer(OrderedConfig { filter_subject: subject.to_owned(), ..Default::default() })
        .await
        .map_err(|e| NatsError::js(format!("cannot read {subject}"), e))?;
    let mut messages = consumer.messages().await.map_err(|e| NatsError::js(format!("cannot read {subject}"), e))?;
    let mut events = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| NatsError::js(format!("reading {subject}"), e))?;
        let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(last.sequence);
        if let Some(event) = decode_event(&bus.blobs, &message).await {
            events.push(event);
        }
        if sequence >= last.sequence {
            break;
        }
    }
    Ok(Earlier { events, last_sequence: Some(last.sequence) })
}

/// An event from the bus, or `None` (logged) if it is malformed: it is untrusted input.
async fn decode_event(
    blobs: &async_nats::jetstream::object_store::ObjectStore,
    message: &async_nats::jetstream::Message,
) -> Option<EventMessage> {
    let body =
        match blobs::incoming(blobs, message.headers.as_ref(), &message.payload, MAX_BLOB_BYTES, BLOB_PATIENCE).await {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!("ignored an event on {}: {error}", message.subject);
                return None;
            }
        };
    match serde_json::from_slice::<EventMessage>(&body) {
        Ok(event) => Some(event),
        Err(error) => {
            tracing::warn!("ignored a malformed event on {}: {error}", message.subject);
            None
        }
    }
}
