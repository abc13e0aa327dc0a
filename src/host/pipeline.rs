//! A live pipeline of [`Command`]s for hosts that drive the engine from many threads:
//! the only code that names crossbeam, and it names it only inside.
//!
//! Producers ([`Producer`], one clone per thread) send commands (submissions, events,
//! clock moves, removals) and get a [`Ticket`] for each; one worker thread owns the
//! engine and applies them; the host reads the answers from [`Outcomes`], each piece
//! tagged with the ticket of the command that caused it.
//!
//! # Design note
//!
//! **From a mutex to a worker.** The engine is single-owner (`&mut self`): the naive way
//! to share it is a mutex that every reporting thread takes per command, which
//! serialises the producers on the lock and gives up batching. Instead the engine moves
//! onto one worker thread. It blocks for one command, takes whatever else is queued (up
//! to [`PipelineConfig::batch`]) and hands the run to [`Apply::apply_all`], which sends
//! runs of consecutive events through [`Engine::process_batch`] (spread over the rayon
//! pool) and gives exactly the outcomes of applying each command in turn.
//!
//! **Back-pressure both ways.** The input channel is bounded: a full channel blocks
//! [`Producer::send`] (or fails [`Producer::try_send`]) instead of growing. The output
//! channel is bounded too, and bounded in *outcomes*, not in batches: the worker cuts a
//! batch's outcomes into messages ([`Answers`]) of at most [`PipelineConfig::chunk`]
//! outcomes and blocks when the channel is full, so one event that releases a million
//! callbacks reaches the host in chunks as fast as the host takes them.
//!
//! **Every command is answered once.** A message lists, for each command it covers, the
//! command's ticket and its outcomes ([`Answer`]); a command with no outcome (an event
//! that fires nothing, a removal) still gets an entry with an empty slice. A command
//! whose outcomes span several messages has one entry in each, in order, and only the
//! last has [`Answer::complete`] set. A batch costs one allocation per message, none per
//! command.
//!
//! **Shutdown drains.** The simple rule "the worker stops when every sender is dropped"
//! ties shutdown to threads the pipeline does not own, and `join` waited forever while a
//! producer lived. Dropping the receiver on demand is not enough either: a send racing
//! the drop could be accepted and then lost. So [`Pipeline::close`] sets a flag, and
//! every send first registers itself in a counter of sends in flight, then checks the
//! flag (both sequentially consistent): a send that saw the flag open always lands in
//! the channel, one that saw it closed fails with [`Closed`] and gives the command back.
//! The worker stops once the flag is set, no send is in flight and the channel is empty,
//! after answering everything it took; then the output stream ends and
//! [`Pipeline::join`] returns the engine. Dropping every [`Producer`] ends the input
//! too, and so does dropping the [`Pipeline`] without joining it (the worker closes
//! the input, drains it and ends on its own). A panicking producer thread drops
//! its [`Producer`] while unwinding; the others go on.
//!
//! **A consumer that goes away.** If the [`Outcomes`] is dropped, the worker keeps
//! applying every command it accepted (the engine's state stays what the accepted
//! commands make it) but stops building messages. Nothing is lost silently: what waited
//! in the output channel is counted by the dropped [`Outcomes`] (its output side uses
//! the same gate, so a message being sent at that moment is counted too), what the
//! worker answers afterwards is counted by the worker, and [`Pipeline::join`] reports
//! both in [`Finished::undelivered_answers`] and [`Finished::undelivered_outcomes`].
//! Nothing is delivered twice. If the worker panics, the input and
//! output channels close (blocked senders fail with [`Closed`], the output stream ends)
//! and [`Pipeline::join`] returns the panic.
//!
//! # Order
//!
//! Commands are applied in the order the worker receives them; each producer's commands
//! are received in the order it sent them (tickets of one producer come back with
//! increasing [`Ticket::seq`]); commands of different producers interleave in whatever
//! order the channel delivered them. Answers come out in application order, and the
//! outcomes are exactly those of [`Engine::apply`] on each command in that received
//! order (so the interleaving is the only nondeterminism).
//!
//! # Memory
//!
//! Bounded by configuration: at most [`PipelineConfig::capacity`] commands wait in the
//! input channel, the worker holds one batch of at most [`PipelineConfig::batch`]
//! commands and its outcomes (all of a command's firings, as the engine produces them),
//! and at most `output_capacity + 2` messages of at most [`PipelineConfig::chunk`]
//! outcomes each are between the worker and a single receiving thread (the channel's,
//! the one the worker is sending and the one just received);
//! [`Finished::peak_queued_outcomes`] reports the high-water mark.
//!
//! # Example
//! ```
//! use trigwire::pipeline::{Pipeline, PipelineConfig};
//! use trigwire::{CallbackSpec, Command, Engine, Event, EventName, JobSpec, Outcome};
//! let (mut producer, outcomes, pipeline) = Pipeline::start(Engine::default(), PipelineConfig::default());
//! let job = JobSpec { callbacks: vec![CallbackSpec::qube("complete-job-7", "unblock-self")], ..JobSpec::default() };
//! producer.send(Command::Submit(vec![job]))?;
//! let mut events = producer.clone();
//! let thread = std::thread::spawn(move || events.send(Command::Event(Event::job(EventName::Complete, 7))));
//! let ticket = thread.join().expect("producer thread").expect("pipeline open");
//! drop(producer); // or pipeline.close(): the worker drains and the outcomes end
//! let mut fired = 0;
//! for answers in &outcomes {
//!     for answer in answers.iter().filter(|a| a.ticket == ticket) {
//!         fired += answer.outcomes.iter().filter(|o| matches!(o, Outcome::Fired(_))).count();
//!     }
//! }
//! assert_eq!(fired, 1);
//! let finished = pipeline.join().expect("worker did not panic");
//! assert_eq!((finished.commands, finished.undelivered_answers), (2, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, select, Receiver, Sender, TryRecvError};

