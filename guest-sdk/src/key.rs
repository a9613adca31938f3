//! Mapping keys: what the host accepts, and a helper that turns any name into one.

/// Replace every character outside `[A-Za-z0-9_]` with `_`, so that any file name becomes a
/// valid mapping key (`"a-b.txt"` → `"a_b_txt"`, `"über.txt"` → `"_ber_txt"`).
///
/// Dagster's docs replace only `.` and `-`; this never produces an invalid key. Two names can
/// clean to the same key; the host then rejects the second as a duplicate.
pub fn clean(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Whether `key` matches `^[A-Za-z0-9_]+$`. The host also rejects Dagster's reserved names;
/// this is only the character check, for ops that want to fail early with their own message.
pub fn is_valid_mapping_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_replaces_everything_outside_the_key_alphabet() {
        assert_eq!(clean("a-b.txt"), "a_b_txt");
        assert_eq!(clean("a b.txt"), "a_b_txt");
        assert_eq!(clean("über.txt"), "_ber_txt");
        assert_eq!(clean("A_9"), "A_9");
        assert!(is_valid_mapping_key(&clean("ö ä-ü.tar.gz")));
        assert!(!is_valid_mapping_key(""));
        assert!(!is_valid_mapping_key("a.b"));
    }
}
