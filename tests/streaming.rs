//! One command's fan-out leaves the engine as it is produced (issue: "output written as
//! it is produced"): [`Engine::apply_to`] hands over each firing as the matcher finds
//! it, and [`Replay::feed_writing`] writes the lines out while the command runs. Shown
//! by counting, not timing: the bytes this test binary holds at its peak (a counting
//! allocator), and the writes a writer receives before the command returns.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use trigwire::wire::{Mode, Output, Replay, WRITE_AT};
use trigwire::{CallbackSpec, Command, Engine, Event, EventName, JobSpec, Outcome};

/// The system allocator, counting the bytes live now and the most live since `reset`.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes held at the peak of `run`, beyond what was live when it started.
fn peak_growth(run: impl FnOnce()) -> usize {
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    run();
    PEAK.load(Ordering::Relaxed) - start
}

const FANOUT: usize = 100_000;

/// Job 1 and job 2, and `FANOUT` callbacks on each one's completion in jobs 3 and 4.
fn farm() -> Vec<Command> {
    let waiting = |on: u64| JobSpec {
        callbacks: vec![CallbackSpec::qube(&format!("complete-job-{on}"), "unblock-self"); FANOUT],
        ..JobSpec::default()
    };
    vec![
        Command::Submit(vec![JobSpec::default(), JobSpec::default()]),
        Command::Submit(vec![waiting(1)]),
        Command::Submit(vec![waiting(2)]),
    ]
}

fn complete(job: u64) -> Command {
    Command::Event(Event::job(EventName::Complete, job))
}

/// One test only: the allocator's counts are global to the binary, so nothing may run
/// beside it.
#[test]
fn one_events_fanout_is_handed_over_and_written_as_it_is_produced() {
    let mut engine = Engine::default();
    for command in farm() {
        engine.apply(&command, &mut Vec::new()).expect("the farm is accepted");
    }
    // The first fan-out grows the engine's reusable posting buffer to its size.
    let mut seen = 0usize;
    engine.apply_to(&complete(1), &mut |_| seen += 1).expect("an event");
    assert_eq!(seen, FANOUT);

    // The second, of the same size, holds nothing per firing: each outcome is dropped
    // by the sink before the next is made.
    let mut fired = 0usize;
    let held = peak_growth(|| {
        engine
            .apply_to(&complete(2), &mut |outcome| {
                assert!(matches!(outcome, Outcome::Fired(_)));
                fired += 1;
            })
            .expect("an event");
    });
    assert_eq!(fired, FANOUT);
    eprintln!("apply_to: {held} bytes held at the peak for {FANOUT} firings");
    let gathered = FANOUT * std::mem::size_of::<Outcome>();
    assert!(held < FANOUT, "{held} bytes held for {FANOUT} firings (gathering them would hold {gathered})");

    // `apply` gathers them, which the same count sees: the measure can fail.
    let mut replay = Engine::default();
    for command in farm() {
        replay.apply(&command, &mut Vec::new()).expect("the farm is accepted");
    }
    replay.apply(&complete(1), &mut Vec::new()).expect("an event");
    let mut out = Vec::new();
    let held = peak_growth(|| replay.apply(&complete(2), &mut out).expect("an event"));
    eprintln!("apply: {held} bytes held at the peak for {FANOUT} firings");
    assert!(held >= gathered, "gathering {FANOUT} outcomes held only {held} bytes");
    drop(out);

    // Through the wire: the lines are written while the command runs, in pieces of
    // about `WRITE_AT` bytes, and say what `feed` gathers.
    let log = wire_log();
    let mut whole = Replay::new(Engine::default());
    let expected = whole.run_bytes(log.as_bytes(), Mode::OneByOne).bytes;

    let mut streamed = Replay::new(Engine::default());
    let mut output = Output::default();
    let mut writer = Pieces { expected: &expected, at: 0, writes: 0 };
    let lines: Vec<&str> = log.lines().collect();
    let (last, setup) = lines.split_last().expect("lines");
    for line in setup {
        streamed.feed_writing(line.as_bytes(), Mode::OneByOne, &mut output, &mut writer).expect("writes");
    }
    let (before, before_bytes) = (writer.writes, writer.at);
    let mut kept = 0;
    let held = peak_growth(|| {
        streamed.feed_writing(last.as_bytes(), Mode::OneByOne, &mut output, &mut writer).expect("writes");
        kept = output.bytes.len();
    });
    let fanout_bytes = expected.len() - before_bytes;
    eprintln!(
        "feed_writing: {held} bytes held at the peak, {fanout_bytes} bytes of lines in {} writes",
        writer.writes - before
    );
    assert!(writer.writes - before >= fanout_bytes / (2 * WRITE_AT), "{} writes", writer.writes - before);
    assert!(kept < WRITE_AT + 1024, "{kept} bytes left unwritten after the line");
    assert!(held < fanout_bytes / 4, "{held} bytes held writing {fanout_bytes} bytes of lines");
    assert_eq!(&expected[writer.at..], &output.bytes[..], "the streamed lines end as the gathered ones");
}

/// The farm as wire lines: a 30,000-firing event last.
fn wire_log() -> String {
    let callback = r#"{"triggers": "complete-job-1", "language": "qube", "code": "unblock-self"}"#;
    let callbacks = vec![callback; 30_000].join(",");
    format!(
        "{}\n{}\n{}\n",
        r#"{"submit": [{}]}"#,
        format_args!(r#"{{"submit": [{{"callbacks": [{callbacks}]}}]}}"#),
        r#"{"event": "complete", "type": "job", "job": 1}"#
    )
}

/// A writer that checks what it is given against the expected bytes, holding none of
/// them, and counts the calls.
struct Pieces<'e> {
    expected: &'e [u8],
    at: usize,
    writes: usize,
}

impl Write for Pieces<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes += 1;
        let want = self.expected.get(self.at..self.at + buf.len());
        assert!(want == Some(buf), "write {} at byte {} differs from the gathered lines", self.writes, self.at);
        self.at += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