use crate::engine::Engine;
use crate::host::command::{Apply, Command, Outcome, Reply};

/// Pipeline options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Commands the input channel holds before producers block. Default 65,536: about a
    /// second of a busy farm; the slots take `size_of::<(Ticket, Command)>()` each (88
    /// bytes on 64-bit targets, 5.8 MB in all), plus what submissions own on the heap.
    pub capacity: usize,
    /// Most commands handed to one [`Apply::apply_all`]. Default 4,096: large enough for
    /// the parallel batch path, small enough to keep answers flowing.
    pub batch: usize,
    /// Messages ([`Answers`]) the output channel holds before the worker blocks.
    /// Default 16.
    pub output_capacity: usize,
    /// Most outcomes in one message. Default 4,096: with `output_capacity` this bounds
    /// the outcomes waiting for the host, whatever one event fires, to
    /// `(output_capacity + 2) × chunk` (73,728 by default, of `size_of::<Outcome>()`
    /// bytes each: 104 on 64-bit targets, 7.7 MB; firings share their text with the
    /// engine).
    pub chunk: usize,
}

impl Default for PipelineConfig {
    fn default() -> PipelineConfig {
        PipelineConfig { capacity: 65_536, batch: 4_096, output_capacity: 16, chunk: 4_096 }
    }
}

/// Names one sent command: the [`Producer`] that sent it and its place among that
/// producer's commands. Tickets are assigned at send, per producer: the first command a
/// producer sends successfully has `seq` 0, the next 1, and so on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket {
    producer: u64,
    seq: u64,
}

impl Ticket {
    /// The sending producer's id ([`Producer::id`]).
    pub fn producer(self) -> u64 {
        self.producer
    }

    /// The command's position among its producer's successful sends, from 0.
    pub fn seq(self) -> u64 {
        self.seq
    }
}

/// The pipeline no longer takes commands (it was closed, or its worker ended); the
/// command is given back, not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed(pub Command);

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the pipeline is closed; the {} command was not applied", self.0.kind())
    }
}

impl std::error::Error for Closed {}

/// Why [`Producer::try_send`] did not send; the command is given back, not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// The input channel is full; try again later.
    Full(Command),
    /// The pipeline no longer takes commands.
    Closed(Command),
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(c) => write!(f, "the pipeline is full; the {} command was not sent", c.kind()),
            TrySendError::Closed(c) => Closed(c.clone()).fmt(f),
        }
    }
}

impl std::error::Error for TrySendError {}

/// One end's shutdown protocol: a flag, and the sends that passed it. A send that saw
/// the gate open always lands in the channel; the receiving side knows the channel
/// holds everything once the gate is closed and no send is in flight.
#[derive(Debug, Default)]
struct Gate {
    closed: AtomicBool,
    sending: AtomicUsize,
}

