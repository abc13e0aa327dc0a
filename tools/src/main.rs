//! The `trigwire` command line: replay farm logs, check triggers, run the demo.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use trigwire::wire::{Mode, Output, Replay};
use trigwire::{Config, Engine};

#[derive(Parser)]
#[command(name = "trigwire", version, about = "Compiled trigger matching for render-farm callbacks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a farm log (JSON lines) and print submissions, firings and errors.
    Run {
        /// The log; `-` or nothing reads standard input.
        file: Option<String>,
        /// Feed runs of consecutive events to the batch entry point, this many at a time.
        #[arg(long)]
        batch: Option<usize>,
        /// Initialise new latches from events that already happened.
        #[arg(long)]
        retroactive: bool,
        /// The Qube time the clock starts at (default 0), so that a repeat trigger
        /// registered before the first clock move does not make that move count every
        /// tick since 2000.
        #[arg(long, default_value_t = 0)]
        start_time: u64,
        /// Qube callbacks.conf files of universal callbacks (code files beside each), a
        /// comma-separated list; a folder stands for its `.conf` files.
        #[arg(long)]
        callbacks_conf: Option<String>,
        /// Register a custom event name (repeatable).
        #[arg(long = "event-name")]
        event_names: Vec<String>,
        /// Re-firing policy: `each-match` (Qube's: fire on every matching event while
        /// the trigger is true) or `on-rise` (fire when the trigger becomes true, and
        /// once per new item of a `*` atom).
        #[arg(long, value_enum, default_value_t = RefireArg::EachMatch)]
        refire: RefireArg,
        /// Repeat catch-up after a clock move: `all` ticks passed, or `once` per repeat
        /// atom per move.
        #[arg(long, value_enum, default_value_t = CatchUpArg::All)]
        catch_up: CatchUpArg,
        /// With `--retroactive`: most facts kept; one more evicts the oldest.
        #[arg(long, default_value_t = trigwire::Limits::default().facts)]
        max_facts: u64,
        /// Write the engine's metrics in the Prometheus text format to this file at
        /// the end, and on each `{"metrics": true}` line (replaced atomically).
        #[arg(long)]
        metrics: Option<String>,
        /// Also write the replay as one self-contained HTML page: swimlanes, firings
        /// and their causes, the dependency graph.
        #[arg(long)]
        timeline: Option<String>,
        /// The longest input line accepted, in bytes (Limits::line_bytes, default 256
        /// MiB); a longer line is rejected without being read whole.
        #[arg(long)]
        max_line_bytes: Option<u64>,
        /// Start from the engine state saved in this file (by `--save`) instead of a
        /// fresh engine; the state holds the options above, so they cannot be given too.
        #[arg(long, conflicts_with_all = ["retroactive", "start_time", "callbacks_conf", "event_names", "max_line_bytes", "refire", "catch_up", "max_facts"])]
        load: Option<String>,
        /// When the log ends, save the engine state to this file (atomically: the file
        /// holds the old state or the new one, never a mix).
        #[arg(long)]
        save: Option<String>,
    },
    /// Print a trigger's canonical form and compiled circuit, or its error.
    Check {
        /// The trigger expression; without it (or with `-`), one trigger per line of
        /// standard input.
        trigger: Option<String>,
        /// Print one JSON document per trigger instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the documented Qube scenarios on the built-in farm simulator.
    Demo {
        /// Also write the run as one self-contained HTML page: swimlanes, firings and
        /// their causes, the dependency graph.
        #[arg(long)]
        timeline: Option<String>,
    },
    /// Build a seeded synthetic farm, register it, replay its frame events, and print
    /// the figures as one JSON object (progress on standard error).
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Jobs in the farm.
    #[arg(long, default_value_t = 1000)]
    jobs: u32,
    /// Frames per job: one frame-level callback and one completion event each.
    #[arg(long, default_value_t = 100)]
    frames: u32,
    /// The per-frame trigger: and2, or2, single or mixed.
    #[arg(long, default_value = "and2")]
    shape: String,
    /// The seed of the farm and of the random event order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The order of frame completions: random or inorder.
    #[arg(long, default_value = "random")]
    order: String,
    /// Jobs per submission (the upstream jobs are picked inside it).
    #[arg(long, default_value_t = 10)]
    group: u32,
    /// Replay only the first N events (default: every frame of every job).
    #[arg(long)]
    events: Option<u64>,
    /// Use process_batch with batches of this size (threads: RAYON_NUM_THREADS).
    #[arg(long)]
    batch: Option<usize>,
    /// Also run the naive reference on the same farm and events, and compare.
    #[arg(long)]
    reference: bool,
    /// Also give each job a job-level `complete-job-A || complete-job-B` mail callback.
    #[arg(long)]
    job_or: bool,
    /// Also write the farm as a `trigwire run` log and replay it through the wire path
    /// (decode, register, match, write), reporting its cost beside the library's.
    #[arg(long)]
    wire: bool,
    /// Write the farm as a `trigwire run` log to this file and stop, measuring nothing.
    #[arg(long)]
    write_log: Option<String>,
    /// Instead of a farm, run N submit -> complete -> remove cycles, each job with its
    /// own label, work names and python codes (100 live at a time), and report the
    /// engine's memory_usage() and the peak RSS; with --write-log, write them as a log.
    #[arg(long)]
    churn: Option<u64>,
    /// Also register the farm again, save it to a file in the temporary directory,
    /// restore it and replay the events on the restored engine, reporting `save_s`,
    /// `restore_s` and `snapshot_bytes` (under `snapshot`).
    #[arg(long)]
    snapshot: bool,
}

