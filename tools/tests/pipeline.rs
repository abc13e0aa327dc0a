//! The live pipeline: many producers, every command answered exactly once and in each
//! producer's order, outcomes equal to `Engine::apply` on the received order, memory
//! bounded by the configuration (checked on counters, never on time), and shutdown
//! that drains: explicit close, dropped consumer, panicking producer, panicking worker.
//!
//! `TRIGWIRE_PIPELINE_COMMANDS` sets the commands per producer of the eight-producer
//! test (default 20,000, about a second in debug on two cores; try 1,000,000 in
//! release by hand) and `TRIGWIRE_PIPELINE_FANOUT` the callbacks one event releases in
//! the chunking test (default 10,000; try 1,000,000 by hand).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use trigwire::pipeline::{Closed, Outcomes, Pipeline, PipelineConfig, Ticket, TrySendError};
use trigwire::{Apply, CallbackSpec, Command, Engine, Error, Event, EventName, JobSpec, Outcome};
use trigwire_tools::bench_farm::{fanout, Rng};

/// What a consumer saw: the whole answer of each command in arrival order, and the
/// largest message.
#[derive(Default)]
struct Collected {
    answers: Vec<(Ticket, Vec<Outcome>)>,
    messages: usize,
    most_outcomes: usize,
    most_entries: usize,
}

/// Reads until the stream ends, joining each command's pieces; checks that the pieces
/// of one answer are consecutive and that only the last is complete.
fn collect(outcomes: &Outcomes) -> Collected {
    let mut seen = Collected::default();
    let mut pending: Option<(Ticket, Vec<Outcome>)> = None;
    for answers in outcomes {
        seen.messages += 1;
        seen.most_outcomes = seen.most_outcomes.max(answers.outcomes().len());
        seen.most_entries = seen.most_entries.max(answers.len());
        for answer in answers.iter() {
            let (ticket, mut list) = pending.take().unwrap_or((answer.ticket, Vec::new()));
            assert_eq!(ticket, answer.ticket, "the pieces of one answer are consecutive");
            list.extend_from_slice(answer.outcomes);
            if answer.complete {
                seen.answers.push((ticket, list));
            } else {
                assert!(!answer.outcomes.is_empty(), "an incomplete piece carries outcomes");
                pending = Some((ticket, list));
            }
        }
    }
    assert!(pending.is_none(), "the stream ended inside an answer");
    seen
}

/// Checks that each producer's tickets arrive as 0, 1, 2, ... (so each exactly once
/// and in send order); returns the count per producer.
fn per_producer_in_order(answers: &[(Ticket, Vec<Outcome>)]) -> HashMap<u64, u64> {
    let mut next: HashMap<u64, u64> = HashMap::new();
    for (ticket, _) in answers {
        let expected = next.entry(ticket.producer()).or_insert(0);
        assert_eq!(ticket.seq(), *expected, "producer {} out of order", ticket.producer());
        *expected += 1;
    }
    next
}