impl Gate {
    /// Registers a send, or `None` once closed.
    fn enter(&self) -> Option<Sending<'_>> {
        self.sending.fetch_add(1, SeqCst);
        let sending = Sending(&self.sending);
        (!self.closed.load(SeqCst)).then_some(sending)
    }

    /// Closes the gate; true for the first call.
    fn close(&self) -> bool {
        !self.closed.swap(true, SeqCst)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Closed, and no send can still put anything in the channel.
    fn quiet(&self) -> bool {
        self.is_closed() && self.sending.load(SeqCst) == 0
    }
}

/// The state producers, the worker and the host share.
#[derive(Debug, Default)]
struct Shared {
    /// Closed by [`Pipeline::close`] (or by the worker when the pipeline is dropped).
    input: Gate,
    /// Closed when the [`Outcomes`] is dropped.
    output: Gate,
    /// Set once a dropped [`Outcomes`] has counted the answers it discarded.
    discarded: AtomicBool,
    /// Complete answers and outcomes discarded from the output channel.
    discarded_answers: AtomicU64,
    discarded_outcomes: AtomicU64,
    /// The next producer id.
    next_producer: AtomicU64,
    /// Outcomes the worker has started sending that the host has not received.
    queued: AtomicUsize,
}

/// A send in flight; leaving it (normally or by unwinding) unregisters it.
struct Sending<'a>(&'a AtomicUsize);

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Sends commands to the pipeline. Clone it for each producing thread: each clone has
/// its own id and its own sequence of tickets.
#[derive(Debug)]
pub struct Producer {
    tx: Sender<(Ticket, Command)>,
    shared: Arc<Shared>,
    id: u64,
    seq: u64,
}

impl Clone for Producer {
    fn clone(&self) -> Producer {
        Producer::new(self.tx.clone(), Arc::clone(&self.shared))
    }
}

impl Producer {
    fn new(tx: Sender<(Ticket, Command)>, shared: Arc<Shared>) -> Producer {
        let id = shared.next_producer.fetch_add(1, SeqCst);
        Producer { tx, shared, id, seq: 0 }
    }

    /// This producer's id, as its tickets carry it: 0 for the one [`Pipeline::start`]
    /// returns, then one more for each clone.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends a command, blocking while the input channel is full (back-pressure).
    /// A command that was sent is always applied and answered, even if the pipeline is
    /// closed right after.
    ///
    /// # Errors
    /// [`Closed`], with the command, once the pipeline is closed or its worker ended.
    ///
    /// # Performance
    /// Two atomic additions and one load besides the channel; no allocation.
    pub fn send(&mut self, command: Command) -> Result<Ticket, Closed> {
        let Some(_sending) = self.shared.input.enter() else { return Err(Closed(command)) };
        let ticket = Ticket { producer: self.id, seq: self.seq };
        self.tx.send((ticket, command)).map_err(|e| Closed(e.0 .1))?;
        self.seq += 1;
        Ok(ticket)
    }

    /// Sends a command if the input channel has room, without blocking.
    ///
    /// # Errors
    /// [`TrySendError::Full`] when the channel is full, [`TrySendError::Closed`] once
    /// the pipeline is closed; both give the command back.
    pub fn try_send(&mut self, command: Command) -> Result<Ticket, TrySendError> {
        let Some(_sending) = self.shared.input.enter() else { return Err(TrySendError::Closed(command)) };
        let ticket = Ticket { producer: self.id, seq: self.seq };
        self.tx.try_send((ticket, command)).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full((_, c)) => TrySendError::Full(c),
            crossbeam_channel::TrySendError::Disconnected((_, c)) => TrySendError::Closed(c),
        })?;
        self.seq += 1;
        Ok(ticket)
    }
}

/// One message of output: the answers to consecutive commands in application order,
/// with at most [`PipelineConfig::chunk`] outcomes in all.
#[derive(Debug)]
pub struct Answers {
    spans: Vec<Span>,
    outcomes: Vec<Outcome>,
}

/// One command's entry in a message: its outcomes end at `end`, where the previous
/// entry's end (or 0) is their start.
#[derive(Clone, Copy, Debug)]
struct Span {
    ticket: Ticket,
    end: usize,
    complete: bool,
}

