//! Tests for AMQP topic patterns: hand-picked edge cases, RabbitMQ's own
//! routing table and tutorial, a property test against a naive matcher, and
//! a pathological `#`-heavy pattern.

use hermod_core::pattern::{PatternError, TopicPattern};
use proptest::prelude::*;

fn matches(pattern: &str, key: &str) -> bool {
    TopicPattern::parse(pattern).unwrap().matches(key)
}

#[test]
fn edge_cases() {
    let table: &[(&str, &str, bool)] = &[
        // The empty key is zero words.
        ("", "", true),
        ("#", "", true),
        ("#.#", "", true),
        ("*", "", false),
        ("*.#", "", false),
        ("#.*", "", false),
        ("a", "", false),
        ("", "a", false),
        // Empty words are ordinary words.
        ("*", ".", false),
        ("*.*", ".", true),
        ("a..b", "a..b", true),
        ("a.*.b", "a..b", true),
        ("a.#.b", "a..b", true),
        ("a.b", "a..b", false),
        ("#", ".", true),
        ("a.", "a", false),
        ("a.*", "a.", true),
        (".a", ".a", true),
        ("*.a", ".a", true),
        // `#` matches zero or more words anywhere.
        ("#", "a.b.c", true),
        ("#.#", "a", true),
        ("a.#", "a", true),
        ("a.#", "a.b.c", true),
        ("a.#", "b.a", false),
        ("#.a", "a", true),
        ("#.a", "x.y.a", true),
        ("#.a", "a.x", false),
        ("a.#.b", "a.b", true),
        ("a.#.b", "a.x.y.b", true),
        ("a.#.b", "a.x.y.c", false),
        ("a.#.b", "a.b.b", true),
        ("#.a.#", "x.a.y", true),
        ("#.a.#", "x.b.y", false),
        ("*.#", "a", true),
        ("*.#", "a.b.c", true),
        ("#.*", "a.b", true),
        ("#.*.#", "a", true),
        ("*.*.#", "a", false),
        ("#.*.*", "a.b", true),
        // Key longer or shorter than a pattern without `#`.
        ("a.b", "a.b.c", false),
        ("a.b.c", "a.b", false),
        ("*.*", "a.b.c", false),
        ("*", "a.b", false),
        // Only whole words are wildcards.
        ("a*", "ab", false),
        ("a*", "a*", true),
        ("#a", "a", false),
        ("a#.b", "a#.b", true),
        // Case and bytes matter.
        ("A", "a", false),
        ("é.*", "é.x", true),
    ];
    for &(pattern, key, expected) in table {
        assert_eq!(
            matches(pattern, key),
            expected,
            "pattern {pattern:?}, key {key:?}"
        );
    }
}

/// RabbitMQ's own topic routing test (the bindings t1..t26 and keys of
/// `test_topic_matching` in rabbitmq-server's unit tests): for each key, the
/// set of bindings it must reach.
#[test]
fn rabbitmq_topic_matching_table() {
    let bindings = [
        "a.b.c",
        "a.*.c",
        "a.#.b",
        "a.b.b.c",
        "#",
        "#.#",
        "#.b",
        "*.*",
        "a.*",
        "*.b.c",
        "a.#",
        "a.#.#",
        "b.b.c",
        "a.b.b",
        "a.b",
        "b.c",
        "",
        "*.*.*",
        "vodka.martini",
        "a.b.c",
        "*.#",
        "#.*.#",
        "*.#.#",
        "#.#.#",
        "*",
        "#.b.#",
    ];
    let expected: &[(&str, &[usize])] = &[
        (
            "a.b.c",
            &[1, 2, 5, 6, 10, 11, 12, 18, 20, 21, 22, 23, 24, 26],
        ),
        ("a.b", &[3, 5, 6, 7, 8, 9, 11, 12, 15, 21, 22, 23, 24, 26]),
        ("a.b.b", &[3, 5, 6, 7, 11, 12, 14, 18, 21, 22, 23, 24, 26]),
        ("", &[5, 6, 17, 24]),
        ("b.c.c", &[5, 6, 18, 21, 22, 23, 24, 26]),
        ("a.a.a.a.a", &[5, 6, 11, 12, 21, 22, 23, 24]),
        ("vodka.gin", &[5, 6, 8, 21, 22, 23, 24]),
        ("vodka.martini", &[5, 6, 8, 19, 21, 22, 23, 24]),
        ("b.b.c", &[5, 6, 10, 13, 18, 21, 22, 23, 24, 26]),
        ("nothing.here.at.all", &[5, 6, 21, 22, 23, 24]),
        ("oneword", &[5, 6, 21, 22, 23, 24, 25]),
    ];
    for &(key, want) in expected {
        let got: Vec<usize> = (1..=bindings.len())
            .filter(|&t| matches(bindings[t - 1], key))
            .collect();
        assert_eq!(got, want, "key {key:?}");
    }
}

