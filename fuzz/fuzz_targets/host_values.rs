//! Fuzz what the host decodes from ops and from step specs: JSON values (the emitted-value check
//! must agree with serde_json and never overflow the stack), mapping keys, metadata values, sizes
//! and durations, and a StepSpec read back from JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandmap::keys::validate_mapping_key;
use sandmap::value::{JsonText, MetadataValue};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let ours = JsonText::parse(text);
    let theirs = serde_json::from_str::<serde_json::Value>(text);
    // The host accepts what serde_json reads, nested at most MAX_VALUE_DEPTH deep.
    let deep = sandmap::value::nests_deeper_than(text, sandmap::value::MAX_VALUE_DEPTH);
    assert_eq!(ours.is_ok(), theirs.is_ok() && !deep, "JsonText and serde_json disagree on {text:?}");
    if let Ok(value) = &ours {
        assert_eq!(value.to_value(), theirs.unwrap_or(serde_json::Value::Null));
    }
    let key_ok = validate_mapping_key(text).is_ok();
    let alphabet = !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    assert!(!key_ok || alphabet, "accepted key outside the alphabet: {text:?}");
    let _ = serde_json::from_str::<MetadataValue>(text);
    let _ = sandmap::units::parse_bytes(text);
    let _ = sandmap::units::parse_duration(text);
    let _ = serde_json::from_str::<sandmap::step::StepSpec>(text);
});
