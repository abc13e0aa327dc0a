//! The `trigwire` command line: replay farm logs, check triggers, run the demo.

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use trigwire::wire::{Mode, Replay};
use trigwire::{CallbackSpec, Config, Engine};

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
    let input = read_input(file.as_deref())?;
    let mode = match batch {
        Some(0) => return Err("--batch takes a size of at least 1".into()),
        Some(n) => Mode::Batch(n),
        None => Mode::OneByOne,
    };
    let mut replay = Replay::new(engine);
    let (lines, errors) = replay.run_bytes(&input, mode);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in &lines {
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    for e in &errors {
        eprint!("{e}");
    }
    Ok(if replay.rejected() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn read_input(file: Option<&str>) -> Result<Vec<u8>, String> {
    let mut input = Vec::new();
    match file {
        None | Some("-") => std::io::stdin().read_to_end(&mut input).map(|_| ()),
        Some(path) => std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut input).map(|_| ())),
    }
    .map_err(|e| format!("cannot read {}: {e}", file.unwrap_or("standard input")))?;
    Ok(input)
}

/// Loads universal callbacks from a `callbacks.conf`; code files are read beside it.
fn load_conf(engine: &mut Engine, path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let entries = trigwire::qube::parse_callbacks_conf(&text).map_err(|e| format!("{path}: {e}"))?;
    let dir = std::path::Path::new(path).parent().unwrap_or(std::path::Path::new("."));
    for entry in entries {
        let code_path = dir.join(&entry.file);
        let code =
            std::fs::read_to_string(&code_path).map_err(|e| format!("cannot read {}: {e}", code_path.display()))?;
        let code = if entry.language == trigwire::Language::Qube { code.trim().to_string() } else { code };
        let spec = CallbackSpec { triggers: vec![entry.trigger], language: entry.language, code, maximum: None };
        engine.add_universal(&spec).map_err(|e| format!("{path} line {}: {e}", entry.line))?;
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