fn env_size(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn job(id: u64, callbacks: &[&str]) -> JobSpec {
    JobSpec {
        id: Some(id),
        label: Some(format!("J{id}")),
        agenda: (1..=4).map(|f| f.to_string()).collect(),
        callbacks: callbacks.iter().map(|t| CallbackSpec::qube(t, "unblock-self")).collect(),
        ..JobSpec::default()
    }
}

#[test]
fn eight_producers_every_command_answered_once_in_order() {
    let per = env_size("TRIGWIRE_PIPELINE_COMMANDS", 20_000);
    let config = PipelineConfig { capacity: 16, batch: 64, output_capacity: 2, chunk: 32 };
    let mut engine = Engine::default();
    // Every `running` event of job 1..=8 fires once more: outcomes keep flowing.
    let watchers: Vec<String> = (1..=8).map(|j| format!("running-job-{j}")).collect();
    let watchers: Vec<&str> = watchers.iter().map(String::as_str).collect();
    engine.submit(&[job(100, &watchers)], &mut Vec::new()).expect("valid job");
    let (producer, outcomes, pipeline) = Pipeline::start(engine, config);
    let threads: Vec<_> = (1..=8u64)
        .map(|p| {
            let mut tx = producer.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    let name = if i % 2 == 0 { EventName::Running } else { EventName::Complete };
                    tx.send(Command::Event(Event::job(name, p))).expect("pipeline open");
                }
                tx.id()
            })
        })
        .collect();
    drop(producer);
    let seen = collect(&outcomes);
    let ids: Vec<u64> = threads.into_iter().map(|t| t.join().expect("producer")).collect();
    let finished = pipeline.join().expect("worker");

    let counts = per_producer_in_order(&seen.answers);
    assert_eq!(counts.len(), 8);
    assert!(ids.iter().all(|id| counts[id] == per), "every command answered once: {counts:?}");
    let fired: usize = seen.answers.iter().map(|(_, o)| o.len()).sum();
    assert_eq!(fired as u64, 8 * per.div_ceil(2), "each running event fires its watcher");
    assert_eq!((finished.commands, finished.undelivered_answers), (8 * per, 0));
    // Memory: messages and what waits between worker and consumer stay within the bounds.
    assert!(seen.most_outcomes <= config.chunk && seen.most_entries <= config.batch);
    assert!(finished.peak_queued_outcomes <= (config.output_capacity + 2) * config.chunk);
    assert!(finished.batches >= 8 * per / config.batch as u64);
}

#[test]
fn back_pressure_bounds_what_is_accepted() {
    let config = PipelineConfig { capacity: 4, batch: 8, output_capacity: 1, chunk: 2 };
    let (mut producer, outcomes, pipeline) = Pipeline::start(Engine::default(), config);
    // Nobody reads: the worker fills the output channel and blocks, then the input fills.
    let mut accepted = 0;
    let full = loop {
        match producer.try_send(Command::Event(Event::job(EventName::Running, 1))) {
            Ok(_) => accepted += 1,
            Err(TrySendError::Full(command)) => break command,
            Err(TrySendError::Closed(_)) => panic!("the pipeline is open"),
        }
    };
    assert_eq!(full, Command::Event(Event::job(EventName::Running, 1)), "the command comes back");
    // At most: a batch answered into the output channel, a batch in hand, a full input.
    assert!(accepted <= config.capacity + 2 * config.batch, "accepted {accepted}");
    let reader = std::thread::spawn(move || collect(&outcomes).answers.len());
    drop(producer);
    let finished = pipeline.join().expect("worker");
    assert_eq!(reader.join().expect("reader"), accepted);
    assert_eq!(finished.commands, accepted as u64);
}

/// The `i`th command of producer `p` (0..4) in the mixed test: submissions that point
/// at other producers' jobs, global callbacks on the clock, events, clock moves and
/// removals.
fn mixed_command(p: u64, i: u64, rng: &mut Rng) -> Command {
    let base = 100 * (p + 1);
    let other = 100 * ((p + 1) % 4 + 1) + 1;
    match i % 50 {
        0 => {
            let first = base + i / 50 * 2 + 1;
            let up = format!("complete-job-{other} || running-work-J{first}-2");
            let across = format!("(complete-work-{other}-1 && done-job-self) || failed-job-{}", first + 1);
            Command::Submit(vec![job(first, &[&up, "done-subjob-self-0"]), job(first + 1, &[&across])])
        }
        17 if i % 200 == 17 => Command::Global(CallbackSpec::qube(&format!("globalrepeat-{i}-5"), "mail-status")),
        23 | 41 => Command::Time(i * 3 + p),
        37 => Command::Remove(base + rng.below(i / 50 * 2 + 2) + 1),
        _ => {
            let names = [EventName::Complete, EventName::Failed, EventName::Running, EventName::Killed];
            let name = names[rng.below(4) as usize];
            let job = 100 * (rng.below(4) + 1) + rng.below(i / 50 * 2 + 3) + 1;
            match rng.below(3) {
                0 => Command::Event(Event::job(name, job)),
                1 => Command::Event(Event::subjob(name, job, rng.below(2))),
                _ => Command::Event(Event::work(name, job, &(rng.below(4) + 1).to_string())),
            }
        }
    }
}

