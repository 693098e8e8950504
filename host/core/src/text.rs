//! Characters that make two identifiers look alike without being alike.

/// Whether `s` has a control character, or one that is invisible or reorders text:
/// zero-width spaces and joiners, bidirectional embeddings, overrides and isolates,
/// the soft hyphen, the byte-order mark, invisible operators and tag characters. An
/// id holding one can pass for another id to a person reading it (`alice` and
/// `al\u{200b}ice`), so ids refuse them.
pub fn invisible_in(s: &str) -> bool {
    s.chars().any(|c| {
        c.is_control()
            || matches!(
                c,
                '\u{00AD}'
                    | '\u{034F}'
                    | '\u{061C}'
                    | '\u{115F}'
                    | '\u{1160}'
                    | '\u{17B4}'
                    | '\u{17B5}'
                    | '\u{180B}'..='\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{206F}'
                    | '\u{3164}'
                    | '\u{FE00}'..='\u{FE0F}'
                    | '\u{FEFF}'
                    | '\u{FFA0}'
                    | '\u{FFF9}'..='\u{FFFB}'
                    | '\u{E0000}'..='\u{E0FFF}'
            )
    })
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Caller input as an error message may show it: at most 64 bytes, with `…` when
/// cut, so that no error echoes more than a bounded prefix of what was sent.
pub fn shown(s: &str) -> String {
    let p = prefix(s, 64);
    if p.len() < s.len() {
        format!("{p}…")
    } else {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalike_makers_are_found_and_plain_text_passes() {
        for bad in [
            "al\u{200b}ice",
            "\u{202e}ecila",
            "alice\u{feff}",
            "a\u{2066}b",
            "x\u{e0041}",
        ] {
            assert!(invisible_in(bad), "{bad:?}");
        }
        for good in ["alice@acme.org", "spiffe://acme.org/ns/prod", "Zoë", "東京"] {
            assert!(!invisible_in(good), "{good:?}");
        }
    }
}