/// Tutorial 5 of the RabbitMQ tutorials: Q1 binds `*.orange.*`, Q2 binds
/// `*.*.rabbit` and `lazy.#`.
#[test]
fn rabbitmq_tutorial_five() {
    let q1 = ["*.orange.*"];
    let q2 = ["*.*.rabbit", "lazy.#"];
    let to = |bindings: &[&str], key: &str| bindings.iter().any(|p| matches(p, key));
    let table = [
        ("quick.orange.rabbit", true, true),
        ("lazy.orange.elephant", true, true),
        ("quick.orange.fox", true, false),
        ("lazy.brown.fox", false, true),
        ("lazy.pink.rabbit", false, true),
        ("quick.brown.fox", false, false),
        ("orange", false, false),
        ("quick.orange.new.rabbit", false, false),
        ("lazy.orange.new.rabbit", false, true),
    ];
    for (key, want_q1, want_q2) in table {
        assert_eq!(to(&q1, key), want_q1, "Q1, key {key:?}");
        assert_eq!(to(&q2, key), want_q2, "Q2, key {key:?}");
    }
}

#[test]
fn parse_keeps_source_and_limits_length() {
    let p = TopicPattern::parse("a.#.#.*").unwrap();
    assert_eq!(p.as_str(), "a.#.#.*");
    assert!(TopicPattern::parse(&"x".repeat(255)).is_ok());
    let err = TopicPattern::parse(&"x".repeat(256)).unwrap_err();
    assert_eq!(err, PatternError::TooLong { len: 256, max: 255 });
    assert_eq!(
        err.to_string(),
        "topic pattern is 256 bytes long; the limit is 255 bytes"
    );
}

#[test]
fn long_keys_are_matched_without_panic() {
    let key = "k.".repeat(10_000);
    assert!(matches("#", &key));
    assert!(matches("k.#.", &key));
    assert!(!matches("*", &key));
}

#[test]
fn many_hashes_do_not_backtrack() {
    // Exponential in a backtracking matcher; this must simply return.
    let pattern = vec!["#"; 30].join(".");
    let pattern_miss = format!("{pattern}.z");
    let pattern_spread = vec!["#.*"; 30].join(".") + ".z";
    let key = vec!["w"; 200].join(".");
    assert!(matches(&pattern, &key));
    assert!(!matches(&pattern_miss, &key));
    assert!(!matches(&pattern_spread, &key));
}

/// Independent reference: RabbitMQ's split rule plus a direct recursive
/// reading of the definition. Exponential, so only for short inputs.
fn reference(pattern: &str, key: &str) -> bool {
    fn split(s: &str) -> Vec<&str> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split('.').collect()
        }
    }
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|n| go(rest, &k[n..])),
            Some((&"*", rest)) => !k.is_empty() && go(rest, &k[1..]),
            Some((word, rest)) => k.first() == Some(word) && go(rest, &k[1..]),
        }
    }
    go(&split(pattern), &split(key))
}

fn joined(alphabet: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(alphabet), 0..max).prop_map(|w| w.join("."))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn agrees_with_reference(
        pattern in joined(&["a", "b", "", "*", "#", "a*"], 7),
        key in joined(&["a", "b", "", "*"], 8),
    ) {
        prop_assert_eq!(matches(&pattern, &key), reference(&pattern, &key));
    }
}
