//! Differential test: the compiled engine against the reference semantics on random
//! farms (submissions with labels, groups, parents, agendas, subjobs, dependencies and
//! random triggers; events; clock moves; removals; global callbacks), in both the
//! edge-triggered and the retroactive modes, each re-firing and catch-up policy, with
//! tick and fact limits small enough to trip, one event at a time and in batches, and
//! with the engine saved and restored after a random line; explanations, metrics and
//! the operator's satisfy and re-arm among them. Any difference in output lines
//! (submissions, warnings, firings, targets, explanations, counters, errors) fails.

use proptest::prelude::*;
use serde_json::{json, Value};
use trigwire::wire::{Mode, Replay};
use trigwire::{CatchUp, Config, Engine, Refire};
use trigwire_tools::Reference;

const NAMES: [&str; 8] = ["complete", "complete", "failed", "killed", "done", "done", "submit", "timeout"];
const CONTEXTS: [&str; 10] = ["self", "self", "a", "b", "c", "1", "2", "3", "7", "parent"];
const FRAMES: [&str; 2] = ["1", "Seg 1-2"];

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&NAMES[..])
}

fn event_atom(contexts: &'static [&'static str]) -> impl Strategy<Value = String> {
    let extra = prop_oneof![
        4 => Just("job".to_string()),
        3 => prop::sample::select(&FRAMES[..]).prop_map(|f| format!("work@{f}")),
        2 => Just("work@*".to_string()),
        1 => (0u8..3).prop_map(|i| format!("subjob@{i}")),
        1 => Just("subjob@*".to_string()),
        1 => prop::sample::select(&["h1", "*"][..]).prop_map(|h| format!("host@{h}")),
    ];
    (name(), prop::sample::select(contexts), extra).prop_map(|(n, c, e)| match e.split_once('@') {
        None => format!("{n}-job-{c}"),
        Some((ty, x)) => format!("{n}-{ty}-{c}-{x}"),
    })
}

fn clock_atom(global: bool) -> impl Strategy<Value = String> {
    (0u64..40, 1u64..8, any::<bool>()).prop_map(move |(t, i, rep)| match (global, rep) {
        (true, false) => format!("globaltime-{t}"),
        (true, true) => format!("globalrepeat-{t}-{i}"),
        (false, false) => format!("dummy-time-self-{t}"),
        (false, true) => format!("dummy-repeat-self-{t}-{i}"),
    })
}

fn trigger(global: bool) -> impl Strategy<Value = String> {
    let contexts: &'static [&'static str] = if global { &CONTEXTS[5..9] } else { &CONTEXTS[..] };
    let leaf = prop_oneof![4 => event_atom(contexts), 1 => clock_atom(global)];
    leaf.prop_recursive(2, 6, 3, |inner| {
        (prop::collection::vec(inner, 2..4), prop::bool::weighted(0.35), any::<bool>()).prop_map(|(xs, and, wrap)| {
            let op = if and { " && " } else { " or " };
            let joined = xs.join(op);
            if wrap {
                format!("({joined})")
            } else {
                joined
            }
        })
    })
}

fn callback(global: bool) -> impl Strategy<Value = Value> {
    let code = prop::sample::select(&["unblock-self", "unblock-work-self", "unblock-subjob-self", "mail-status"][..]);
    (trigger(global), code, prop_oneof![3 => Just(-1i64), 1 => 0i64..3])
        .prop_map(|(t, c, m)| json!({"triggers": t, "language": "qube", "code": c, "maximum": m}))
}