/// `--refire`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum RefireArg {
    EachMatch,
    OnRise,
}

impl From<RefireArg> for trigwire::Refire {
    fn from(a: RefireArg) -> Self {
        match a {
            RefireArg::EachMatch => trigwire::Refire::EachMatch,
            RefireArg::OnRise => trigwire::Refire::OnRise,
        }
    }
}

/// `--catch-up`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CatchUpArg {
    All,
    Once,
}

impl From<CatchUpArg> for trigwire::CatchUp {
    fn from(a: CatchUpArg) -> Self {
        match a {
            CatchUpArg::All => trigwire::CatchUp::All,
            CatchUpArg::Once => trigwire::CatchUp::Once,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            file,
            batch,
            retroactive,
            start_time,
            callbacks_conf,
            event_names,
            metrics,
            timeline,
            max_line_bytes,
            load,
            save,
            refire,
            catch_up,
            max_facts,
        } => {
            let mut config = Config { retroactive, start_time, ..Config::default() };
            if let Some(max) = max_line_bytes {
                config.limits.line_bytes = max;
            }
            config.refire = refire.into();
            config.catch_up = catch_up.into();
            config.limits.facts = max_facts;
            let files = Files { load, save, metrics, timeline };
            run(file, batch, config, callbacks_conf, &event_names, files)
        }
        Command::Check { trigger, json } => check(trigger.as_deref(), json),
        Command::Demo { timeline } => demo(timeline.as_deref()),
        Command::Bench(args) => bench(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(
    file: Option<String>,
    batch: Option<usize>,
    config: Config,
    conf: Option<String>,
    event_names: &[String],
    files: Files,
) -> Result<ExitCode, String> {
    let Files { load, save, metrics, timeline } = files;
    let metrics = metrics.as_deref();
    let mut engine = match &load {
        Some(path) => Engine::restore_from_path(path).map_err(|e| format!("cannot load {path}: {}", e.message()))?,
        None => Engine::new(config),
    };
    // The limits are part of a loaded state, the line limit with them.
    let line_bytes = engine.limits().line_bytes;
    for name in event_names {
        engine.register_event_name(name).map_err(|e| e.message().to_string())?;
    }
    if let Some(path) = conf {
        load_conf(&mut engine, &path)?;
    }
    let mode = match batch {
        Some(0) => return Err("--batch takes a size of at least 1".into()),
        Some(n) => Mode::Batch(n),
        None => Mode::OneByOne,
    };
    // The whole replay runs on a thread of the batch pool: see `on_pool_thread`.
    let save = save.as_deref();
    let saved = |engine: &Engine| match save {
        Some(path) => engine.save_to_path(path).map_err(|e| format!("cannot save {path}: {}", e.message())),
        None => Ok(()),
    };
    trigwire::on_pool_thread(|| match timeline {
        None => {
            let metrics = metrics.map(|path| (path, Engine::metrics as fn(&Engine) -> trigwire::Metrics));
            replay_log(file.as_deref(), engine, mode, line_bytes, metrics, saved)
        }
        Some(page) => {
            // Fail before the replay, not after it, when the page cannot be written.
            std::fs::File::create(&page).map_err(|e| format!("cannot write {page}: {e}"))?;
            let mut recorder = trigwire_tools::timeline::Recorder::new(engine);
            recorder.timeline_mut().set_title(&format!("trigwire run {}", file.as_deref().unwrap_or("-")));
            for name in event_names {
                recorder.timeline_mut().register_event_name(name);
            }
            let read: fn(&trigwire_tools::timeline::Recorder) -> trigwire::Metrics = |r| r.inner().metrics();
            let metrics = metrics.map(|path| (path, read));
            replay_log(file.as_deref(), recorder, mode, line_bytes, metrics, |r| {
                r.timeline().write_html(&page)?;
                saved(r.inner())
            })
        }
    })
}

/// The files `trigwire run` reads its starting state from and writes besides its
/// output: the final state, the metrics and the timeline page.
struct Files {
    load: Option<String>,
    save: Option<String>,
    metrics: Option<String>,
    timeline: Option<String>,
}

/// Where `--metrics` writes, and how to read the metrics of what the log is replayed
/// onto.
type MetricsTo<'p, A> = Option<(&'p str, fn(&A) -> trigwire::Metrics)>;

/// Replays the log onto `engine` (the engine, or the engine inside a timeline
/// recorder), writes the metrics to `metrics`' file if given (on each metrics line and
/// at the end), then hands it to `after` (which writes the timeline and the state).
fn replay_log<A: trigwire::Apply>(
    file: Option<&str>,
    engine: A,
    mode: Mode,
    line_bytes: u64,
    metrics: MetricsTo<'_, A>,
    after: impl FnOnce(&A) -> Result<(), String>,
) -> Result<ExitCode, String> {
    let mut input = open_input(file)?;
    let mut replay = Replay::new(engine);
    replay.limit_lines(line_bytes);
    // A line past the limit is read only as far as the byte past it, which is what the
    // replay needs to reject it; the rest is skipped unread into memory.
    let keep = usize::try_from(line_bytes).unwrap_or(usize::MAX).saturating_add(1);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(IO_BUFFER, stdout.lock());
    let mut buffer = Vec::new();
    let mut output = Output::default();
    loop {
        if input.streams && input.reader.buffer().is_empty() {
            // The next read may block: answer everything read so far first.
            replay.finish_writing(&mut output, &mut out).map_err(|e| e.to_string())?;
            write_output(&mut out, &mut output)?;
            out.flush().map_err(|e| e.to_string())?;
        }
        buffer.clear();
        if read_line_bounded(&mut input.reader, &mut buffer, keep).map_err(|e| format!("cannot read input: {e}"))? == 0
        {
            break;
        }
        // A command's output lines are written as they come, past `WRITE_AT` bytes.
        let line = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
        replay.feed_writing(line, mode, &mut output, &mut out).map_err(|e| e.to_string())?;
        if let (Some((path, _)), Some(m)) = (metrics, &output.metrics) {
            write_metrics(path, m)?;
        }
        write_output(&mut out, &mut output)?;
    }
    replay.finish_writing(&mut output, &mut out).map_err(|e| e.to_string())?;
    write_output(&mut out, &mut output)?;
    out.flush().map_err(|e| e.to_string())?;
    if let Some((path, read)) = metrics {
        write_metrics(path, &read(replay.engine()))?;
    }
    after(replay.engine())?;
    Ok(if replay.rejected() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Reads one line, its `\n` included, keeping at most `keep` bytes of it in `buffer` and
/// skipping the rest; returns how many bytes were read (0 at the end of the input).
fn read_line_bounded(reader: &mut impl BufRead, buffer: &mut Vec<u8>, keep: usize) -> std::io::Result<usize> {
    let mut read = 0;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(read);
        }
        let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        let room = keep.saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..used.min(room)]);
        reader.consume(used);
        read += used;
        if done {
            return Ok(read);
        }
    }
}