fn mixed_commands(p: u64, count: u64) -> Vec<Command> {
    let mut rng = Rng::new(p + 1);
    (0..count).map(|i| mixed_command(p, i, &mut rng)).collect()
}

/// What `Engine::apply` gives for one command, with a rejection as its one outcome.
fn apply_one(engine: &mut Engine, command: &Command) -> Vec<Outcome> {
    let mut out = Vec::new();
    if let Err(e) = engine.apply(command, &mut out) {
        out.push(Outcome::Rejected(e));
    }
    out
}

#[test]
fn mixed_commands_from_four_producers_match_apply_in_received_order() {
    let per = 2_000;
    let config = PipelineConfig { capacity: 8, batch: 16, output_capacity: 2, chunk: 8 };
    let (producer, outcomes, pipeline) = Pipeline::start(Engine::default(), config);
    let mut sent: HashMap<u64, Vec<Command>> = HashMap::new();
    let mut threads = Vec::new();
    for p in 0..4 {
        let mut tx = producer.clone();
        let commands = mixed_commands(p, per);
        sent.insert(tx.id(), commands.clone());
        threads.push(std::thread::spawn(move || {
            for c in commands {
                tx.send(c).expect("pipeline open");
            }
        }));
    }
    drop(producer);
    let seen = collect(&outcomes);
    threads.into_iter().for_each(|t| t.join().expect("producer"));
    let finished = pipeline.join().expect("worker");
    assert_eq!(per_producer_in_order(&seen.answers).values().sum::<u64>(), 4 * per);

    let mut engine = Engine::default();
    let mut kinds: HashMap<&str, (usize, usize)> = HashMap::new();
    for (ticket, got) in &seen.answers {
        let command = &sent[&ticket.producer()][ticket.seq() as usize];
        let expected = apply_one(&mut engine, command);
        assert_eq!(got, &expected, "{ticket:?}: {command:?}");
        let entry = kinds.entry(command.kind()).or_default();
        entry.0 += usize::from(!matches!(expected.first(), Some(Outcome::Rejected(_))));
        entry.1 += expected.iter().filter(|o| matches!(o, Outcome::Fired(_))).count();
    }
    // The mix really exercises every kind: each is accepted somewhere, and fires.
    for kind in ["submit", "callback", "event", "time", "remove"] {
        assert!(kinds.get(kind).is_some_and(|k| k.0 > 0), "no accepted {kind}: {kinds:?}");
    }
    for kind in ["event", "time"] {
        assert!(kinds[kind].1 > 0, "no {kind} fired: {kinds:?}");
    }
    assert_eq!(finished.engine.live_jobs(), engine.live_jobs());
    assert_eq!(finished.engine.stats().postings_touched, engine.stats().postings_touched);
}

#[test]
fn one_event_fanout_is_sent_in_chunks() {
    let callbacks = env_size("TRIGWIRE_PIPELINE_FANOUT", 10_000) as u32;
    let (subs, event) = fanout(callbacks, 100);
    let mut engine = Engine::default();
    for sub in &subs {
        engine.submit(sub, &mut Vec::new()).expect("valid fanout");
    }
    let config = PipelineConfig { capacity: 4, batch: 4, output_capacity: 2, chunk: 64 };
    let (mut producer, outcomes, pipeline) = Pipeline::start(engine, config);
    let ticket = producer.send(Command::Event(event)).expect("pipeline open");
    drop(producer);
    let mut pieces = 0;
    let mut fired = 0;
    let mut most = 0;
    for answers in &outcomes {
        // The consumer never sees more waiting than the bound, however much one event fires.
        most = most.max(outcomes.queued_outcomes() + answers.outcomes().len());
        for answer in answers.iter() {
            assert_eq!(answer.ticket, ticket);
            pieces += 1;
            fired += answer.outcomes.len();
            assert_eq!(answer.complete, fired == callbacks as usize, "only the last piece completes");
        }
    }
    let finished = pipeline.join().expect("worker");
    assert_eq!(fired, callbacks as usize);
    assert_eq!(pieces, fired.div_ceil(config.chunk));
    let bound = (config.output_capacity + 2) * config.chunk;
    assert!(finished.peak_queued_outcomes <= bound, "{} > {bound}", finished.peak_queued_outcomes);
    assert!(most <= bound, "{most} > {bound}");
}