fn job() -> impl Strategy<Value = Value> {
    let label = prop::option::weighted(0.5, prop::sample::select(&["a", "b", "c", "d"][..]));
    let pgrp = prop::option::weighted(0.2, 1u64..4);
    let pid = prop::option::weighted(0.8, 1u64..5);
    let agenda = prop::sample::subsequence(&FRAMES[..], 0..=2);
    let dep = prop::option::weighted(
        0.2,
        prop::sample::select(
            &["1", "link-complete-work-a", "done-job-b, link-complete-subjob-a", "link-failed-work-c,2"][..],
        ),
    );
    let cbs = prop::collection::vec(callback(false), 0..5);
    (label, pgrp, pid, agenda, 0u64..3, dep, cbs).prop_map(|(label, pgrp, pid, agenda, subjobs, dep, cbs)| {
        let mut j = json!({"agenda": agenda, "subjobs": subjobs, "callbacks": cbs});
        if let Some(l) = label {
            j["label"] = json!(l);
        }
        if let Some(g) = pgrp {
            j["pgrp"] = json!(g);
        }
        if let Some(p) = pid {
            j["pid"] = json!(p);
        }
        if let Some(d) = dep {
            j["dependency"] = json!(d);
        }
        j
    })
}

fn event() -> impl Strategy<Value = Value> {
    let ty = prop_oneof![
        3 => Just(Value::Null),
        3 => prop::sample::select(&FRAMES[..]).prop_map(|f| json!(["work", f])),
        1 => (0u64..3).prop_map(|i| json!(["subjob", i])),
        1 => Just(json!(["host", "h1"])),
    ];
    let names = prop::sample::select(&["complete", "complete", "failed", "killed", "submit", "timeout"][..]);
    (names, 1u64..6, ty).prop_map(|(n, job, ty)| match ty {
        Value::Null => json!({"event": n, "type": "job", "job": job}),
        v => json!({"event": n, "type": v[0], "job": job, "extra": v[1]}),
    })
}

fn submit() -> impl Strategy<Value = Value> {
    prop::collection::vec(job(), 1..3).prop_map(|jobs| json!({"submit": jobs}))
}

/// A farm: two submissions first, so that most events have callbacks to meet, then
/// random steps.
fn farm() -> impl Strategy<Value = Vec<Value>> {
    (prop::collection::vec(submit(), 2), prop::collection::vec(step(), 1..30)).prop_map(|(mut a, b)| {
        a.extend(b);
        a
    })
}

fn step() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => submit(),
        12 => event(),
        2 => (0u64..12).prop_map(|d| json!({"advance": d})),
        1 => (1u64..9).prop_map(|id| json!({"remove": id})),
        1 => callback(true).prop_map(|cb| json!({"callback": cb})),
        // Ids of global and job callbacks alike, live, removed or never registered.
        1 => (0u32..24).prop_map(|id| json!({"remove_callback": id})),
        2 => introspection(),
    ]
}

/// Explain, metrics and the operator's commands: both implementations explain, count,
/// satisfy and re-arm on their own, so their answers are compared like firings.
fn introspection() -> impl Strategy<Value = Value> {
    let work = prop::option::weighted(0.5, prop::sample::select(&FRAMES[..]));
    prop_oneof![
        2 => (1u64..6, work).prop_map(|(job, work)| match work {
            Some(w) => json!({"explain": {"job": job, "work": w}}),
            None => json!({"explain": {"job": job}}),
        }),
        1 => Just(json!({"metrics": true})),
        2 => (1u64..6, 0u32..4).prop_map(|(job, cb)| json!({"satisfy": {"job": job, "callback": cb}})),
        1 => (1u64..6, 0u32..4, event_atom(&CONTEXTS[..]))
            .prop_map(|(job, cb, atom)| json!({"satisfy": {"job": job, "callback": cb, "atom": atom}})),
        1 => (1u64..6, 0u32..4).prop_map(|(job, cb)| json!({"rearm": {"job": job, "callback": cb}})),
    ]
}

/// Turns steps into a log; `advance` becomes an absolute clock move (sometimes back).
fn log(steps: &[Value]) -> String {
    let mut now = 0u64;
    let mut out = String::new();
    for s in steps {
        let line = match s.get("advance").and_then(Value::as_u64) {
            Some(0) => json!({"time": now.saturating_sub(1)}),
            Some(d) => {
                now += d;
                json!({"time": now})
            }
            None => s.clone(),
        };
        out.push_str(&format!("{line}\n"));
    }
    out
}

