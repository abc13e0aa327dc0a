//! A channel pipeline for hosts that report events from many threads: the only code
//! that names crossbeam.
//!
//! # Design note
//!
//! The engine is single-owner (`&mut self`): the naive way to share it is a mutex that
//! every reporting thread takes per event, which serialises the producers on the lock
//! and gives up batching. Instead the engine moves onto one worker thread. Producers
//! send events into a **bounded** channel (a full channel blocks them: back-pressure
//! instead of unbounded memory), the worker takes whatever is queued, up to a batch,
//! hands it to [`Engine::process_batch`] (which spreads a large batch over the rayon
//! pool), and sends each batch's firings and rejections out on a second bounded channel.
//!
//! Events are numbered in the order the worker receives them; a batch's outputs carry
//! the number of its first event, so the host can put firings next to its own log.
//! Within that order the firings are exactly those of processing the events one at a
//! time (the batch guarantee).
//!
//! **Shutdown** needs no message: when every [`Sender`] of events has been dropped, the
//! worker finishes the events still queued, sends their outputs, drops its output
//! sender (so the host's loop over [`Pipeline::outputs`] ends) and returns the engine
//! through [`Pipeline::join`].
//!
//! # Example
//! ```
//! use trigwire::pipeline::{Pipeline, PipelineConfig};
//! use trigwire::{CallbackSpec, Engine, Event, EventName, JobSpec};
//! let mut engine = Engine::default();
//! let job = JobSpec { callbacks: vec![CallbackSpec::qube("complete-job-7", "unblock-self")], ..JobSpec::default() };
//! engine.submit(&[job], &mut Vec::new())?;
//! let (events, pipeline) = Pipeline::start(engine, PipelineConfig::default());
//! let producer = std::thread::spawn(move || events.send(Event::job(EventName::Complete, 7)));
//! producer.join().expect("producer").expect("worker alive");
//! let fired: usize = pipeline.outputs().iter().map(|batch| batch.firings.len()).sum();
//! assert_eq!(fired, 1);
//! let _engine = pipeline.join().expect("worker did not panic");
//! # Ok::<(), trigwire::Error>(())
//! ```

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver};
pub use crossbeam_channel::{SendError, Sender};

use crate::engine::{BatchFiring, Engine};
use crate::error::Error;
use crate::front::model::Event;

/// Pipeline options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Events the input channel holds before producers block. Default 65,536: about a
    /// second of a busy farm, a few megabytes.
    pub capacity: usize,
    /// Most events handed to one [`Engine::process_batch`]. Default 4,096: large enough
    /// for the parallel path, small enough to keep firings flowing.
    pub batch: usize,
    /// Batches of output the output channel holds before the worker blocks. Default 64.
    pub output_capacity: usize,
}

impl Default for PipelineConfig {
    fn default() -> PipelineConfig {
        PipelineConfig { capacity: 65_536, batch: 4_096, output_capacity: 64 }
    }
}

/// The outputs of one batch of events.
#[derive(Debug)]
pub struct BatchOutput {
    /// The number of the batch's first event, counting from 0 in the order the worker
    /// received events.
    pub first_event: u64,
    /// How many events the batch held.
    pub events: usize,
    /// The firings, with `event` relative to `first_event`.
    pub firings: Vec<BatchFiring>,
    /// Rejected events (relative position, error); they changed nothing.
    pub rejected: Vec<(usize, Error)>,
}

/// An engine running on its own thread behind channels.
#[derive(Debug)]
pub struct Pipeline {
    outputs: Receiver<BatchOutput>,
    worker: JoinHandle<Engine>,
}

impl Pipeline {
    /// Moves `engine` onto a worker thread. Returns the sender for events (clone it
    /// for each producer) and the pipeline.
    ///
    /// # Panics
    /// If the operating system cannot start a thread.
    pub fn start(engine: Engine, config: PipelineConfig) -> (Sender<Event>, Pipeline) {
        let (events_tx, events_rx) = bounded(config.capacity.max(1));
        let (outputs_tx, outputs) = bounded(config.output_capacity.max(1));
        let batch = config.batch.max(1);
        let worker = std::thread::Builder::new()
            .name("trigwire-engine".into())
            .spawn(move || work(engine, &events_rx, &outputs_tx, batch))
            .expect("spawn the engine thread");
        (events_tx, Pipeline { outputs, worker })
    }

    /// The batches of output, in event order. Iterating it ends once every event
    /// sender has been dropped and the worker has drained the queue; the host must
    /// keep draining it, or the worker blocks when the output channel is full.
    pub fn outputs(&self) -> &Receiver<BatchOutput> {
        &self.outputs
    }

    /// Waits for the worker to finish (after every event sender is dropped) and
    /// returns the engine. Outputs not yet received are dropped.
    ///
    /// # Errors
    /// The worker's panic payload, if it panicked.
    pub fn join(self) -> std::thread::Result<Engine> {
        let Pipeline { outputs, worker } = self;
        drop(outputs);
        worker.join()
    }
}

/// The worker loop: block for one event, take what else is queued up to `batch`,
/// process, send; stop when the inputs are disconnected and drained.
fn work(
    mut engine: Engine,
    events: &Receiver<Event>,
    outputs: &crossbeam_channel::Sender<BatchOutput>,
    batch: usize,
) -> Engine {
    let mut queue: Vec<Event> = Vec::with_capacity(batch);
    let mut first_event = 0u64;
    while let Ok(event) = events.recv() {
        queue.clear();
        queue.push(event);
        queue.extend(events.try_iter().take(batch - 1));
        let mut firings = Vec::new();
        let rejected = engine.process_batch(&queue, &mut firings);
        let output = BatchOutput { first_event, events: queue.len(), firings, rejected };
        first_event += queue.len() as u64;
        // A host that dropped the receiver wants no more output; keep the engine going.
        let _ = outputs.send(output);
    }
    engine
}