#[test]
fn close_stops_input_while_producers_live_and_answers_every_accepted_command() {
    let config = PipelineConfig { capacity: 8, batch: 8, output_capacity: 2, chunk: 8 };
    let (producer, outcomes, pipeline) = Pipeline::start(Engine::default(), config);
    let progress = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|p| {
            let mut tx = producer.clone();
            let progress = Arc::clone(&progress);
            std::thread::spawn(move || {
                let mut accepted = 0u64;
                // Send until the pipeline closes; the rejected command comes back whole.
                while let Ok(ticket) = tx.send(Command::Event(Event::job(EventName::Running, p + 1))) {
                    assert_eq!(ticket.seq(), accepted);
                    accepted += 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                assert_eq!(
                    tx.try_send(Command::Remove(7)),
                    Err(TrySendError::Closed(Command::Remove(7))),
                    "closed for good"
                );
                (tx.id(), accepted)
            })
        })
        .collect();
    let reader = std::thread::spawn(move || collect(&outcomes));
    while progress.load(Ordering::Relaxed) < 1_000 {
        std::thread::yield_now();
    }
    pipeline.close();
    // A producer is still alive here (`producer`): closing is what ends the worker.
    let mut kept = producer;
    assert_eq!(kept.send(Command::Time(5)), Err(Closed(Command::Time(5))));
    let finished = pipeline.join().expect("worker");
    let seen = reader.join().expect("reader");
    let mut accepted: HashMap<u64, u64> = threads.into_iter().map(|t| t.join().expect("producer")).collect();
    // A producer that started only after the close had nothing accepted, so nothing answered.
    accepted.retain(|_, &mut n| n > 0);
    let answered = per_producer_in_order(&seen.answers);
    assert_eq!(answered, accepted, "every accepted command answered, nothing more");
    assert_eq!(finished.commands, accepted.values().sum::<u64>());
    assert_eq!(finished.undelivered_answers, 0);
}

/// A submission of a fanout and `events` completions of its upstream, each releasing
/// (the first time) its callbacks; and what applying them one by one gives.
fn firing_commands(events: usize) -> (Vec<Command>, Engine, usize) {
    let (subs, _complete_job_1) = fanout(200, 10);
    let mut commands: Vec<Command> = subs.into_iter().map(Command::Submit).collect();
    for i in 0..events {
        let name = if i % 3 == 0 { EventName::Running } else { EventName::Complete };
        commands.push(Command::Event(Event::job(name, 1)));
    }
    let mut engine = Engine::default();
    let outcomes = commands.iter().map(|c| apply_one(&mut engine, c).len()).sum();
    (commands, engine, outcomes)
}

#[test]
fn dropped_consumer_keeps_the_engine_right_and_counts_what_was_lost() {
    let (commands, expected, outcomes_total) = firing_commands(300);
    let config = PipelineConfig { capacity: 8, batch: 8, output_capacity: 1, chunk: 16 };
    for read in [0, 1, 5] {
        let (mut producer, outcomes, pipeline) = Pipeline::start(Engine::default(), config);
        let sender = {
            let commands = commands.clone();
            std::thread::spawn(move || {
                commands.into_iter().for_each(|c| {
                    producer.send(c).expect("open");
                })
            })
        };
        let mut delivered_answers = 0u64;
        let mut delivered_outcomes = 0u64;
        let mut tickets = std::collections::HashSet::new();
        for answers in outcomes.iter().take(read) {
            for answer in answers.iter() {
                delivered_outcomes += answer.outcomes.len() as u64;
                if answer.complete {
                    delivered_answers += 1;
                    assert!(tickets.insert(answer.ticket), "delivered twice");
                }
            }
        }
        drop(outcomes);
        sender.join().expect("producer");
        let finished = pipeline.join().expect("worker");
        let n = commands.len() as u64;
        assert_eq!(finished.commands, n, "every command applied after {read} messages");
        assert_eq!(delivered_answers + finished.undelivered_answers, n, "after {read} messages");
        assert_eq!(delivered_outcomes + finished.undelivered_outcomes, outcomes_total as u64);
        assert_eq!(finished.engine.stats().postings_touched, expected.stats().postings_touched);
        assert_eq!(finished.engine.live_jobs(), expected.live_jobs());
    }
}