/// One command's answer, or a piece of it, in an [`Answers`] message.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    /// The command's ticket.
    pub ticket: Ticket,
    /// Its outcomes in this message, in the order of [`Engine::apply`] (empty for a
    /// command that produced none).
    pub outcomes: &'a [Outcome],
    /// Whether this is the last piece: every command is answered by exactly one piece
    /// with `complete` set, after any earlier pieces (in earlier messages).
    pub complete: bool,
}

impl Answers {
    fn new(chunk: usize, spans: usize) -> Answers {
        Answers { spans: Vec::with_capacity(spans), outcomes: Vec::with_capacity(chunk) }
    }

    /// The answers in application order.
    pub fn iter(&self) -> impl Iterator<Item = Answer<'_>> + '_ {
        let starts = std::iter::once(0).chain(self.spans.iter().map(|s| s.end));
        self.spans.iter().zip(starts).map(|(s, start)| Answer {
            ticket: s.ticket,
            outcomes: &self.outcomes[start..s.end],
            complete: s.complete,
        })
    }

    /// How many answers (or pieces) the message holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the message holds no answer (the worker never sends one).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Every outcome of the message, in order.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// Ends the current command's entry; a piece that is not complete is left out when
    /// it has no outcome in this message.
    fn end_entry(&mut self, ticket: Ticket, complete: bool) {
        let start = self.spans.last().map_or(0, |s| s.end);
        if complete || self.outcomes.len() > start {
            self.spans.push(Span { ticket, end: self.outcomes.len(), complete });
        }
    }

    fn complete_entries(&self) -> u64 {
        self.spans.iter().filter(|s| s.complete).count() as u64
    }
}

/// The output side: messages of answers in application order. The stream ends (`recv`
/// returns `None`) once the worker has answered every command it accepted, after a
/// close or when every producer is gone. Dropping it does not stop the engine: see the
/// module docs.
#[derive(Debug)]
pub struct Outcomes {
    rx: Receiver<Answers>,
    shared: Arc<Shared>,
}

impl Outcomes {
    /// Blocks for the next message; `None` once the stream has ended.
    pub fn recv(&self) -> Option<Answers> {
        let answers = self.rx.recv().ok()?;
        self.shared.queued.fetch_sub(answers.outcomes.len(), SeqCst);
        Some(answers)
    }

    /// Outcomes sent by the worker and not yet received (including those of the
    /// message it is sending).
    pub fn queued_outcomes(&self) -> usize {
        self.shared.queued.load(SeqCst)
    }

    /// The messages until the stream ends.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self)
    }
}

impl Drop for Outcomes {
    /// Closes the output and counts what waited in the channel as undelivered; a
    /// message the worker was sending at that moment is counted too.
    fn drop(&mut self) {
        let shared = &*self.shared;
        shared.output.close();
        loop {
            let quiet = shared.output.quiet();
            for answers in self.rx.try_iter() {
                shared.queued.fetch_sub(answers.outcomes.len(), SeqCst);
                shared.discarded_answers.fetch_add(answers.complete_entries(), SeqCst);
                shared.discarded_outcomes.fetch_add(answers.outcomes.len() as u64, SeqCst);
            }
            if quiet {
                break;
            }
            std::thread::yield_now();
        }
        shared.discarded.store(true, SeqCst);
    }
}

/// Iterator over the messages of an [`Outcomes`]; see [`Outcomes::recv`].
#[derive(Debug)]
pub struct Iter<'a>(&'a Outcomes);

impl Iterator for Iter<'_> {
    type Item = Answers;

    fn next(&mut self) -> Option<Answers> {
        self.0.recv()
    }
}

