//! Snapshot tests of the lexer, the parser and rendered errors, one `check` helper per
//! behaviour. `UPDATE_EXPECT=1 cargo test --test syntax` re-blesses the snapshots.

use expect_test::{expect, Expect};
use trigwire::syntax::{lex, parse, CustomNames, Expr, ParseLimits};

fn check_tokens(source: &str, expect: Expect) {
    let mut tokens = Vec::new();
    let dump = match lex(source, &mut tokens) {
        Ok(()) => tokens.iter().map(|t| format!("{:?} {:?}\n", t.kind, &source[t.span.range()])).collect(),
        Err(e) => e.to_string(),
    };
    expect.assert_eq(&dump);
}

/// A compact tree: `(and a b)`, `(or ...)`, atoms in canonical form.
fn tree(expr: &Expr) -> String {
    match expr {
        Expr::Atom(a) => a.to_string(),
        Expr::And(xs) => format!("(and {})", xs.iter().map(tree).collect::<Vec<_>>().join(" ")),
        Expr::Or(xs) => format!("(or {})", xs.iter().map(tree).collect::<Vec<_>>().join(" ")),
    }
}

fn check_parse(source: &str, expect: Expect) {
    let limits = ParseLimits::default();
    let custom = CustomNames::default();
    let out = match parse(source, &limits, &custom) {
        Ok(expr) => {
            let printed = expr.to_string();
            let again = parse(&printed, &limits, &custom).expect("canonical form parses");
            assert_eq!(tree(&again), tree(&expr), "print/parse round trip of {source:?}");
            format!("{}\n{printed}\n", tree(&expr))
        }
        Err(e) => e.to_string(),
    };
    expect.assert_eq(&out);
}

