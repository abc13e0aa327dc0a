//! The Qube adapters: the `dependency` attribute, `callbacks.conf` and action codes.

use trigwire::qube::{load_callbacks_conf, parse_callbacks_conf, parse_dependency, CodeLevel, LinkKind};
use trigwire::syntax::{Context, EventName};
use trigwire::{CallbackSpec, Engine, Event, JobSpec, Language};

#[test]
fn dependency_items() {
    let links =
        parse_dependency(" 12 , link-done-job-render,failed-subjob-7 ,info-{\"a\": [1, 2]}, LINK-Killed-Work-comp")
            .unwrap();
    let got: Vec<(EventName, LinkKind, Context)> = links.into_iter().map(|l| (l.state, l.kind, l.target)).collect();
    assert_eq!(
        got,
        vec![
            (EventName::Complete, LinkKind::Job, Context::Id(12)),
            (EventName::Done, LinkKind::Job, Context::Label("render".into())),
            (EventName::Failed, LinkKind::Subjob, Context::Id(7)),
            (EventName::Killed, LinkKind::Work, Context::Label("comp".into())),
        ]
    );
}

#[test]
fn dependency_errors_name_the_item() {
    for (text, item, span) in [
        ("12, link-running-job-3", "link-running-job-3", (4, 22)),
        ("link-complete-host-a", "link-complete-host-a", (0, 20)),
        ("1,,2", "", (2, 2)),
        ("link-complete-job-a b", "link-complete-job-a b", (0, 21)),
        ("99999999999999999999", "99999999999999999999", (0, 20)),
        ("info-[a,b", "info-[a,b", (0, 9)),
        ("a}", "a}", (0, 2)),
    ] {
        let e = parse_dependency(text).unwrap_err();
        assert_eq!(e.item, item, "{text}");
        assert_eq!((e.span.start, e.span.end), span, "{text}");
        assert!(
            e.to_string().contains("expected")
                || e.to_string().contains("unclosed")
                || e.to_string().contains("unmatched"),
            "{e}"
        );
    }
}

#[test]
fn callbacks_conf_lines() {
    let (entries, errors) = parse_callbacks_conf(
        "# site\n\nnotify.py = failed-job-self # mail the wrangler\n  retry.QCB=timeout-work-self-*\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[0].file.as_str(), entries[0].language, entries[0].trigger.as_str(), entries[0].line),
        ("notify.py", Language::Python, "failed-job-self", 3)
    );
    assert_eq!(
        (entries[1].language, entries[1].trigger.as_str(), entries[1].line),
        (Language::Qube, "timeout-work-self-*", 4)
    );
    for (text, line, needle) in [
        ("a.py failed-job-self", 1, "missing `=`"),
        ("\n = failed-job-self", 2, "missing file name"),
        ("a.py = ", 1, "missing trigger"),
        ("a.sh = failed-job-self", 1, "unknown extension"),
    ] {
        let (entries, errors) = parse_callbacks_conf(&format!("{text}\nok.pl = complete-job-self"));
        assert_eq!(errors.len(), 1, "{text}");
        assert_eq!(errors[0].line, line, "{text}");
        assert!(errors[0].message.contains(needle), "{}", errors[0]);
        assert_eq!(entries.len(), 1, "the good line after the bad one is still read: {text}");
    }
}