impl<'a> IntoIterator for &'a Outcomes {
    type Item = Answers;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// What the worker returns when it ends: the engine and its accounts.
#[derive(Debug)]
#[non_exhaustive]
pub struct Finished<E = Engine> {
    /// The engine, with every accepted command applied.
    pub engine: E,
    /// Commands applied (every command a producer sent successfully).
    pub commands: u64,
    /// Batches handed to [`Apply::apply_all`].
    pub batches: u64,
    /// Commands whose answer (its complete piece) could not be delivered because the
    /// [`Outcomes`] had been dropped.
    pub undelivered_answers: u64,
    /// Outcomes that could not be delivered, for the same reason.
    pub undelivered_outcomes: u64,
    /// The most outcomes ever sent and not yet received ([`Outcomes::queued_outcomes`]).
    pub peak_queued_outcomes: usize,
}

/// An engine running on its own thread behind bounded channels.
#[derive(Debug)]
pub struct Pipeline<E = Engine> {
    wake: Sender<()>,
    shared: Arc<Shared>,
    worker: JoinHandle<Finished<E>>,
}

impl<E: Apply + Send + 'static> Pipeline<E> {
    /// Moves `engine` onto a worker thread. Returns the first [`Producer`] (clone it for
    /// each producing thread), the [`Outcomes`] to read answers from, and the pipeline.
    ///
    /// # Panics
    /// If the operating system cannot start a thread.
    pub fn start(engine: E, config: PipelineConfig) -> (Producer, Outcomes, Pipeline<E>) {
        let (tx, input) = bounded(config.capacity.max(1));
        let (out_tx, rx) = bounded(config.output_capacity.max(1));
        let (wake, wake_rx) = bounded(1);
        let shared = Arc::new(Shared::default());
        let worker = Worker::new(engine, input, wake_rx, Arc::clone(&shared), config);
        let output = Output { tx: out_tx, shared: Arc::clone(&shared), finished: Accounts::default() };
        let handle = std::thread::Builder::new()
            .name("trigwire-engine".into())
            .spawn(move || worker.run(output))
            .expect("spawn the engine thread");
        let producer = Producer::new(tx, Arc::clone(&shared));
        let outcomes = Outcomes { rx, shared: Arc::clone(&shared) };
        (producer, outcomes, Pipeline { wake, shared, worker: handle })
    }

    /// Stops taking commands: later sends fail with [`Closed`]; sends already accepted
    /// are applied and answered. Does not block; calling it again does nothing.
    pub fn close(&self) {
        if self.shared.input.close() {
            let _ = self.wake.try_send(());
        }
    }

    /// Whether the pipeline no longer takes commands.
    pub fn is_closed(&self) -> bool {
        self.shared.input.is_closed()
    }

    /// Closes the pipeline, waits for the worker to answer everything it accepted, and
    /// returns the engine with its accounts. While the [`Outcomes`] is alive the worker
    /// waits for it to take the answers: receive them on another thread, or drop it
    /// (the answers are then counted as undelivered).
    ///
    /// # Errors
    /// The worker's panic payload, if it panicked.
    pub fn join(self) -> std::thread::Result<Finished<E>> {
        self.close();
        let mut finished = self.worker.join()?;
        let shared = &*self.shared;
        // An `Outcomes` dropped on another thread may still be counting what it discarded.
        while shared.output.is_closed() && !shared.discarded.load(SeqCst) {
            std::thread::yield_now();
        }
        finished.undelivered_answers += shared.discarded_answers.load(SeqCst);
        finished.undelivered_outcomes += shared.discarded_outcomes.load(SeqCst);
        Ok(finished)
    }
}

/// Counters the worker keeps for [`Finished`].
#[derive(Clone, Copy, Debug, Default)]
struct Accounts {
    commands: u64,
    batches: u64,
    undelivered_answers: u64,
    undelivered_outcomes: u64,
    peak_queued_outcomes: usize,
}

/// The worker's end of the output channel.
struct Output {
    tx: Sender<Answers>,
    shared: Arc<Shared>,
    finished: Accounts,
}

impl Output {
    /// Whether the host dropped its [`Outcomes`]: count instead of sending.
    fn gone(&self) -> bool {
        self.shared.output.is_closed()
    }

    /// Sends a message (blocking while the channel is full) or counts it undelivered.
    fn deliver(&mut self, answers: Answers) {
        let Output { tx, shared, finished } = self;
        let Some(_sending) = shared.output.enter() else { return finished.undelivered(&answers) };
        let n = answers.outcomes.len();
        let queued = shared.queued.fetch_add(n, SeqCst) + n;
        finished.peak_queued_outcomes = finished.peak_queued_outcomes.max(queued);
        if let Err(e) = tx.send(answers) {
            // Not expected: the receiver waits for sends in flight before it goes.
            shared.queued.fetch_sub(n, SeqCst);
            finished.undelivered(&e.0);
        }
    }
}

