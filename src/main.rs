//! The `trigwire` command line: replay farm logs, check triggers, run the demo.

use std::io::{BufRead, Write};
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
        /// A Qube callbacks.conf of universal callbacks (code files beside it).
        #[arg(long)]
        callbacks_conf: Option<String>,
        /// Register a custom event name (repeatable).
        #[arg(long = "event-name")]
        event_names: Vec<String>,
    },
    /// Print a trigger's canonical form and compiled circuit, or its error.
    Check {
        /// The trigger expression.
        trigger: String,
    },
    /// Run the documented Qube scenarios on the built-in farm simulator.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { file, batch, retroactive, callbacks_conf, event_names } => {
            run(file, batch, retroactive, callbacks_conf, &event_names)
        }
        Command::Check { trigger } => check(&trigger),
        Command::Demo => demo(),
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
    retroactive: bool,
    conf: Option<String>,
    event_names: &[String],
) -> Result<ExitCode, String> {
    let mut engine = Engine::new(Config { retroactive, ..Config::default() });
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
    let mut input = open_input(file.as_deref())?;
    let mut replay = Replay::new(engine);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut buffer = Vec::new();
    let mut output = Output::default();
    while input.read_until(b'\n', &mut buffer).map_err(|e| format!("cannot read input: {e}"))? > 0 {
        replay.feed(buffer.strip_suffix(b"\n").unwrap_or(&buffer), mode, &mut output);
        write_output(&mut out, &mut output)?;
        buffer.clear();
    }
    replay.finish(&mut output);
    write_output(&mut out, &mut output)?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(if replay.rejected() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Writes and clears what replaying produced: JSON lines on stdout, errors on stderr.
fn write_output(out: &mut impl Write, output: &mut Output) -> Result<(), String> {
    for line in output.lines.drain(..) {
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    for e in output.errors.drain(..) {
        eprint!("{e}");
    }
    Ok(())
}

fn open_input(file: Option<&str>) -> Result<Box<dyn BufRead>, String> {
    match file {
        None | Some("-") => Ok(Box::new(std::io::stdin().lock())),
        Some(path) => std::fs::File::open(path)
            .map(|f| Box::new(std::io::BufReader::new(f)) as Box<dyn BufRead>)
            .map_err(|e| format!("cannot read {path}: {e}")),
    }
}

/// Loads universal callbacks from a `callbacks.conf`; code files are read beside it.
fn load_conf(engine: &mut Engine, path: &str) -> Result<(), String> {
    let specs = trigwire::qube::load_callbacks_conf(std::path::Path::new(path)).map_err(|e| format!("{path}: {e}"))?;
    for spec in specs {
        engine.add_universal(&spec).map_err(|e| format!("{path}: {e}"))?;
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
    for line in trigwire::sim::DEMO_JOBS {
        println!("  {line}");
    }
    println!();
    for line in trigwire::sim::demo() {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