#[test]
fn lexes_operators_words_and_atoms() {
    check_tokens(
        "(complete-work-self-Segment: 1-200 and a&b)||x-y",
        expect![[r#"
            Open "("
            Atom "complete-work-self-Segment: 1-200"
            And "and"
            Atom "a&b"
            Close ")"
            Or "||"
            Atom "x-y"
        "#]],
    );
    check_tokens(
        "a AND b Or c &&&d",
        expect![[r#"
            Atom "a"
            And "AND"
            Atom "b"
            Or "Or"
            Atom "c"
            And "&&"
            Atom "&d"
        "#]],
    );
    check_tokens(
        "android-job-orlando",
        expect![[r#"
            Atom "android-job-orlando"
        "#]],
    );
}

#[test]
fn precedence_and_grouping() {
    check_parse(
        "complete-job-a || complete-job-b && complete-job-c",
        expect![[r#"
            (or complete-job-a (and complete-job-b complete-job-c))
            complete-job-a || complete-job-b && complete-job-c
        "#]],
    );
    check_parse(
        "(complete-work-ribgen-5 && complete-work-render-5) || complete-work-composite-5",
        expect![[r#"
            (or (and complete-work-ribgen-5 complete-work-render-5) complete-work-composite-5)
            complete-work-ribgen-5 && complete-work-render-5 || complete-work-composite-5
        "#]],
    );
    check_parse(
        "complete-job-a && (complete-job-b && complete-job-c) && complete-job-d",
        expect![[r#"
            (and complete-job-a (and complete-job-b complete-job-c) complete-job-d)
            complete-job-a && (complete-job-b && complete-job-c) && complete-job-d
        "#]],
    );
    check_parse(
        "((complete-job-a))",
        expect![[r#"
            complete-job-a
            complete-job-a
        "#]],
    );
}

#[test]
fn atoms_of_every_kind() {
    check_parse(
        "COMPLETE-Work-self-Segment: 1-200 and done-subjob-7-02 and failed-host-parent-* \
         and dummy-time-self-1234 and timeout-repeat-lbl-10-5 and globaltime-9 and globalrepeat-0-60",
        expect![[r#"
            (and complete-work-self-Segment: 1-200 done-subjob-7-2 failed-host-parent-* dummy-time-self-1234 timeout-repeat-lbl-10-5 globaltime-9 globalrepeat-0-60)
            complete-work-self-Segment: 1-200 && done-subjob-7-2 && failed-host-parent-* && dummy-time-self-1234 && timeout-repeat-lbl-10-5 && globaltime-9 && globalrepeat-0-60
        "#]],
    );
    check_parse(
        "complete-work-self-1-100",
        expect![[r#"
            complete-work-self-1-100
            complete-work-self-1-100
        "#]],
    );
}

#[test]
fn rendered_errors() {
    check_parse(
        "complete-job-self && (failed-job-self || ",
        expect![[r#"
            error: missing operand; expected an atom or `(`
              |
            1 | complete-job-self && (failed-job-self || 
              |                                          ^
        "#]],
    );
    check_parse(
        "complete-job-self && compelte-job-1",
        expect![[r#"
            error: unknown event name `compelte`; expected one of submit, complete, failed, killed, done, blocked, running, waiting, assigned, removed, modified, timeout, dummy or a registered custom name
              |
            1 | complete-job-self && compelte-job-1
              |                      ^^^^^^^^
        "#]],
    );
    check_parse(
        "complete-subjob-self-99999999999999999999",
        expect![[r#"
            error: bad number `99999999999999999999`; expected decimal digits that fit in u64
              |
            1 | complete-subjob-self-99999999999999999999
              |                      ^^^^^^^^^^^^^^^^^^^^
        "#]],
    );
    check_parse(
        "complete-job-a)\n",
        expect![[r#"
            error: unexpected `)` with no matching `(`
              |
            1 | complete-job-a)
              |               ^
        "#]],
    );
    check_parse(
        "complete-job-a &&\n  submit-jbo-self",
        expect![[r#"
            error: unknown type `jbo`; expected one of job, work, subjob, host, time, repeat
              |
            2 |   submit-jbo-self
              |          ^^^
        "#]],
    );
}

#[test]
fn long_lines_are_clipped_around_the_error() {
    let source =
        format!("{} && bogus-job-self", (0..40).map(|i| format!("complete-job-{i}")).collect::<Vec<_>>().join(" && "));
    check_parse(
        &source,
        expect![[r#"
            error: unknown event name `bogus`; expected one of submit, complete, failed, killed, done, blocked, running, waiting, assigned, removed, modified, timeout, dummy or a registered custom name
              |
            1 | ...&& complete-job-37 && complete-job-38 && complete-job-39 && bogus-job-self
              |                                                                ^^^^^
        "#]],
    );
}

#[test]
fn custom_names_parse_when_registered() {
    let mut custom = CustomNames::default();
    assert!(custom.insert("Approved"));
    assert!(!custom.insert("approved"));
    assert!(!custom.insert("complete"), "built-in names cannot be registered");
    let expr = parse("APPROVED-job-self", &ParseLimits::default(), &custom).expect("registered name parses");
    assert_eq!(expr.to_string(), "approved-job-self");
}

/// Work names that real agendas have (parentheses, the words `and`/`or`, quotes) are
/// written in quotes; the canonical printer quotes exactly when it must, and what it
/// prints parses back to the same tree.
#[test]
fn quoted_work_names_parse_and_print_back() {
    let limits = ParseLimits::default();
    let custom = CustomNames::default();
    for (text, name, canonical) in [
        (
            r#"complete-work-self-"Output: final (v2).mov""#,
            "Output: final (v2).mov",
            r#"complete-work-self-"Output: final (v2).mov""#,
        ),
        (r#"complete-work-ribgen-"black and white""#, "black and white", r#"complete-work-ribgen-"black and white""#),
        (r#"done-work-self-"say \"hi\" \\ bye""#, r#"say "hi" \ bye"#, r#"done-work-self-"say \"hi\" \\ bye""#),
        (r#"complete-work-self-"*""#, "*", r#"complete-work-self-"*""#),
        (r#"complete-work-self-"plain""#, "plain", "complete-work-self-plain"),
    ] {
        let expr = parse(text, &limits, &custom).unwrap_or_else(|e| panic!("{text}: {e}"));
        let Expr::Atom(atom) = &expr else { panic!("one atom") };
        let trigwire::syntax::AtomKind::Event { extra: trigwire::syntax::Extra::Name(n), .. } = &atom.kind else {
            panic!("a named extra in {text}")
        };
        assert_eq!(&**n, name, "{text}");
        assert_eq!(expr.to_string(), canonical, "{text}");
        let again = parse(&expr.to_string(), &limits, &custom).expect("the canonical form parses");
        assert_eq!(again.to_string(), canonical);
    }
    let both = parse(r#"complete-work-a-"x (1)" && complete-work-b-"y or z""#, &limits, &custom).expect("two atoms");
    assert!(matches!(both, Expr::And(ref xs) if xs.len() == 2), "{both:?}");
    for bad in [r#"complete-work-self-"open"#, r#"complete-work-self-"""#, r#"complete-work-self-"a\nb""#] {
        let e = parse(bad, &limits, &custom).expect_err(bad);
        assert_eq!(e.kind(), &trigwire::syntax::ParseErrorKind::BadQuote, "{bad}: {e}");
    }
}