impl Accounts {
    fn undelivered(&mut self, answers: &Answers) {
        self.undelivered_answers += answers.complete_entries();
        self.undelivered_outcomes += answers.outcomes.len() as u64;
    }
}

/// The engine's thread: the input end, the engine and reused buffers.
struct Worker<E> {
    engine: E,
    input: Receiver<(Ticket, Command)>,
    wake: Receiver<()>,
    shared: Arc<Shared>,
    batch: usize,
    chunk: usize,
    tickets: Vec<Ticket>,
    commands: Vec<Command>,
    replies: Vec<Reply>,
}

impl<E: Apply> Worker<E> {
    fn new(
        engine: E,
        input: Receiver<(Ticket, Command)>,
        wake: Receiver<()>,
        shared: Arc<Shared>,
        config: PipelineConfig,
    ) -> Worker<E> {
        let batch = config.batch.max(1);
        Worker {
            engine,
            input,
            wake,
            shared,
            batch,
            chunk: config.chunk.max(1),
            tickets: Vec::with_capacity(batch),
            commands: Vec::with_capacity(batch),
            replies: Vec::new(),
        }
    }

    /// Block for a command, take what else is queued up to a batch, apply, answer;
    /// stop when the input is closed and drained.
    fn run(mut self, mut output: Output) -> Finished<E> {
        while let Some(first) = self.next() {
            self.take_batch(first);
            self.replies.clear();
            self.engine.apply_all(&self.commands, &mut self.replies);
            output.finished.commands += self.commands.len() as u64;
            output.finished.batches += 1;
            self.answer(&mut output);
        }
        let Accounts { commands, batches, undelivered_answers, undelivered_outcomes, peak_queued_outcomes } =
            output.finished;
        Finished {
            engine: self.engine,
            commands,
            batches,
            undelivered_answers,
            undelivered_outcomes,
            peak_queued_outcomes,
        }
    }

    /// The next command, blocking; `None` once the input is closed and drained.
    fn next(&self) -> Option<(Ticket, Command)> {
        loop {
            match self.input.try_recv() {
                Ok(command) => return Some(command),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            if self.shared.input.quiet() {
                // A send that finished before `sending` dropped to 0 is in the channel.
                return self.input.try_recv().ok();
            }
            if self.shared.input.is_closed() {
                // A send registered itself and is about to land or to see the flag.
                std::thread::yield_now();
            } else if let Some(command) = self.block() {
                return Some(command);
            }
        }
    }

    /// Sleeps until a command arrives (returned) or the pipeline is closed (a dropped
    /// [`Pipeline`] closes it).
    fn block(&self) -> Option<(Ticket, Command)> {
        select! {
            recv(self.input) -> command => command.ok(),
            recv(self.wake) -> woken => {
                if woken.is_err() {
                    self.shared.input.close();
                }
                None
            }
        }
    }

    fn take_batch(&mut self, first: (Ticket, Command)) {
        self.tickets.clear();
        self.commands.clear();
        let queued = self.input.try_iter().take(self.batch - 1);
        for (ticket, command) in std::iter::once(first).chain(queued) {
            self.tickets.push(ticket);
            self.commands.push(command);
        }
    }

    /// Cuts the batch's replies into messages of at most `chunk` outcomes, one entry
    /// per command (more for a command whose outcomes span messages).
    fn answer(&mut self, output: &mut Output) {
        if output.gone() {
            output.finished.undelivered_answers += self.tickets.len() as u64;
            output.finished.undelivered_outcomes += self.replies.len() as u64;
            return;
        }
        let spans = self.tickets.len();
        let mut message = Answers::new(self.chunk.min(self.replies.len()), spans);
        let mut replies = self.replies.drain(..).peekable();
        for (i, &ticket) in self.tickets.iter().enumerate() {
            while let Some(reply) = replies.next_if(|r| r.command == i) {
                if message.outcomes.len() == self.chunk {
                    message.end_entry(ticket, false);
                    let next = Answers::new(self.chunk.min(replies.len() + 1), 1);
                    output.deliver(std::mem::replace(&mut message, next));
                }
                message.outcomes.push(reply.outcome);
            }
            message.end_entry(ticket, true);
        }
        output.deliver(message);
    }
}
