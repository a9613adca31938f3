//! Sizes and durations as people write them in job files and read them in errors.
//!
//! Hand-rolled because the forms are few (`256 MiB`, `16MiB`, `1048576`; `60 s`, `500ms`,
//! `2m`) and must round-trip exactly into the messages that name a limit; a crate would add a
//! dependency and its own spellings.

use std::time::Duration;

const BYTE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

/// Parse `256 MiB`, `16MiB`, `1048576`, `1 GB`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("\"{text}\" is not a size (e.g. \"256 MiB\")"))?;
    let unit = unit.trim();
    let factor = if unit.is_empty() {
        1
    } else {
        BYTE_UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|(_, f)| *f)
            .ok_or_else(|| format!("\"{text}\": unknown size unit \"{unit}\" (use B, KiB, MiB, GiB)"))?
    };
    number.checked_mul(factor).ok_or_else(|| format!("\"{text}\" is too large"))
}

/// `268435456` → `256 MiB`; exact binary multiples get a unit, anything else stays in bytes.
pub fn format_bytes(bytes: u64) -> String {
    for (name, factor) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{} {name}", bytes / factor);
        }
    }
    format!("{bytes} B")
}

/// Parse `60 s`, `500ms`, `2m`, `1h`, `1.5s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("\"{text}\" is not a duration (e.g. \"60 s\", \"500 ms\")"))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" | "" => number,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("\"{text}\": unknown duration unit \"{other}\" (use ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("\"{text}\" is not a valid duration"))
}

/// `60 s`, `500 ms`, `1.5 s`.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_format() {
        assert_eq!(parse_bytes("256 MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("16MiB"), Ok(16 << 20));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("2 kib"), Ok(2048));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("99999999999 GiB").is_err());
        assert_eq!(format_bytes(256 << 20), "256 MiB");
        assert_eq!(format_bytes(1000), "1000 B");
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("60 s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1 s").is_err());
        assert_eq!(format_duration(Duration::from_secs(60)), "60 s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500 ms");
    }
}
