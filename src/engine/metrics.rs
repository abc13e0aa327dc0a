//! What [`crate::Engine::metrics`] reports: counters a scheduler exports, and their
//! Prometheus text exposition.
//!
//! No matching answer depends on the counters, but a `{"metrics": true}` line prints
//! them, so a snapshot saves them (a log split in two runs at a saved state prints what
//! one run prints, and exported counters carry on across a restart instead of
//! resetting); a clone keeps them too.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::memory::MemoryUsage;

/// The kinds of command, as [`crate::Command::kind`] names them, in the order the
/// metrics list them.
pub const COMMAND_KINDS: [&str; 10] =
    ["submit", "callback", "event", "time", "remove", "remove_callback", "explain", "metrics", "satisfy", "rearm"];

/// Counters of what the engine was asked and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Commands applied through the command API, by kind (accepted or not).
    pub commands: [u64; COMMAND_KINDS.len()],
    pub events: u64,
    pub firings: u64,
    pub rejections: u64,
}

impl Counters {
    pub(crate) fn encode(&self, e: &mut super::snapshot::Enc) {
        e.len(self.commands.len());
        self.commands.iter().for_each(|&n| e.u64(n));
        e.u64(self.events);
        e.u64(self.firings);
        e.u64(self.rejections);
    }

    pub(crate) fn decode(d: &mut super::snapshot::Dec<'_>) -> Result<Counters, crate::Error> {
        let kinds = d.count(8)?;
        d.check(kinds == COMMAND_KINDS.len(), || format!("{kinds} command kinds, not {}", COMMAND_KINDS.len()))?;
        let mut counters = Counters::default();
        for n in &mut counters.commands {
            *n = d.u64()?;
        }
        counters.events = d.u64()?;
        counters.firings = d.u64()?;
        counters.rejections = d.u64()?;
        Ok(counters)
    }

    /// Counts one command of `kind`.
    pub fn command(&mut self, kind: &str, n: u64) {
        let i = COMMAND_KINDS.iter().position(|k| *k == kind);
        debug_assert!(i.is_some(), "command kind `{kind}` is missing from COMMAND_KINDS");
        if let Some(i) = i {
            self.commands[i] = self.commands[i].saturating_add(n);
        }
    }

    // Every count saturates: a restored state may carry any value.

    pub fn count_events(&mut self, n: u64) {
        self.events = self.events.saturating_add(n);
    }

    pub fn count_firings(&mut self, n: u64) {
        self.firings = self.firings.saturating_add(n);
    }

    pub fn count_rejections(&mut self, n: u64) {
        self.rejections = self.rejections.saturating_add(n);
    }
}

/// A snapshot of the engine's counters and gauges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Commands applied through the command API ([`crate::Engine::apply`],
    /// [`crate::Engine::apply_all`], [`crate::Apply::submit_each`]), by kind, accepted
    /// or rejected; every kind is listed, zero or not.
    pub commands: BTreeMap<&'static str, u64>,
    /// Events accepted (reported by the host, through any entry point).
    pub events: u64,
    /// Callbacks fired, through any entry point.
    pub firings: u64,
    /// Commands the command API rejected.
    pub rejections: u64,
    /// Live jobs.
    pub jobs: u64,
    /// Live callbacks that have not fired yet.
    pub callbacks_waiting: u64,
    /// Live callbacks that have fired at least once.
    pub callbacks_fired: u64,
    /// Bytes held, by structure.
    pub memory: MemoryUsage,
}

impl Metrics {
    pub(crate) fn from_counters(c: &Counters) -> Metrics {
        Metrics {
            commands: COMMAND_KINDS.iter().copied().zip(c.commands.iter().copied()).collect(),
            events: c.events,
            firings: c.firings,
            rejections: c.rejections,
            ..Metrics::default()
        }
    }

    /// The Prometheus text exposition format (version 0.0.4): `trigwire_` metrics with
    /// `HELP` and `TYPE` lines, counters ending in `_total`, bytes in `_bytes`.
    ///
    /// # Example
    /// ```
    /// let text = trigwire::Engine::default().metrics().prometheus();
    /// assert!(text.contains("# TYPE trigwire_events_total counter\ntrigwire_events_total 0\n"));
    /// ```
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP trigwire_{name} {help}\n# TYPE trigwire_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "trigwire_{name}{labels} {value}");
            }
        };
        let plain = |v: u64| [(String::new(), v)];
        let commands: Vec<(String, u64)> =
            self.commands.iter().map(|(k, v)| (format!("{{kind=\"{k}\"}}"), *v)).collect();
        family("commands_total", "counter", "Commands applied, accepted or rejected, by kind.", &commands);
        family("events_total", "counter", "Events accepted.", &plain(self.events));
        family("firings_total", "counter", "Callbacks fired.", &plain(self.firings));
        family("rejections_total", "counter", "Commands rejected.", &plain(self.rejections));
        family("jobs", "gauge", "Live jobs.", &plain(self.jobs));
        let callbacks = [
            ("{state=\"waiting\"}".to_string(), self.callbacks_waiting),
            ("{state=\"fired\"}".to_string(), self.callbacks_fired),
        ];
        family("callbacks", "gauge", "Live callbacks, by whether they have fired.", &callbacks);
        let m = &self.memory;
        let memory: Vec<(String, u64)> = [
            ("callbacks", m.callbacks),
            ("templates", m.templates),
            ("index_heads", m.index_heads),
            ("index_tables", m.index_tables),
            ("timers", m.timers),
            ("jobs", m.jobs),
            ("symbols", m.symbols),
            ("facts", m.facts),
        ]
        .iter()
        .map(|(s, v)| (format!("{{structure=\"{s}\"}}"), *v as u64))
        .collect();
        family("memory_bytes", "gauge", "Bytes held by the engine, by structure.", &memory);
        out
    }
}