/// The engine options a farm runs under: `retroactive`, re-firing, catch-up, and the
/// tick and fact limits, small enough to trip or at their defaults.
fn options() -> impl Strategy<Value = Config> {
    let small = prop_oneof![2 => Just(None), 1 => (0u64..8).prop_map(Some)];
    (any::<bool>(), any::<bool>(), any::<bool>(), small.clone(), small).prop_map(
        |(retroactive, on_rise, once, ticks, facts)| {
            let mut config = Config { retroactive, ..Config::default() };
            config.refire = if on_rise { Refire::OnRise } else { Refire::EachMatch };
            config.catch_up = if once { CatchUp::Once } else { CatchUp::All };
            if let Some(t) = ticks {
                config.limits.ticks_per_move = t;
            }
            if let Some(f) = facts {
                config.limits.facts = f;
            }
            config
        },
    )
}

fn compare(steps: &[Value], config: Config, cut: prop::sample::Index) -> Result<(), TestCaseError> {
    let text = log(steps);
    let expected = values(&Replay::new(Reference::new(config)).run_bytes(text.as_bytes(), Mode::OneByOne));
    for mode in [Mode::OneByOne, Mode::Batch(2), Mode::Batch(64)] {
        let got = values(&Replay::new(Engine::new(config)).run_bytes(text.as_bytes(), mode));
        prop_assert_eq!(&got, &expected, "mode {:?}, {:?}, log:\n{}", mode, config, text);
    }
    // Saved and restored after a random line: the rest of the log answers the same.
    let lines: Vec<&str> = text.lines().collect();
    let cut = cut.index(lines.len() + 1);
    let join = |part: &[&str]| part.iter().map(|l| format!("{l}\n")).collect::<String>();
    for mode in [Mode::OneByOne, Mode::Batch(64)] {
        let mut first = Replay::new(Engine::new(config));
        let mut got = values(&first.run_bytes(join(&lines[..cut]).as_bytes(), mode));
        let mut bytes = Vec::new();
        first.engine().save(&mut bytes).expect("saving to memory");
        let restored = Engine::restore(&bytes[..]).expect("a saved engine restores");
        for mut v in values(&Replay::new(restored).run_bytes(join(&lines[cut..]).as_bytes(), mode)) {
            if let Some(n) = v.get("line").and_then(Value::as_u64) {
                v["line"] = (n + cut as u64).into();
            }
            got.push(v);
        }
        prop_assert_eq!(&got, &expected, "saved and restored after line {}, mode {:?}, log:\n{}", cut, mode, text);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference(steps in farm(), config in options(), cut in any::<prop::sample::Index>()) {
        compare(&steps, config, cut)?;
    }
}

/// The farms above fire: a check that the generator exercises firing at all.
#[test]
fn generated_farms_fire() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = farm();
    let (mut fired, mut submitted) = (0, 0);
    for _ in 0..200 {
        let steps = strategy.new_tree(&mut runner).expect("tree").current();
        let out = values(&Replay::new(Engine::default()).run_bytes(log(&steps).as_bytes(), Mode::OneByOne));
        fired += out.iter().filter(|v| v.get("fired").is_some()).count();
        submitted += out.iter().filter(|v| v.get("submitted").is_some()).count();
        if std::env::var_os("SHOW_FARM").is_some() {
            eprintln!("{}\n=>\n{}", log(&steps), out.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n"));
        }
    }
    eprintln!("200 farms: {submitted} submissions accepted, {fired} firings");
    assert!(fired > 500, "random farms fired only {fired} times");
    assert!(submitted > 400, "random farms accepted only {submitted} submissions");
}

/// The reference can sit beside the engine in a threaded host or test, as the engine can.
#[test]
fn the_reference_crosses_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Reference>();
}

/// The output lines of a replay as JSON values.
fn values(out: &trigwire::wire::Output) -> Vec<serde_json::Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}