/// Writes metrics in the Prometheus text format to `path`, through a temporary file
/// beside it renamed over it, so that a collector never reads half a file.
fn write_metrics(path: &str, metrics: &trigwire::Metrics) -> Result<(), String> {
    let temporary = format!("{path}.tmp");
    std::fs::write(&temporary, metrics.prometheus())
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("cannot write metrics to {path}: {e}"))
}

/// The size of the input and output buffers of `trigwire run`.
const IO_BUFFER: usize = 64 * 1024;

/// Writes and clears what replaying produced: JSON lines on stdout, errors on stderr.
fn write_output(out: &mut impl Write, output: &mut Output) -> Result<(), String> {
    out.write_all(&output.bytes).map_err(|e| e.to_string())?;
    for e in &output.errors {
        eprint!("{e}");
    }
    for w in &output.warnings {
        eprintln!("warning: {w}");
    }
    output.clear();
    Ok(())
}

/// The log being replayed.
struct Input {
    reader: std::io::BufReader<Box<dyn Read>>,
    /// Whether reading may block waiting for a writer (standard input, a pipe): then
    /// each answer is flushed before the next read that would wait. A regular file
    /// never stalls, so its batches stay whole.
    streams: bool,
}

fn open_input(file: Option<&str>) -> Result<Input, String> {
    // Standard input's own buffer stays empty: reads of IO_BUFFER bytes bypass it.
    let (source, streams): (Box<dyn Read>, bool) = match file {
        None | Some("-") => (Box::new(std::io::stdin().lock()), true),
        Some(path) => {
            let f = std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            let regular = f.metadata().map(|m| m.is_file()).unwrap_or(false);
            (Box::new(f), !regular)
        }
    };
    Ok(Input { reader: std::io::BufReader::with_capacity(IO_BUFFER, source), streams })
}

