//! The introspection surface of the `trigwire` binary: `check --json`, `check` over
//! standard input, and `run --metrics`.

mod common;

use common::trigwire;

fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[test]
fn check_json_gives_canonical_form_atoms_and_circuit() {
    let out = trigwire(&["check", "--json", "(complete-work-ribGen-5 && complete-work-ribGen-5) || done-job-self"], "");
    assert!(out.status.success());
    let docs = json_lines(&out.stdout);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["canonical"], "complete-work-ribGen-5 && complete-work-ribGen-5 || done-job-self");
    assert_eq!(docs[0]["atoms"], serde_json::json!(["complete-work-ribGen-5", "done-job-self"]));
    assert!(docs[0]["circuit"].as_str().unwrap().contains("OR of 2"), "{}", docs[0]);
}

#[test]
fn check_json_gives_the_error_with_its_span_and_status_1() {
    let out = trigwire(&["check", "--json", "complete-job-self && compelte-job-7"], "");
    assert_eq!(out.status.code(), Some(1));
    let docs = json_lines(&out.stdout);
    assert_eq!(docs[0]["error"]["span"], serde_json::json!([21, 29]));
    assert!(docs[0]["error"]["message"].as_str().unwrap().contains("compelte"));
    assert!(docs[0].get("canonical").is_none());
}

#[test]
fn check_reads_one_trigger_per_line_from_standard_input() {
    let input = "complete-job-self\n\r\n  \nfailed-work-7-*\r\ncompelte-job-self\n";
    let out = trigwire(&["check", "--json"], input);
    assert_eq!(out.status.code(), Some(1), "one of three is rejected");
    let docs = json_lines(&out.stdout);
    let triggers: Vec<&str> = docs.iter().map(|d| d["trigger"].as_str().unwrap()).collect();
    assert_eq!(triggers, ["complete-job-self", "failed-work-7-*", "compelte-job-self"]);
    assert!(docs[0]["error"].is_null() && docs[1]["error"].is_null() && !docs[2]["error"].is_null());

    let out = trigwire(&["check", "-"], "complete-job-self\nfailed-work-7-*\n");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("canonical: ").count(), 2, "{stdout}");
}

#[test]
fn run_writes_prometheus_metrics_at_the_end_and_on_a_metrics_line() {
    let dir = std::env::temp_dir().join(format!("trigwire-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trigwire.prom");
    let path_text = path.to_str().unwrap();
    let log = concat!(
        "{\"submit\": [{\"id\": 1, \"callbacks\": [{\"triggers\": \"complete-job-2\", \"code\": \"unblock-self\"}]}]}\n",
        "{\"event\": \"complete\", \"type\": \"job\", \"job\": 2}\n",
        "{\"event\": \"done\", \"type\": \"job\", \"job\": 2}\n",
        "{\"metrics\": true}\n",
    );
    let out = trigwire(&["run", "--metrics", path_text, "-"], log);
    assert_eq!(out.status.code(), Some(1), "the `done` line is rejected");
    let lines = json_lines(&out.stdout);
    let metrics = lines.iter().find(|l| l.get("metrics").is_some()).expect("a metrics line");
    assert_eq!(metrics["metrics"]["events"], 1);
    assert_eq!(metrics["metrics"]["firings"], 1);
    assert_eq!(metrics["metrics"]["rejections"], 1);
    assert_eq!(metrics["metrics"]["commands"]["event"], 2);
    let text = std::fs::read_to_string(&path).expect("the metrics file");
    for expected in [
        "# TYPE trigwire_commands_total counter\n",
        "trigwire_commands_total{kind=\"submit\"} 1\n",
        "trigwire_commands_total{kind=\"event\"} 2\n",
        "trigwire_commands_total{kind=\"metrics\"} 1\n",
        "trigwire_events_total 1\n",
        "trigwire_firings_total 1\n",
        "trigwire_rejections_total 1\n",
        "trigwire_jobs 1\n",
        "trigwire_callbacks{state=\"fired\"} 1\n",
        "trigwire_callbacks{state=\"waiting\"} 0\n",
        "# TYPE trigwire_memory_bytes gauge\n",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').expect("NAME VALUE");
        assert!(name.starts_with("trigwire_"), "{line}");
        value.parse::<u64>().unwrap_or_else(|_| panic!("a number in {line}"));
    }
    std::fs::remove_dir_all(&dir).ok();
}
