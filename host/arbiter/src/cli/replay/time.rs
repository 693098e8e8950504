//! `--since` and `--until`: RFC 3339 date-times or unix seconds, without a date-time
//! dependency for two flags.

/// Parses `--since`/`--until`: RFC 3339 (`2025-06-01T00:00:00Z`, offsets allowed) or
/// whole unix seconds; the result is unix microseconds.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let micros = if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !s.is_empty() {
        s.parse::<i64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1_000_000))
    } else {
        rfc3339_micros(s)
    };
    micros.ok_or_else(|| {
        format!(
            "`{s}` is not a time; use RFC 3339 (2025-06-01T00:00:00Z) or unix seconds (1748736000)"
        )
    })
}

/// Unix microseconds of an RFC 3339 date-time, `None` if it is not one.
fn rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = s.get(from..to)?;
        if digits.bytes().all(|c| c.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        }
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let local = arbiter_core::clock::unix_secs(year, month, day, hour, minute, second)?;
    let mut rest = s.get(19..)?;
    let mut fraction = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Microseconds: the first six digits, padded; finer digits are dropped.
        let micro_digits: String = after_dot[..digits.min(6)].chars().collect();
        fraction = format!("{micro_digits:0<6}").parse().ok()?;
        rest = &after_dot[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            // The first byte is ASCII, so slicing after it stays on a char boundary.
            let (sign, o) = match rest.as_bytes().first()? {
                b'+' => (1, &rest[1..]),
                b'-' => (-1, &rest[1..]),
                _ => return None,
            };
            let two_digits = |t: Option<&str>| {
                t.filter(|d| d.len() == 2 && d.bytes().all(|c| c.is_ascii_digit()))
                    .and_then(|d| d.parse::<i64>().ok())
            };
            if o.len() != 5 || o.as_bytes()[2] != b':' {
                return None;
            }
            let (h, m) = (two_digits(o.get(..2))?, two_digits(o.get(3..))?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    (local - offset)
        .checked_mul(1_000_000)?
        .checked_add(fraction)
}
