//! The `pattern` config: a glob on a file's name, matched with `globset`.
//!
//! The Python and JavaScript builds of this op have no globset, so they carry a small matcher of
//! their own (`plugins/python/files_in_directory/pattern.py`, `plugins/js/files_in_directory/
//! pattern.js`). For the three to agree exactly, every pattern first passes [`check`], which
//! accepts only a subset of globset's syntax on which a hand-written matcher and globset agree,
//! and refuses the rest with the same message in every language. Keep the three in step.
//!
//! The subset, matched against the UTF-8 bytes of the whole name (globset matches bytes):
//! - `*` any run of bytes (also none, also a leading `.`); `**` is the same as `*`;
//! - `?` exactly one byte (a non-ASCII character is 2 to 4 bytes);
//! - `[abc]`, `[a-z]` one byte out of a set of ASCII characters; `[!abc]` or `[^abc]` one byte not
//!   in it. A `]` first in the set and a `-` first or last are literal;
//! - `{a,b}` either alternative (not nested, none empty);
//! - `\` makes the next character literal; anything else is itself, case-sensitive.

/// Patterns longer than this (in UTF-8 bytes) are refused: it bounds the matching work (and is
/// spelled out in the error below).
const MAX_LEN: usize = 1024;

/// A compiled `pattern`.
pub struct Pattern(globset::GlobMatcher);

impl Pattern {
    /// Check and compile `pattern`; the error is the op's failure message.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let invalid = |reason: &str| format!("invalid pattern \"{pattern}\": {reason}");
        check(pattern).map_err(invalid)?;
        // Defaults: `*` and `?` also match `/` (moot: a name has none), `\` escapes, case matters.
        let glob = globset::Glob::new(pattern).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self(glob.compile_matcher()))
    }

    /// Whether a file name matches.
    pub fn is_match(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

/// Refuse what is outside the supported subset, with the reason. The checks run in one order
/// (empty, length, `/`, then left to right), so every language reports the same first problem.
fn check(pattern: &str) -> Result<(), &'static str> {
    if pattern.is_empty() {
        return Err("it is empty");
    }
    if pattern.len() > MAX_LEN {
        return Err("it is longer than 1024 bytes");
    }
    if pattern.contains('/') {
        return Err("it is matched against a file name, which never contains \"/\"");
    }
    let chars: Vec<char> = pattern.chars().collect();
    // Inside `{...}`: whether the current alternative has anything in it yet.
    let mut group: Option<bool> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '[' => i = check_class(&chars, i)?,
            '{' if group.is_some() => return Err("\"{...}\" groups cannot be nested"),
            '{' => {
                group = Some(false);
                continue;
            }
            ',' if group == Some(false) => return Err("a \"{...}\" group has an empty alternative"),
            ',' if group.is_some() => {
                group = Some(false);
                continue;
            }
            '}' if group.is_none() => return Err("\"}\" has no \"{\" before it"),
            '}' if group == Some(false) => return Err("a \"{...}\" group has an empty alternative"),
            '}' => {
                group = None;
                continue;
            }
            '\\' if i == chars.len() => return Err("it ends with a lone \"\\\""),
            '\\' => i += 1,
            _ => {}
        }
        if group.is_some() {
            group = Some(true);
        }
    }
    if group.is_some() {
        return Err("a \"{\" is never closed with \"}\"");
    }
    Ok(())
}

/// Check the class that starts after the `[` at `chars[i - 1]`; return the index after its `]`.
fn check_class(chars: &[char], mut i: usize) -> Result<usize, &'static str> {
    if matches!(chars.get(i), Some('!' | '^')) {
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("a \"[\" is never closed with \"]\"");
        };
        i += 1;
        if c == ']' && !first {
            return Ok(i);
        }
        first = false;
        check_class_char(c, chars.get(i))?;
        // `c-d` is a range unless the `-` is last (then it is literal).
        if let (Some('-'), Some(&d)) = (chars.get(i), chars.get(i + 1))
            && d != ']'
        {
            i += 2;
            check_class_char(d, chars.get(i))?;
            if d < c {
                return Err("a \"[...]\" range ends before it starts");
            }
            // globset would stretch the range to a second end (`[a-c-e]` is `[a-e]`): refused.
            if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&e| e != ']') {
                return Err("a \"[...]\" range is followed by \"-\" (put a literal \"-\" last)");
            }
        }
    }
}

/// Check a character of a class, `next` the one after it.
fn check_class_char(c: char, next: Option<&char>) -> Result<(), &'static str> {
    if !c.is_ascii() {
        // globset's classes match single bytes, so `[ü]` would match a part of `ü`.
        Err("a \"[...]\" class may hold only ASCII characters")
    } else if c == '\\' {
        // globset takes `\` literally there, where a shell would escape: refused, never guessed.
        Err("a \"[...]\" class cannot hold \"\\\"")
    } else if c == '[' && next == Some(&':') {
        Err("POSIX classes such as \"[:alpha:]\" are not supported")
    } else {
        Ok(())
    }
}
