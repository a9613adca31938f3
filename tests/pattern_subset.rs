//! The hand-written glob matcher of `files_in_directory` (`plugins/files_in_directory/src/
//! pattern.rs`, mirrored in the Python and JavaScript builds) against `globset` itself: on every
//! pattern of the subset it accepts, and every name, both say the same. Refused patterns are
//! checked for their texts in `tests/conformance.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

#[path = "../plugins/files_in_directory/src/pattern.rs"]
mod pattern;

use proptest::prelude::*;

/// Patterns from the subset's alphabet (some are refused: those are skipped).
fn arb_pattern() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-c.]".prop_map(String::from),
        2 => Just("*".to_owned()),
        2 => Just("?".to_owned()),
        1 => Just("**".to_owned()),
        2 => "\\[[!^]?[a-c.\\-\\]]{1,3}\\]".prop_map(String::from),
        1 => Just("[a-c]".to_owned()),
        1 => "\\{[a-c*]{1,2},[a-c?]{1,2}\\}".prop_map(String::from),
        1 => "\\\\[*?\\[{a]".prop_map(String::from),
        1 => Just("ü".to_owned()),
    ];
    prop::collection::vec(piece, 1..6).prop_map(|pieces| pieces.concat())
}

fn arb_name() -> impl Strategy<Value = String> {
    "[a-c.\\-\\]\\[*?{}ü]{0,7}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn the_matcher_agrees_with_globset_on_the_subset(pattern in arb_pattern(), names in prop::collection::vec(arb_name(), 1..12)) {
        let Ok(ours) = pattern::Pattern::new(&pattern) else { return Ok(()) };
        let theirs = globset::Glob::new(&pattern).unwrap().compile_matcher();
        for name in names {
            prop_assert_eq!(ours.is_match(&name), theirs.is_match(&name), "pattern {:?} name {:?}", pattern, name);
        }
    }
}

#[test]
fn known_cases() {
    let matches = |p: &str, n: &str| pattern::Pattern::new(p).unwrap().is_match(n);
    assert!(matches("*.csv", "a.csv") && matches("*.csv", ".csv") && !matches("*.csv", "a.csvx"));
    assert!(matches("?.txt", "a.txt") && !matches("?.txt", "ü.txt") && matches("??.txt", "ü.txt"));
    assert!(matches("[!a]*", "b") && !matches("[!a]*", "a") && matches("[]a]", "]") && matches("[a-]", "-"));
    assert!(matches("{a,b}c", "bc") && !matches("{a,b}c", "cc") && matches("\\*", "*") && !matches("\\*", "a"));
    assert!(pattern::Pattern::new("a/b").is_err() && pattern::Pattern::new("").is_err());
}

/// The comparison above is not vacuous: most generated patterns are accepted, and they both
/// match and miss generated names.
#[test]
fn generated_patterns_are_mostly_accepted_and_both_match_and_miss() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut accepted, mut hits, mut misses) = (0, 0, 0);
    for _ in 0..2000 {
        let pattern = arb_pattern().new_tree(&mut runner).unwrap().current();
        let name = arb_name().new_tree(&mut runner).unwrap().current();
        if let Ok(ours) = pattern::Pattern::new(&pattern) {
            accepted += 1;
            if ours.is_match(&name) { hits += 1 } else { misses += 1 }
        }
    }
    assert!(accepted >= 1000 && hits >= 50 && misses >= 500, "{accepted} accepted, {hits} hits, {misses} misses");
}
