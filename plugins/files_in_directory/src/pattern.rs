//! The `pattern` config: a glob on a file's name.
//!
//! Hand-written rather than `globset`: that crate brings a regex engine that made this op's
//! component 3.6× larger (0.36 → 1.3 MB) and the first, uncached run of the example job twice as
//! long (0.6 → 1.2 s of Cranelift), for a language this small. The Python and JavaScript builds
//! (`plugins/python/files_in_directory/pattern.py`, `plugins/js/files_in_directory/pattern.js`)
//! implement the same subset the same way, and `tests/pattern_subset.rs` checks this matcher
//! against `globset` itself on generated patterns and names, so the subset means what globset
//! would make of it. Every pattern first passes [`check`], which refuses anything outside the
//! subset with the same message in every language. Keep the three in step.
//!
//! The subset, matched against the UTF-8 bytes of the whole name:
//! - `*` any run of bytes (also none, also a leading `.`); `**` is the same as `*`;
//! - `?` exactly one byte (a non-ASCII character is 2 to 4 bytes);
//! - `[abc]`, `[a-z]` one byte out of a set of ASCII characters; `[!abc]` or `[^abc]` one byte not
//!   in it. A `]` first in the set and a `-` first or last are literal;
//! - `{a,b}` either alternative (not nested, none empty);
//! - `\` makes the next character literal; anything else is itself, case-sensitive.

/// Patterns longer than this (in UTF-8 bytes) are refused: it bounds the matching work (and is
/// spelled out in the error below).
const MAX_LEN: usize = 1024;

/// One piece of a pattern.
#[derive(Debug, Clone)]
enum Token {
    /// `*`: any run of bytes.
    Star,
    /// `?`: one byte.
    Any,
    /// A literal byte.
    Byte(u8),
    /// `[...]`: one byte in (or, negated, not in) these inclusive ranges.
    Class { negated: bool, ranges: Vec<(u8, u8)> },
    /// `{a,b}`: any one of the alternatives.
    Group(Vec<Vec<Token>>),
}

/// A compiled `pattern`.
pub struct Pattern(Vec<Token>);

impl Pattern {
    /// Check and compile `pattern`; the error is the op's failure message.
    pub fn new(pattern: &str) -> Result<Self, String> {
        check(pattern).map_err(|reason| format!("invalid pattern \"{pattern}\": {reason}"))?;
        Ok(Self(parse(pattern)))
    }

    /// Whether a file name matches.
    pub fn is_match(&self, name: &str) -> bool {
        let data = name.as_bytes();
        let mut start = vec![false; data.len() + 1];
        start[0] = true;
        advance(&self.0, start, data)[data.len()]
    }
}

/// The tokens of a pattern [`check`] accepted.
fn parse(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let literal = |out: &mut Vec<Token>, c: char| {
        let mut buf = [0u8; 4];
        out.extend(c.encode_utf8(&mut buf).bytes().map(Token::Byte));
    };
    let mut top: Vec<Token> = Vec::new();
    // Inside `{...}`: the alternatives so far, the last one being filled.
    let mut group: Option<Vec<Vec<Token>>> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        // Group structure first: it changes where the tokens that follow go.
        match (c, group.take()) {
            ('{', _) => {
                group = Some(vec![Vec::new()]);
                continue;
            }
            (',', Some(mut alternatives)) => {
                alternatives.push(Vec::new());
                group = Some(alternatives);
                continue;
            }
            ('}', Some(alternatives)) => {
                top.push(Token::Group(alternatives));
                continue;
            }
            (_, open) => group = open,
        }
        let current = match group.as_mut().and_then(|g| g.last_mut()) {
            Some(alternative) => alternative,
            None => &mut top,
        };
        match c {
            '[' => {
                let (after, token) = parse_class(&chars, i);
                i = after;
                current.push(token);
            }
            '\\' => {
                if let Some(&next) = chars.get(i) {
                    literal(current, next);
                }
                i += 1;
            }
            '*' => current.push(Token::Star),
            '?' => current.push(Token::Any),
            other => literal(current, other),
        }
    }
    top
}

/// The class that starts after the `[` at `chars[i - 1]` ([`check_class`] accepted it): the index
/// after its `]`, and the token.
fn parse_class(chars: &[char], mut i: usize) -> (usize, Token) {
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c == ']' && !first {
            break;
        }
        first = false;
        // ASCII only (checked), so each is one byte.
        let low = c as u32 as u8;
        let mut high = low;
        if let (Some('-'), Some(&d)) = (chars.get(i), chars.get(i + 1))
            && d != ']'
        {
            high = d as u32 as u8;
            i += 2;
        }
        ranges.push((low, high));
    }
    (i, Token::Class { negated, ranges })
}

/// The positions in `data` where `tokens` can end, from the positions marked in `at`: a set
/// simulation, so no pattern takes more than (pattern length × name length) steps.
fn advance(tokens: &[Token], mut at: Vec<bool>, data: &[u8]) -> Vec<bool> {
    let n = data.len();
    for token in tokens {
        let mut next = vec![false; n + 1];
        match token {
            Token::Star => {
                if let Some(first) = at.iter().position(|&b| b) {
                    next[first..].iter_mut().for_each(|b| *b = true);
                }
            }
            Token::Any | Token::Byte(_) | Token::Class { .. } => {
                for p in (0..n).filter(|&p| at[p]) {
                    let byte = data[p];
                    next[p + 1] = match token {
                        Token::Byte(b) => byte == *b,
                        Token::Class { negated, ranges } => {
                            ranges.iter().any(|&(lo, hi)| lo <= byte && byte <= hi) != *negated
                        }
                        _ => true,
                    };
                }
            }
            Token::Group(alternatives) => {
                for alternative in alternatives {
                    let ends = advance(alternative, at.clone(), data);
                    next.iter_mut().zip(ends).for_each(|(b, e)| *b |= e);
                }
            }
        }
        if !next.iter().any(|&b| b) {
            return next;
        }
        at = next;
    }
    at
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
