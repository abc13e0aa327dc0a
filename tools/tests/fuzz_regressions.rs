//! Replays every committed fuzz input through the property its target checks: the
//! seeds under `fuzz/seeds/<target>/` and the minimized crash inputs under
//! `fuzz/regressions/<target>/`. The properties are the very functions the fuzz
//! targets call (`fuzz/src/lib.rs`, included below), so a crash the fuzzer found stays
//! fixed under an ordinary `cargo test`, without cargo-fuzz or a nightly toolchain.
//! Adding a regression is adding a file; see `fuzz/README.md`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod props;

/// The committed inputs of `target`, seeds first, each in name order.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut all = Vec::new();
    for kind in ["seeds", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = entries.map(|e| e.expect("readable directory").path()).collect();
        files.retain(|p| p.is_file());
        files.sort();
        all.extend(files);
    }
    all
}

/// Runs `check` on every input of `target` and reports every file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no committed inputs for `{target}`");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("readable input");
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "`{target}` fails on: {failed:#?}");
}

#[test]
fn parse() {
    replay("parse", props::check_parse);
}

#[test]
fn wire() {
    replay("wire", props::check_wire);
}

#[test]
fn engine_vs_reference() {
    replay("engine_vs_reference", props::check_farm);
}

#[test]
fn dependency() {
    replay("dependency", props::check_dependency);
}

#[test]
fn callbacks_conf() {
    replay("callbacks_conf", props::check_callbacks_conf);
}

#[test]
fn restore() {
    replay("restore", props::check_restore);
}

/// The properties themselves can fail: a wrong round trip is caught.
#[test]
fn strip_spans_compares_trees_not_positions() {
    use trigwire::syntax::{parse, CustomNames, ParseLimits};
    let parsed = |t: &str| parse(t, &ParseLimits::default(), &CustomNames::default()).unwrap();
    let a = parsed("complete-job-self&&done-job-1");
    let b = parsed("  complete-job-self  and  done-job-1");
    assert_ne!(a, b, "the spans differ");
    assert_eq!(props::strip_spans(&a), props::strip_spans(&b));
    assert_ne!(props::strip_spans(&a), props::strip_spans(&parsed("done-job-1 && complete-job-self")));
}
