//! Text hygiene for every free-text input (names, bios, prompt answers, messages, places,
//! report details): NFC-normalised, trimmed, counted in characters, and refused with a
//! BAD_USER_INPUT naming the field when it holds characters that let one person's text
//! disguise itself or break another person's screen:
//!
//! - control characters (NUL, escape, C1 …); multi-line texts keep line breaks and tabs;
//! - bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069), which turn
//!   `Rex\u{202E}gnp.exe` into "Rexexe.png" on screen;
//! - in names, also invisible characters (zero-width spaces and joiners, word joiner, byte
//!   order mark, soft hyphen, directional marks), with which two names that look the same are
//!   different strings.

use unicode_normalization::UnicodeNormalization;

use crate::error::ApiError;

/// What a text is, which decides what it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A name people are recognised by (a dog's, a place's): one line, nothing invisible.
    Name,
    /// One line of free text (a breed).
    Line,
    /// Free text over several lines (a bio, an answer, a message, a description, details).
    Multiline,
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
    )
}

/// Why a character is refused in a text of `kind`, if it is.
fn refusal(c: char, kind: Kind) -> Option<&'static str> {
    if c.is_control() && !(kind == Kind::Multiline && matches!(c, '\n' | '\t')) {
        return Some("control characters");
    }
    if is_bidi_control(c) {
        return Some("text-direction override characters");
    }
    if kind == Kind::Name && is_invisible(c) {
        return Some("invisible characters");
    }
    None
}

/// `raw` NFC-normalised and trimmed, between `min` and `max` characters, holding nothing
/// [`Kind`] refuses; otherwise a BAD_USER_INPUT naming `field`.
pub fn clean(
    field: &str,
    raw: &str,
    kind: Kind,
    min: usize,
    max: usize,
) -> Result<String, ApiError> {
    let normalized: String = raw.nfc().collect();
    let value = normalized.trim();
    if let Some(why) = value.chars().find_map(|c| refusal(c, kind)) {
        return Err(ApiError::bad_input(
            field,
            format!("{field} must not contain {why}"),
        ));
    }
    let n = value.chars().count();
    if n < min {
        return Err(ApiError::bad_input(
            field,
            if min == 1 {
                format!("{field} must not be empty")
            } else {
                format!("{field} must be at least {min} characters")
            },
        ));
    }
    if n > max {
        return Err(ApiError::bad_input(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(value.to_string())
}

/// What a text holds that lets it advertise to strangers — a link, an email address, a phone
/// number — or `None`. For texts everyone sees but nobody asked for (the names and
/// descriptions of places).
pub fn contact_details(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    if lower.contains("://") || lower.contains("www.") {
        return Some("links");
    }
    for token in lower.split_whitespace() {
        let token = token.trim_matches(|c: char| !c.is_alphanumeric() && c != '/' && c != '@');
        if let Some((user, host)) = token.split_once('@')
            && !user.is_empty()
            && looks_like_domain(host)
        {
            return Some("email addresses");
        }
        let host = token.split('/').next().unwrap_or("");
        if looks_like_domain(host) {
            return Some("links");
        }
    }
    // Seven or more digits in a row, allowing the separators phone numbers are written with.
    let mut digits = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            if digits >= 7 {
                return Some("phone numbers");
            }
        } else if !matches!(c, ' ' | '-' | '.' | '/' | '(' | ')' | '+') {
            digits = 0;
        }
    }
    None
}

/// `name.example`, `evil.co.uk`: labels of letters, digits and hyphens, the last of 2 to 24
/// letters.
fn looks_like_domain(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels.last().is_some_and(|tld| {
            (2..=24).contains(&tld.len()) && tld.chars().all(|c| c.is_ascii_alphabetic())
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn contact_details_are_found_and_place_names_pass() {
        for (text, what) in [
            ("Cheap meds evil.example/1", "links"),
            ("see https://x.test", "links"),
            ("WWW.Example.org", "links"),
            ("mail me: dog@kennel.example", "email addresses"),
            ("call +49 151 2345678", "phone numbers"),
            ("Call 030-123-4567 now", "phone numbers"),
            ("(0151) 234 56 78", "phone numbers"),
        ] {
            assert_eq!(contact_details(text), Some(what), "{text}");
        }
        for text in [
            "St. James's Park",
            "Mauerpark, Berlin",
            "Open 8-20, dogs welcome. Water bowl by the gate.",
            "Platz 12345",
            "Hundewiese am Wasserturm (2 ha)",
            "52.5219, 13.4132",
            "A.B. Dog Run",
        ] {
            assert_eq!(contact_details(text), None, "{text}");
        }
    }
    use super::*;

    fn field_of(err: ApiError) -> String {
        match err {
            ApiError::BadUserInput {
                field: Some(field), ..
            } => field,
            other => panic!("expected bad input, got {other:?}"),
        }
    }

    #[test]
    fn text_is_nfc_normalised_and_trimmed() {
        // "é" as e + combining acute becomes the one precomposed character.
        let v = clean("name", "  Re\u{0301}mi ", Kind::Name, 1, 50).expect("valid");
        assert_eq!(v, "R\u{00E9}mi");
        assert_eq!(v.chars().count(), 4);
    }

    #[test]
    fn direction_overrides_are_refused_everywhere() {
        for kind in [Kind::Name, Kind::Line, Kind::Multiline] {
            for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
                let err =
                    clean("bio", &format!("Rex{c}gnp.exe"), kind, 0, 50).expect_err("refused");
                assert_eq!(field_of(err), "bio");
            }
        }
    }

    #[test]
    fn control_characters_are_refused_but_multiline_keeps_line_breaks() {
        for bad in ["a\u{0}b", "a\u{1b}[31mb", "a\u{7f}", "a\u{85}b"] {
            assert!(
                clean("content", bad, Kind::Multiline, 1, 50).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            clean("content", "line one\nline\ttwo", Kind::Multiline, 1, 50).expect("valid"),
            "line one\nline\ttwo"
        );
        assert!(clean("name", "two\nlines", Kind::Name, 1, 50).is_err());
        assert!(clean("breed", "two\nlines", Kind::Line, 0, 50).is_err());
    }

    #[test]
    fn names_refuse_invisible_characters_other_texts_keep_emoji_joiners() {
        for c in ['\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}'] {
            assert!(clean("name", &format!("Re{c}x"), Kind::Name, 1, 50).is_err());
        }
        // A family emoji is joined with U+200D: fine in a bio.
        let family = "\u{1F469}\u{200D}\u{1F467}";
        assert!(clean("bio", family, Kind::Multiline, 0, 50).is_ok());
    }

    #[test]
    fn lengths_count_characters_after_normalisation() {
        let decomposed = "e\u{0301}".repeat(50);
        assert!(clean("name", &decomposed, Kind::Name, 1, 50).is_ok());
        assert!(clean("name", &"x".repeat(51), Kind::Name, 1, 50).is_err());
        assert!(clean("name", "   ", Kind::Name, 1, 50).is_err());
    }
}
