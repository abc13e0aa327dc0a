//! The timeline page in a real headless browser: `trigwire demo --timeline` and
//! `trigwire run LOG --timeline` on a 50,000-item farm write pages that load without
//! errors, name their jobs in the DOM, and draw something.
//!
//! The browser is Debian's `chromium` (or `$TRIGWIRE_CHROMIUM`); `.ci/setup.sh`
//! installs it. Without one the tests say so and pass, except under CI (`CI` set), where
//! a missing browser fails them.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The standard output of `trigwire ARGS`, which must succeed.
fn trigwire(args: &[&str]) -> String {
    let out = common::trigwire(args, "");
    assert!(out.status.success(), "trigwire {args:?} failed: {}", common::text(&out.stderr));
    common::text(&out.stdout)
}

/// The browser to run, or `None` (after saying why) when there is none and this is not CI.
fn chromium() -> Option<String> {
    let candidates = match std::env::var("TRIGWIRE_CHROMIUM") {
        Ok(path) => vec![path],
        Err(_) => vec!["chromium".to_string(), "chromium-browser".to_string()],
    };
    for c in candidates {
        if Command::new(&c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(c);
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(!ci, "CI is set but no chromium was found: install it (.ci/setup.sh does) or set TRIGWIRE_CHROMIUM");
    eprintln!("skipped: no chromium on PATH (apt-get install chromium, or set TRIGWIRE_CHROMIUM); CI requires it");
    None
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("timeline").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// What the browser made of a page: its DOM after the scripts ran, its console
/// messages, and a screenshot.
struct Loaded {
    dom: String,
    console: Vec<String>,
    png: PathBuf,
}

fn load(browser: &str, page: &Path, dir: &Path) -> Loaded {
    let url = format!("file://{}", page.display());
    let run = |what: &str, extra: &[String]| {
        // A profile of its own: parallel tests must not share one.
        let profile = dir.join(format!("profile-{what}"));
        let mut args = vec![
            "--headless".to_string(),
            "--disable-gpu".into(),
            "--no-sandbox".into(),
            "--enable-logging=stderr".into(),
            "--v=0".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend_from_slice(extra);
        args.push(url.clone());
        let out = Command::new(browser).args(&args).output().expect("chromium runs");
        assert!(out.status.success(), "chromium {what} failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let png = dir.join("shot.png");
    let (dumped, shot) = std::thread::scope(|s| {
        let shot = s.spawn(|| run("shot", &[format!("--screenshot={}", png.display())]));
        (run("dom", &["--dump-dom".to_string()]), shot.join().expect("screenshot thread"))
    });
    let console = [&dumped, &shot]
        .iter()
        .flat_map(|o| String::from_utf8_lossy(&o.stderr).lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    Loaded { dom: String::from_utf8_lossy(&dumped.stdout).into_owned(), console, png }
}

/// The screenshot's pixels as RGB triples.
fn pixels(png: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(png).expect("the screenshot exists"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("one frame");
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let px = buf[..info.buffer_size()].chunks_exact(step).map(|p| [p[0], p[1], p[2]]).collect();
    (info.width, info.height, px)
}

fn count(px: &[[u8; 3]], hex: u32) -> usize {
    let rgb = [(hex >> 16) as u8, (hex >> 8) as u8, hex as u8];
    px.iter().filter(|&&p| p == rgb).count()
}

/// The checks every page passes: it ran to the end without an error, the console is
/// quiet, and the screenshot is a picture, with lanes in the given state colours.
fn assert_drawn(loaded: &Loaded, colours: &[(&str, u32)]) {
    assert!(loaded.console.is_empty(), "console messages: {:?}", loaded.console);
    assert!(loaded.dom.contains("data-errors=\"0\""), "the page reported errors: {}", errors_of(&loaded.dom));
    assert!(loaded.dom.contains("data-ready=\"1\""), "the page's script did not finish");
    let (w, h, px) = pixels(&loaded.png);
    assert_eq!((w, h), (1280, 900));
    let distinct: HashSet<[u8; 3]> = px.iter().copied().collect();
    assert!(distinct.len() > 20, "a blank screenshot: {} colours", distinct.len());
    let background = px.iter().filter(|&&p| p == [255, 255, 255] || p == [0xf5, 0xf5, 0xf5]).count();
    assert!(background < px.len() * 9 / 10, "mostly background: {background} of {}", px.len());
    for &(state, hex) in colours {
        assert!(count(&px, hex) > 2000, "too little {state} (#{hex:06x}) in the lanes: {}", count(&px, hex));
    }
}

fn errors_of(dom: &str) -> &str {
    let at = dom.find("id=\"errors\"").unwrap_or(0);
    &dom[at..(at + 400).min(dom.len())]
}

#[test]
fn the_demo_page_draws_its_jobs_firings_and_graph() {
    let Some(browser) = chromium() else { return };
    let dir = scratch("demo");
    let page = dir.join("demo.html");
    let text = trigwire(&["demo", "--timeline", page.to_str().expect("utf-8 path")]);
    assert!(text.contains("render frame 1 released, fired because complete-work-ribgen-1"), "{text}");
    let loaded = load(&browser, &page, &dir);
    assert_drawn(&loaded, &[("blocked", 0xffb300), ("running", 0x42a5f5), ("complete", 0x43a047)]);
    for job in ["ribgen", "render", "composite", "preview", "dailies", "archive"] {
        assert!(loaded.dom.contains(&format!(">{job}</text>")), "no graph node for {job}");
    }
    // Each firing with the event that completed it, in the table.
    for cause in
        ["complete-work-ribgen-1", "complete-work-composite-4", "complete-job-composite", "the clock reached 20"]
    {
        assert!(loaded.dom.contains(&format!("<td>{cause}</td>")), "no firing because {cause}");
    }
    // The dependency graph: 7 edges, one per (upstream, downstream) pair.
    assert!(loaded.dom.contains("7 edges"), "{}", errors_of(&loaded.dom));
}

#[test]
fn a_page_that_fails_says_so() {
    let Some(browser) = chromium() else { return };
    let dir = scratch("broken");
    let good = dir.join("good.html");
    trigwire(&["demo", "--timeline", good.to_str().expect("utf-8 path")]);
    let html = std::fs::read_to_string(&good).expect("the page");
    let start = html.find("<script type=\"application/json\" id=\"timeline-data\">").expect("the data element");
    let end = start + html[start..].find("</script>").expect("its end");
    let broken = format!(
        "{}<script type=\"application/json\" id=\"timeline-data\">{{\"jobs\": 5}}{}",
        &html[..start],
        &html[end..]
    );
    let page = dir.join("broken.html");
    std::fs::write(&page, broken).expect("write");
    let loaded = load(&browser, &page, &dir);
    assert!(loaded.dom.contains("data-errors=\"1\""), "the error was not counted");
    assert!(!loaded.dom.contains("data-ready=\"1\""), "a failed page claims to be ready");
}

#[test]
fn a_50000_item_farm_stays_usable() {
    let Some(browser) = chromium() else { return };
    let dir = scratch("farm");
    let log = dir.join("farm.log");
    let page = dir.join("farm.html");
    trigwire(&["bench", "--jobs", "500", "--frames", "100", "--write-log", log.to_str().expect("utf-8 path")]);
    trigwire(&["run", log.to_str().expect("utf-8 path"), "--timeline", page.to_str().expect("utf-8 path")]);
    let loaded = load(&browser, &page, &dir);
    assert_drawn(&loaded, &[("blocked", 0xffb300), ("complete", 0x43a047)]);
    assert!(loaded.dom.contains("500 jobs, 50000 work items, 50000 firings"), "{}", errors_of(&loaded.dom));
    assert!(loaded.dom.contains("jobs are folded"), "50,000 items start folded, one lane per job");
    for job in ["j1", "j250", "j500"] {
        assert!(loaded.dom.contains(&format!(">{job}</text>")), "no graph node for {job}");
    }
    // The table shows the first firings, not all 50,000.
    assert!(loaded.dom.contains("the first 500 of 50000"));
    assert_eq!(loaded.dom.matches("<tr>").count(), 501);
}