#[test]
fn a_panicking_producer_loses_nobody_elses_answers() {
    let per = 2_000u64;
    let config = PipelineConfig { capacity: 8, batch: 16, output_capacity: 2, chunk: 8 };
    let (producer, outcomes, pipeline) = Pipeline::start(Engine::default(), config);
    let threads: Vec<_> = (0..4u64)
        .map(|p| {
            let mut tx = producer.clone();
            let id = tx.id();
            let thread = std::thread::spawn(move || {
                for i in 0..per {
                    if p == 2 && i == 500 {
                        panic!("producer 2 gives up");
                    }
                    tx.send(Command::Event(Event::job(EventName::Running, p + 1))).expect("pipeline open");
                }
            });
            (id, thread)
        })
        .collect();
    drop(producer);
    let seen = collect(&outcomes);
    let results: Vec<(u64, bool)> = threads.into_iter().map(|(id, t)| (id, t.join().is_ok())).collect();
    let finished = pipeline.join().expect("worker");
    let answered = per_producer_in_order(&seen.answers);
    for (id, ok) in results {
        assert_eq!(answered[&id], if ok { per } else { 500 }, "producer {id}");
    }
    assert_eq!(finished.commands, 3 * per + 500);
}

/// An engine that panics on one clock move.
#[derive(Debug)]
struct Fragile(Engine);

impl Apply for Fragile {
    fn apply(&mut self, command: &Command, out: &mut Vec<Outcome>) -> Result<(), Error> {
        if *command == Command::Time(13) {
            panic!("fragile engine");
        }
        self.0.apply(command, out)
    }
}

#[test]
fn a_worker_panic_closes_both_ends_and_comes_back_from_join() {
    let config = PipelineConfig { capacity: 1, batch: 1, output_capacity: 1, chunk: 1 };
    let (mut producer, outcomes, pipeline) = Pipeline::start(Fragile(Engine::default()), config);
    let reader = std::thread::spawn(move || collect(&outcomes).answers.len());
    let mut blocked = producer.clone();
    let thread = std::thread::spawn(move || {
        // Sends until the dead worker's channel refuses: a blocked send wakes up too.
        let mut sent = 0u64;
        while blocked.send(Command::Event(Event::job(EventName::Running, 1))).is_ok() {
            sent += 1;
        }
        sent
    });
    producer.send(Command::Time(13)).expect("accepted before the panic");
    let sent = thread.join().expect("producer returns once the worker is gone");
    let answered = reader.join().expect("the stream ends");
    assert!(answered as u64 <= sent, "nothing after the panic is answered");
    let panic = pipeline.join().expect_err("the worker panicked");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"fragile engine"));
    assert!(producer.send(Command::Time(1)).is_err());
}

#[test]
fn dropping_the_pipeline_closes_the_input_and_drains() {
    let (mut producer, outcomes, pipeline) = Pipeline::start(Engine::default(), PipelineConfig::default());
    let ticket = producer.send(Command::Time(5)).expect("pipeline open");
    drop(pipeline);
    // The producer is alive, yet the stream ends: the worker closed the input.
    let seen = collect(&outcomes);
    assert_eq!(seen.answers.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![ticket]);
    assert_eq!(producer.send(Command::Time(6)), Err(Closed(Command::Time(6))));
}
