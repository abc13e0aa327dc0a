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
    },
    /// Print a trigger's canonical form and compiled circuit, or its error.
    Check {
        /// The trigger expression.
        trigger: String,
    },
    /// Run the documented Qube scenarios on the built-in farm simulator.
    Demo,
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
            refire,
            catch_up,
            max_facts,
        } => {
            let mut config = Config { retroactive, start_time, ..Config::default() };
            config.refire = refire.into();
            config.catch_up = catch_up.into();
            config.limits.facts = max_facts;
            run(file, batch, config, callbacks_conf, &event_names)
        }
        Command::Check { trigger } => check(&trigger),
        Command::Demo => demo(),
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
) -> Result<ExitCode, String> {
    let mut engine = Engine::new(config);
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
    trigwire::on_pool_thread(|| replay_log(file.as_deref(), engine, mode))
}

fn replay_log(file: Option<&str>, engine: Engine, mode: Mode) -> Result<ExitCode, String> {
    let mut input = open_input(file)?;
    let mut replay = Replay::new(engine);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(IO_BUFFER, stdout.lock());
    let mut buffer = Vec::new();
    let mut output = Output::default();
    loop {
        if input.streams && input.reader.buffer().is_empty() {
            // The next read may block: answer everything read so far first.
            replay.finish(&mut output);
            write_output(&mut out, &mut output)?;
            out.flush().map_err(|e| e.to_string())?;
        }
        buffer.clear();
        if input.reader.read_until(b'\n', &mut buffer).map_err(|e| format!("cannot read input: {e}"))? == 0 {
            break;
        }
        replay.feed(buffer.strip_suffix(b"\n").unwrap_or(&buffer), mode, &mut output);
        write_output(&mut out, &mut output)?;
    }
    replay.finish(&mut output);
    write_output(&mut out, &mut output)?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(if replay.rejected() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The size of the input and output buffers of `trigwire run`.
const IO_BUFFER: usize = 64 * 1024;

/// Writes and clears what replaying produced: JSON lines on stdout, errors on stderr.
fn write_output(out: &mut impl Write, output: &mut Output) -> Result<(), String> {
    out.write_all(&output.bytes).map_err(|e| e.to_string())?;
    for e in &output.errors {
        eprint!("{e}");
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

fn check(trigger: &str) -> Result<ExitCode, String> {
    match trigwire::explain(trigger, &trigwire::Limits::default()) {
        Ok(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprint!("{e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn demo() -> Result<ExitCode, String> {
    println!("trigwire demo: the documented Qube scenarios on a four-frame shot, one farm second a step\n");
    for line in trigwire_tools::sim::DEMO_JOBS {
        println!("  {line}");
    }
    println!();
    for line in trigwire_tools::sim::demo() {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(args: &BenchArgs) -> Result<ExitCode, String> {
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
    if args.reference {
        let reference = measure(&farm, Subject::Reference, replay, &mut |p| show_progress("reference", p))
            .map_err(|e| e.to_string())?;
        let per_event = |f: &trigwire_tools::bench_farm::Figures| f.match_s / f.events.max(1) as f64;
        object.insert("speedup_vs_reference".into(), (per_event(&reference) / per_event(&engine).max(1e-12)).into());
        same = reference.firings == engine.firings && reference.checksum == engine.checksum;
        object.insert("reference".into(), serde_json::to_value(&reference).map_err(|e| e.to_string())?);
    }
    println!("{report}");
    if !same {
        eprintln!("error: the engine, the reference or the wire path disagree on the firings of the same farm");
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
