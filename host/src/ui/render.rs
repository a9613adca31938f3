//! What an op wrote, made safe to show: terminal escapes stripped, links only to http(s) with
//! `rel=noopener`, Markdown with raw HTML shown as text. maud escapes everything else.

use std::borrow::Cow;

use maud::{Markup, PreEscaped, html};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::value::{Metadata, MetadataValue};

/// Characters that reorder or hide text (bidirectional overrides and isolates, zero-width
/// ones): an op could make a key or an error read as something it is not.
fn spoofs(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn dropped(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || spoofs(c)
}

/// `text` without terminal escape sequences (CSI, OSC, and the rest), other control characters
/// but newline and tab, or characters that reorder text. Hand-written: a dozen lines, and it
/// must also drop C1, bare controls and bidi overrides, which an escape-sequence stripper keeps.
pub(crate) fn strip_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(dropped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                // Character-set designations take one more character (`ESC ( B`).
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                _ => {}
            },
            c if dropped(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `url` may be a link: http or https only (`javascript:`, `data:`, `file:` are text).
pub(crate) fn linkable(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// A link if `url` may be one, else the text.
pub(crate) fn link(url: &str) -> Markup {
    let url = strip_terminal(url);
    if linkable(&url) {
        html! { a href=(url) rel="noopener noreferrer" target="_blank" { (url) } }
    } else {
        html! { code { (url) } }
    }
}

/// Markdown as HTML, with raw HTML shown as text, images as their text, and links only to
/// http(s) (with `rel=noopener`).
pub(crate) fn markdown(text: &str) -> Markup {
    let text = strip_terminal(text);
    let mut in_bad_link = false;
    let events = Parser::new_ext(&text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).filter_map(|event| {
        Some(match event {
            // Raw HTML is what the op wrote: shown, never parsed.
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => return None,
            Event::Start(Tag::Link { dest_url, .. }) => {
                if linkable(&dest_url) {
                    // The writer's own anchors lack `rel`: this one is built here, escaped.
                    let anchor = html! { a href=(dest_url.as_ref()) rel="noopener noreferrer" target="_blank" {} };
                    let open = anchor.into_string().trim_end_matches("</a>").to_owned();
                    Event::InlineHtml(open.into())
                } else {
                    in_bad_link = true;
                    return None;
                }
            }
            Event::End(TagEnd::Link) => {
                if std::mem::take(&mut in_bad_link) {
                    return None;
                }
                Event::InlineHtml("</a>".into())
            }
            other => other,
        })
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    PreEscaped(out)
}

/// One metadata value, shown by its type.
pub(crate) fn metadata_value(value: &MetadataValue) -> Markup {
    match value {
        MetadataValue::Url(url) => link(url),
        MetadataValue::Path(path) => html! { code.path { (strip_terminal(path)) } },
        MetadataValue::Markdown(text) => html! { div.markdown { (markdown(text)) } },
        MetadataValue::Json(json) => html! { pre.json { (strip_terminal(&pretty(json))) } },
        MetadataValue::Text(text) => html! { span { (strip_terminal(text)) } },
        other => html! { span { (other.to_string()) } },
    }
}

/// A table of metadata entries, with each entry's type.
pub(crate) fn metadata(entries: &Metadata) -> Markup {
    html! {
        @if !entries.is_empty() {
            table.metadata {
                @for (key, value) in entries {
                    tr { th { (strip_terminal(key)) } td.kind { (kind(value)) } td { (metadata_value(value)) } }
                }
            }
        }
    }
}

fn kind(value: &MetadataValue) -> &'static str {
    match value {
        MetadataValue::Text(_) => "text",
        MetadataValue::Int(_) => "int",
        MetadataValue::Float(_) => "float",
        MetadataValue::Bool(_) => "bool",
        MetadataValue::Json(_) => "json",
        MetadataValue::Url(_) => "url",
        MetadataValue::Path(_) => "path",
        MetadataValue::Markdown(_) => "md",
    }
}

/// A JSON value, indented.
pub(crate) fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Unix milliseconds as RFC 3339 in UTC, to the millisecond.
pub(crate) fn time(ms: i64) -> String {
    // RFC 3339 ends at year 9999 (a later time could only come from an edited store).
    let Ok(ms) = u64::try_from(ms) else { return "-".into() };
    if ms >= 253_402_300_800_000 {
        return "-".into();
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}

/// Milliseconds as a short duration: `850 ms`, `12.3 s`, `4 min 5 s`.
pub(crate) fn duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        "-".into()
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let s = (ms / 1000.0).round() as u64;
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// A path segment percent-encoded (a step key has brackets; a key may hold anything valid).
pub(crate) fn segment(text: &str) -> String {
    // RFC 3986's unreserved characters stay as they are.
    const ENCODED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, ENCODED).to_string()
}

/// A query string from pairs, each value percent-encoded; empty values left out.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", segment(v))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_controls_are_stripped() {
        assert_eq!(strip_terminal("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(strip_terminal("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(strip_terminal("\u{1b}]0;title\u{7}after"), "after");
        assert_eq!(strip_terminal("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\"), "link");
        assert_eq!(strip_terminal("a\u{0}b\u{8}c\u{9b}d\rline"), "abcdline");
        assert_eq!(strip_terminal("\u{1b}(Bplain \u{202E}txt.exe\u{200B}"), "plain txt.exe");
    }

    #[test]
    fn only_http_links_are_links() {
        for bad in
            ["javascript:alert(1)", "JaVaScRiPt:x", " javascript:x", "data:text/html,x", "file:///etc", "http://x y"]
        {
            assert!(!linkable(bad), "{bad}");
            assert!(!link(bad).into_string().contains("<a"), "{bad}");
        }
        let good = link("https://example.com/?a=1&b=\"2\"").into_string();
        assert!(good.contains(r#"href="https://example.com/?a=1&amp;b=&quot;2&quot;""#), "{good}");
        assert!(good.contains(r#"rel="noopener noreferrer""#));
    }

    #[test]
    fn markdown_shows_raw_html_as_text_and_keeps_only_http_links() {
        let out = markdown("# T\n\n<img src=x onerror=alert(1)> [a](javascript:alert(1)) [b](https://e.com) ![i](https://e.com/i.png)\n\n<script>x()</script>").into_string();
        assert!(!out.contains("<img"), "{out}");
        assert!(!out.contains("<script"), "{out}");
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(out.contains(r#"<a href="https://e.com" rel="noopener noreferrer" target="_blank">b</a>"#), "{out}");
        assert!(out.contains("<h1>T</h1>"), "{out}");
    }
}