/// Loads universal callbacks from a comma-separated list of `callbacks.conf` files and
/// folders. A bad line (malformed, a missing code file, a trigger or code the engine
/// rejects) is reported on stderr with its file and line and skipped, as Qube does; a
/// list from which nothing at all could be read is an error.
fn load_conf(engine: &mut Engine, list: &str) -> Result<(), String> {
    let (callbacks, errors) = trigwire::qube::load_callbacks_conf(list);
    let unreadable = errors.iter().filter(|e| e.line == 0).count();
    for e in &errors {
        eprintln!("warning: skipped: {e}");
    }
    let mut added = 0;
    for u in callbacks {
        match engine.add_universal(&u.spec) {
            Ok(()) => added += 1,
            Err(e) => eprint!("warning: skipped: {}:{}: {e}", u.path.display(), u.line),
        }
    }
    if added == 0 && unreadable > 0 {
        return Err(format!("no universal callback could be read from {list}"));
    }
    Ok(())
}

/// `trigwire check`: one trigger from the command line, or one per line of standard
/// input (blank lines skipped); exit status 1 if any is rejected.
fn check(trigger: Option<&str>, json: bool) -> Result<ExitCode, String> {
    let triggers: Vec<String> = match trigger {
        Some(t) if t != "-" => vec![t.to_string()],
        _ => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read standard input: {e}"))?;
            text.lines()
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .filter(|l| !l.trim().is_empty())
                .map(String::from)
                .collect()
        }
    };
    let mut failed = false;
    for (i, trigger) in triggers.iter().enumerate() {
        let checked = trigwire::check(trigger, &trigwire::Limits::default());
        failed |= checked.is_err();
        if json {
            println!("{}", check_json(trigger, &checked));
            continue;
        }
        if i > 0 {
            println!();
        }
        match checked {
            Ok(c) => {
                println!("canonical: {}\ncircuit: {}", c.canonical, c.circuit);
                for (bit, atom) in c.atoms.iter().enumerate() {
                    println!("  bit{bit}: {atom}");
                }
            }
            Err(e) => eprint!("{e}"),
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// One trigger's check as a JSON document: `{"trigger", "canonical", "atoms",
/// "circuit"}` or `{"trigger", "error": {"message", "span"}}`.
fn check_json(trigger: &str, checked: &Result<trigwire::Checked, trigwire::Error>) -> serde_json::Value {
    match checked {
        Ok(c) => serde_json::json!({
            "trigger": trigger, "canonical": c.canonical, "atoms": c.atoms, "circuit": c.circuit,
        }),
        Err(e) => serde_json::json!({
            "trigger": trigger,
            "error": {"message": e.message(), "span": e.span().map(|s| [s.start, s.end])},
        }),
    }
}

fn demo(timeline: Option<&str>) -> Result<ExitCode, String> {
    println!("trigwire demo: the documented Qube scenarios on a four-frame shot, one farm second a step\n");
    for line in trigwire_tools::sim::DEMO_JOBS {
        println!("  {line}");
    }
    println!();
    let farm = trigwire_tools::sim::demo_farm().map_err(|e| e.to_string())?;
    for line in farm.timeline() {
        println!("{line}");
    }
    if let Some(page) = timeline {
        farm.recorded().write_html(page)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(args: &BenchArgs) -> Result<ExitCode, String> {
    if let Some(cycles) = args.churn {
        return bench_churn(cycles, args.write_log.as_deref());
    }
    use trigwire_tools::bench_farm::{measure, Farm, FarmSpec, Order, ReplayOptions, Subject, TriggerShape};
    let shape = TriggerShape::parse(&args.shape)
        .ok_or_else(|| format!("unknown shape `{}`; expected and2, or2, single or mixed", args.shape))?;
    let order = Order::parse(&args.order)
        .ok_or_else(|| format!("unknown order `{}`; expected random or inorder", args.order))?;
    if args.batch == Some(0) {
        return Err("--batch takes a size of at least 1".into());
    }
    let farm = Farm::new(FarmSpec {
        jobs: args.jobs,
        frames: args.frames,
        shape,
        seed: args.seed,
        group: args.group,
        job_or: args.job_or,
    });
    if let Some(path) = &args.write_log {
        let file = std::fs::File::create(path).map_err(|e| format!("cannot write {path}: {e}"))?;
        let mut out = std::io::BufWriter::new(file);
        farm.write_wire(order, args.events, &mut out).map_err(|e| format!("cannot write {path}: {e}"))?;
        out.flush().map_err(|e| format!("cannot write {path}: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let replay = ReplayOptions { order, events: args.events, batch: args.batch };
    let engine =
        measure(&farm, Subject::Compiled, replay, &mut |p| show_progress("trigwire", p)).map_err(|e| e.to_string())?;
    let mut report = serde_json::json!({
        "jobs": args.jobs, "frames": args.frames, "shape": shape.name(), "order": args.order, "seed": args.seed,
        "batch": args.batch, "threads": rayon_threads(args.batch),
    });
    let object = report.as_object_mut().ok_or("report is an object")?;
    let figures = serde_json::to_value(&engine).map_err(|e| e.to_string())?;
    object.extend(figures.as_object().cloned().unwrap_or_default());
    let mut same = true;
    if args.wire {
        let wire = trigwire_tools::bench_farm::measure_wire(&farm, replay)?;
        object.insert("wire_register_ratio".into(), (wire.register_s / engine.register_s.max(1e-12)).into());
        object.insert("wire_match_ratio".into(), (wire.match_s / engine.match_s.max(1e-12)).into());
        same &= wire.firings == engine.firings;
        object.insert("wire".into(), serde_json::to_value(&wire).map_err(|e| e.to_string())?);
    }
    if args.snapshot {
        let dir = std::env::temp_dir();
        let snap =
            trigwire_tools::bench_farm::measure_snapshot(&farm, replay, &dir, &mut |p| show_progress("snapshot", p))?;
        same &= snap.checksum == engine.checksum && snap.firings == engine.firings;
        object.insert("snapshot".into(), serde_json::to_value(&snap).map_err(|e| e.to_string())?);
    }
    if args.reference {
        let reference = measure(&farm, Subject::Reference, replay, &mut |p| show_progress("reference", p))
            .map_err(|e| e.to_string())?;
        let per_event = |f: &trigwire_tools::bench_farm::Figures| f.match_s / f.events.max(1) as f64;
        object.insert("speedup_vs_reference".into(), (per_event(&reference) / per_event(&engine).max(1e-12)).into());
        same &= reference.firings == engine.firings && reference.checksum == engine.checksum;
        object.insert("reference".into(), serde_json::to_value(&reference).map_err(|e| e.to_string())?);
    }
    println!("{report}");
    if !same {
        eprintln!(
            "error: the engine, the reference, the wire path or the restored engine disagree on the firings of \
             the same farm"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The threads a batched replay runs on; one-at-a-time replay uses one.
fn rayon_threads(batch: Option<usize>) -> usize {
    batch.map_or(1, |_| {
        std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// A one-line progress display on standard error, redrawn in place.
fn show_progress(who: &str, p: trigwire_tools::bench_farm::Progress) {
    use trigwire_tools::bench_farm::Progress;
    let (what, done, of) = match p {
        Progress::Registering { done, of } => ("registering submissions", done, of),
        Progress::Replaying { done, of } => ("replaying events", done, of),
    };
    let width = 30;
    let filled = (done * width / of.max(1)) as usize;
    eprint!("\r{who}: {what} [{}{}] {done}/{of}   ", "#".repeat(filled), " ".repeat(width as usize - filled));
    if done == of {
        eprintln!();
    }
    let _ = std::io::stderr().flush();
}

/// `trigwire bench --churn N`: see `trigwire_tools::churn`.
fn bench_churn(cycles: u64, write_log: Option<&str>) -> Result<ExitCode, String> {
    use trigwire_tools::churn;
    if let Some(path) = write_log {
        let file = std::fs::File::create(path).map_err(|e| format!("cannot write {path}: {e}"))?;
        let mut out = std::io::BufWriter::new(file);
        churn::write_log(cycles, &mut out).map_err(|e| format!("cannot write {path}: {e}"))?;
        out.flush().map_err(|e| format!("cannot write {path}: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut engine = Engine::default();
    let fresh = engine.memory_usage().total();
    let start = std::time::Instant::now();
    let firings = churn::run(&mut engine, 0, cycles);
    let seconds = start.elapsed().as_secs_f64();
    let live = engine.memory_usage().total();
    churn::drain(&mut engine, cycles);
    let drained = engine.memory_usage().total();
    let report = serde_json::json!({
        "churn_cycles": cycles, "live_jobs": churn::LIVE, "seconds": seconds, "firings": firings,
        "memory_fresh": fresh, "memory_live": live, "memory_drained": drained,
        "peak_rss_kib": churn::peak_rss_kib(),
    });
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