#[test]
fn universal_callbacks_attach_to_every_job_after_its_own() {
    let dir = std::env::temp_dir().join(format!("trigwire-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("callbacks.conf"), "retry.qcb = timeout-work-self-*\nwatch.py = failed-job-parent\n")
        .unwrap();
    std::fs::write(dir.join("retry.qcb"), "  retry-work-self\n").unwrap();
    std::fs::write(dir.join("watch.py"), "print('parent failed')\n").unwrap();
    let (loaded, errors) = load_callbacks_conf(dir.join("callbacks.conf").to_str().unwrap());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(loaded[0].spec.code, "retry-work-self");
    assert_eq!(loaded[1].spec.code, "print('parent failed')\n");
    assert_eq!((loaded[1].path.clone(), loaded[1].line), (dir.join("callbacks.conf"), 2));
    let mut engine = Engine::default();
    for u in &loaded {
        engine.add_universal(&u.spec).unwrap();
    }
    let mut firings = Vec::new();
    let own = CallbackSpec::qube("complete-job-self", "mail-status");
    let parent = JobSpec::default();
    let child = JobSpec { pid: Some(1), agenda: vec!["1".into()], callbacks: vec![own], ..JobSpec::default() };
    engine.submit(&[parent, child], &mut firings).unwrap();
    engine.process(&Event::work(EventName::Timeout, 2, "1"), &mut firings).unwrap();
    engine.process(&Event::job(EventName::Failed, 1), &mut firings).unwrap();
    let got: Vec<(Option<u64>, u32, String)> =
        firings.iter().map(|f| (f.owner, f.index, f.action.code.to_string())).collect();
    assert_eq!(
        got,
        vec![(Some(2), 1, "retry-work-self".to_string()), (Some(2), 2, "print('parent failed')\n".to_string())],
        "the child's own callback is index 0 and the universal ones follow"
    );
    std::fs::write(dir.join("callbacks.conf"), "missing.qcb = complete-job-self\n").unwrap();
    let (loaded, errors) = load_callbacks_conf(dir.join("callbacks.conf").to_str().unwrap());
    assert!(loaded.is_empty());
    assert_eq!(errors[0].line, 1);
    assert!(errors[0].to_string().contains("callbacks.conf:1: cannot read"), "{}", errors[0]);
    std::fs::remove_dir_all(&dir).ok();
}

/// Qube's setting is a comma-separated list; a folder stands for its `.conf` files, in
/// name order; a bad line or a missing file is reported with its file and skipped.
#[test]
fn several_conf_files_and_folders_load_in_order() {
    let dir = std::env::temp_dir().join(format!("trigwire-confs-{}", std::process::id()));
    let site = dir.join("site.d");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(dir.join("main.conf"), "a.qcb = complete-job-self\n").unwrap();
    std::fs::write(dir.join("a.qcb"), "mail-status").unwrap();
    std::fs::write(site.join("20-second.CONF"), "b.Py = failed-job-self\nthis line is broken\n").unwrap();
    std::fs::write(site.join("10-first.conf"), "c.pl = killed-job-self\n").unwrap();
    std::fs::write(site.join("notes.txt"), "not a conf file").unwrap();
    std::fs::write(site.join("b.Py"), "print()").unwrap();
    std::fs::write(site.join("c.pl"), "print;").unwrap();
    let list = format!("{}, {} ,{}", dir.join("main.conf").display(), site.display(), dir.join("gone.conf").display());
    let (loaded, errors) = load_callbacks_conf(&list);
    let codes: Vec<&str> = loaded.iter().map(|u| u.spec.code.as_str()).collect();
    assert_eq!(codes, ["mail-status", "print;", "print()"]);
    assert_eq!(loaded[2].spec.language, Language::Python, "extensions ignore case");
    let said: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{said:?}");
    assert!(
        said[0].ends_with("20-second.CONF:2: missing `=`; expected `filename = trigger`, got `this line is broken`"),
        "{said:?}"
    );
    assert!(said[1].contains("gone.conf: cannot read it"), "{said:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_code_of_the_spec_has_a_level() {
    let job = [
        "unblock-self",
        "block-self",
        "fail-self",
        "kill-self",
        "migrate-self",
        "preempt-self",
        "interrupt-self",
        "suspend-self",
        "resume-self",
    ];
    let work = [
        "block-work-self",
        "kill-work-self",
        "unblock-work-self",
        "retry-work-self",
        "requeue-work-self",
        "complete-work-self",
        "fail-work-self",
    ];
    let mail = ["mail-status", "mail-license-status", "mail-report-status"];
    assert!(job.iter().all(|c| CodeLevel::of(c) == Some(CodeLevel::Job)));
    assert!(work.iter().all(|c| CodeLevel::of(c) == Some(CodeLevel::Work)));
    assert!(mail.iter().all(|c| CodeLevel::of(c) == Some(CodeLevel::Mail)));
    assert_eq!(CodeLevel::of("unblock-subjob-self-single"), Some(CodeLevel::Subjob));
    assert_eq!(CodeLevel::of("mail-subjob-status"), Some(CodeLevel::Subjob));
    assert_eq!(CodeLevel::of("Unblock-Self"), None, "codes compare exactly");
}
