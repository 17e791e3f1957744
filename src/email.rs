//! The canonical address: the one key by which accounts of one person are found across products,
//! stored in the tenant, written to the products' `email_norm` and carried in bulk records.
//!
//! Every component that compares addresses must agree, so the canonical form is at least as
//! strong as any folding another component applies. The tenant lower-cases with JavaScript's full
//! Unicode `toLowerCase` and JavaScript's `trim`; this module therefore:
//! - trims what either JavaScript's `trim` or Unicode's `White_Space` would trim (U+0085 and
//!   U+FEFF included), and refuses white space, control and format characters anywhere else;
//! - lower-cases the scripts whose case mapping it carries exactly (ASCII, Latin-1, Latin
//!   Extended-A, basic Greek without the capital sigma, whose lower case depends on its position,
//!   and basic Cyrillic), and **refuses** every other character that has an upper or title case
//!   (the Kelvin sign K, the Angstrom sign, ẞ, Ǆ, İ, …): such an address cannot be made canonical
//!   without Unicode's full tables, and a look-alike folded one way here and another way in the
//!   tenant is how a stranger's account becomes someone else's;
//! - refuses compatibility look-alikes of letters and digits (letter-like symbols, enclosed and
//!   full-width forms, mathematical alphanumerics), which mail software may map onto ASCII;
//! - removes one trailing dot from the domain (`x.com.` is the DNS name `x.com`), then requires a
//!   domain with no empty label, so the function is idempotent: `canonical(canonical(a)) ==
//!   canonical(a)`.
//!
//! It does **not** drop dots or `+tags` in the local part, nor map `googlemail.com` to
//! `gmail.com`: those are different mailboxes at most providers, and treating them as equal
//! would merge different people's accounts. Matching by address only ever *finds* candidate
//! accounts; ownership is proven separately (see [`crate::ownership`]).

use crate::event::ErrorBody;

/// The longest address accepted (RFC 5321 path limit minus the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailError {
    /// Nothing but white space.
    Empty,
    /// Longer than [`MAX_EMAIL_LEN`] bytes.
    TooLong,
    /// Not of the form `local@domain`, or contains control characters or spaces.
    Invalid,
    /// Holds a character that cannot be made canonical safely (see the module documentation).
    Unsupported,
}

impl EmailError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            EmailError::Empty => "email.empty",
            EmailError::TooLong => "email.too_long",
            EmailError::Invalid => "email.invalid",
            EmailError::Unsupported => "email.unsupported_character",
        }
    }

    /// As a boundary error body.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            EmailError::Empty => "email is empty".to_owned(),
            EmailError::TooLong => format!("email is longer than {MAX_EMAIL_LEN} bytes"),
            EmailError::Invalid => "email is not of the form local@domain".to_owned(),
            EmailError::Unsupported => {
                "email holds a character that cannot be compared safely (a look-alike or an \
                 upper-case letter outside Latin, Greek and Cyrillic); type it in lower case"
                    .to_owned()
            }
        };
        ErrorBody::new(self.code(), message)
    }
}

/// Characters trimmed from both ends: Unicode `White_Space` (what Rust trims) and U+FEFF, which
/// JavaScript's `trim` removes too.
fn trimmed(c: char) -> bool {
    c.is_whitespace() || c == '\u{FEFF}'
}

/// Format characters (Unicode category Cf): invisible, so two addresses that look identical
/// would differ.
fn format_char(u: u32) -> bool {
    matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF0..=0xFFFB
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
}

/// Compatibility forms of letters and digits that mail software may map onto other letters.
fn look_alike(u: u32) -> bool {
    matches!(u,
        0x2100..=0x214F | 0x2160..=0x2188 | 0x2460..=0x24FF | 0x2C60..=0x2C7F | 0xA720..=0xA7FF
        | 0xFB00..=0xFB4F | 0xFF00..=0xFFEF | 0x1D400..=0x1D7FF | 0x1F100..=0x1F1FF)
}

/// Title-case letters (category Lt): not upper case, yet `toLowerCase` changes them.
fn title_case(u: u32) -> bool {
    matches!(u, 0x1C5 | 0x1C8 | 0x1CB | 0x1F2 | 0x1F88..=0x1F8F | 0x1F98..=0x1F9F
        | 0x1FA8..=0x1FAF | 0x1FBC | 0x1FCC | 0x1FFC)
}

/// The canonical address (see the module documentation for exactly what changes and what is
/// refused). This is the only place in trickle that decides when two addresses are one.
pub fn canonical(raw: &str) -> Result<String, EmailError> {
    let trimmed = raw.trim_matches(trimmed);
    if trimmed.is_empty() {
        return Err(EmailError::Empty);
    }
    if trimmed.len() > MAX_EMAIL_LEN.saturating_mul(4) {
        return Err(EmailError::TooLong);
    }
    let mut lowered = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        let u = c as u32;
        if c.is_control() || c.is_whitespace() || format_char(u) {
            return Err(EmailError::Invalid);
        }
        if look_alike(u) {
            return Err(EmailError::Unsupported);
        }
        let l = lower(c);
        if l == c && (c.is_uppercase() || title_case(u)) {
            return Err(EmailError::Unsupported);
        }
        lowered.push(l);
    }
    let (local, domain) = lowered.rsplit_once('@').ok_or(EmailError::Invalid)?;
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if local.is_empty()
        || domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || local.contains('@')
    {
        return Err(EmailError::Invalid);
    }
    let canonical = format!("{local}@{domain}");
    if canonical.len() > MAX_EMAIL_LEN {
        return Err(EmailError::TooLong);
    }
    Ok(canonical)
}

/// Lower-cases one character of the scripts whose case this module carries (see the module
/// docs); returns it unchanged otherwise. The capital sigma is left alone (and so refused by
/// [`canonical`]): its lower case is σ or ς depending on the letters around it.
pub fn lower(c: char) -> char {
    let u = c as u32;
    let mapped = match u {
        0x41..=0x5A | 0xC0..=0xD6 | 0xD8..=0xDE | 0x391..=0x3A1 | 0x3A4..=0x3AB | 0x410..=0x42F => {
            u + 0x20
        }
        0x400..=0x40F => u + 0x50,
        0x178 => 0xFF,
        // Latin Extended-A pairs: upper case on even code points, except the odd-based runs.
        0x100..=0x12F | 0x132..=0x137 | 0x14A..=0x177 if u.is_multiple_of(2) => u + 1,
        0x139..=0x148 | 0x179..=0x17E if !u.is_multiple_of(2) => u + 1,
        _ => u,
    };
    char::from_u32(mapped).unwrap_or(c)
}

/// True when both addresses have the same, valid canonical form.
pub fn same(a: &str, b: &str) -> bool {
    matches!((canonical(a), canonical(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            canonical("  Ann.Lee@Example.COM \n").as_deref(),
            Ok("ann.lee@example.com")
        );
        assert_eq!(
            canonical("ÉLODIE@exemple.fr").as_deref(),
            Ok("élodie@exemple.fr")
        );
        // What JavaScript's trim removes and Rust's does not, and the other way round.
        assert_eq!(
            canonical("\u{FEFF}kim@x.com\u{85}").as_deref(),
            Ok("kim@x.com")
        );
        assert_eq!(canonical("kim@x.com\u{3000}").as_deref(), Ok("kim@x.com"));
    }

    /// Every single character, as the local part: whatever `canonical` accepts lower-cases exactly
    /// as the full Unicode tables do (JavaScript's `toLowerCase`, which the tenant applies), and
    /// nothing non-ASCII is ever accepted as, or folded into, ASCII.
    #[test]
    fn agrees_with_full_unicode_lower_casing_for_every_character() {
        let mut accepted = 0;
        for u in 0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(u) else { continue };
            let raw = format!("a{c}b@x.com");
            let Ok(got) = canonical(&raw) else { continue };
            accepted += 1;
            assert_eq!(got, raw.to_lowercase(), "U+{u:04X}");
            if !c.is_ascii() {
                assert!(
                    !got.trim_start_matches('a')
                        .starts_with(|x: char| x.is_ascii()),
                    "U+{u:04X}"
                );
            }
        }
        assert!(accepted > 100_000, "{accepted}");
    }

    #[test]
    fn refuses_what_the_tenant_would_fold_differently() {
        for raw in [
            "\u{212A}im@x.com",   // Kelvin sign: JavaScript lower-cases it to ASCII k
            "\u{212B}sa@x.com",   // Angstrom sign → å
            "stra\u{1E9E}e@x.de", // capital sharp s → ß
            "\u{1C4}ak@x.com",    // Ǆ → ǆ
            "\u{1C5}ak@x.com",    // ǅ (title case)
            "\u{130}pek@x.com",   // İ → i + combining dot
            "ΟΔΟΣ@x.gr",          // Σ → σ or ς by position
            "kim@\u{FF58}.com",   // full-width x
            "\u{24B6}nn@x.com",   // circled A
            "kim@x.\u{1D41C}om",  // mathematical bold c
        ] {
            assert_eq!(canonical(raw), Err(EmailError::Unsupported), "{raw:?}");
        }
        for raw in ["ki\u{200B}m@x.com", "kim\u{AD}@x.com", "kim@x\u{2060}.com"] {
            assert_eq!(canonical(raw), Err(EmailError::Invalid), "{raw:?}");
        }
    }

    #[test]
    fn idempotent_on_the_trailing_dot() {
        assert_eq!(canonical("0@J.."), Err(EmailError::Invalid));
        assert_eq!(canonical("0@j."), Ok("0@j".to_owned()));
        assert_eq!(canonical("0@.j"), Err(EmailError::Invalid));
        assert_eq!(canonical("0@j.com.."), Err(EmailError::Invalid));
    }

    #[test]
    fn folds_case_like_javascript_for_the_scripts_it_covers() {
        // Every character whose lower case this module claims to know agrees with Rust's full
        // Unicode tables (the same as JavaScript's toLowerCase for these ranges).
        for u in (0x20..0x250).chain(0x370..0x460) {
            let Some(c) = char::from_u32(u) else { continue };
            let full: Vec<char> = c.to_lowercase().collect();
            let ours = lower(c);
            if ours != c {
                assert_eq!(full, vec![ours], "U+{u:04X}");
            }
            // Inside the claimed ranges every letter with a one-letter lower case is folded and
            // accepted (İ, whose lower case is two characters, and Σ are refused instead).
            let claimed = [
                (0x41, 0x5A),
                (0xC0, 0xDE),
                (0x100, 0x17F),
                (0x391, 0x3AB),
                (0x400, 0x42F),
            ];
            let inside = claimed.iter().any(|(a, b)| (*a..=*b).contains(&u));
            if inside && full.len() == 1 && full != vec![c] && u != 0x3A3 {
                assert_eq!(
                    canonical(&format!("{c}@x.com")),
                    Ok(format!("{}@x.com", ours)),
                    "U+{u:04X} not folded"
                );
            }
        }
        assert_eq!(
            canonical("ŁUKASZ.ŻÓŁW@X.PL").as_deref(),
            Ok("łukasz.żółw@x.pl")
        );
        assert_eq!(canonical("ΑΝΝΑ@X.GR").as_deref(), Ok("αννα@x.gr"));
        assert_eq!(canonical("ЁЛКА@X.RU").as_deref(), Ok("ёлка@x.ru"));
        assert_eq!(canonical("οδος@x.gr").as_deref(), Ok("οδος@x.gr"));
    }

    #[test]
    fn keeps_dots_and_tags_apart() {
        assert!(!same("ann.lee@gmail.com", "annlee@gmail.com"));
        assert!(!same("ann+news@x.com", "ann@x.com"));
        assert!(same("ANN@x.com.", "ann@X.com"));
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(canonical("   "), Err(EmailError::Empty));
        assert_eq!(canonical("no-at-sign"), Err(EmailError::Invalid));
        assert_eq!(canonical("@x.com"), Err(EmailError::Invalid));
        assert_eq!(canonical("a@"), Err(EmailError::Invalid));
        assert_eq!(canonical("a@."), Err(EmailError::Invalid));
        assert_eq!(canonical("a b@x.com"), Err(EmailError::Invalid));
        assert_eq!(canonical("a@x..com"), Err(EmailError::Invalid));
        assert_eq!(canonical("a@b@c"), Err(EmailError::Invalid));
        assert_eq!(canonical("a\u{0}@x.com"), Err(EmailError::Invalid));
        let long = format!("{}@x.com", "a".repeat(250));
        assert_eq!(canonical(&long), Err(EmailError::TooLong));
        let longest = format!("{}@x.com", "a".repeat(MAX_EMAIL_LEN - 6));
        assert_eq!(canonical(&longest).map(|e| e.len()), Ok(MAX_EMAIL_LEN));
        // Very long input is refused before any per-character work (the bound is 4 × the
        // longest address): just below it a bad character is still named, above it the length.
        let at_bound = format!("{}\u{1}@x.com", "a".repeat(MAX_EMAIL_LEN * 4 - 7));
        assert_eq!(at_bound.len(), MAX_EMAIL_LEN * 4);
        assert_eq!(canonical(&at_bound), Err(EmailError::Invalid));
        let over = format!("a{at_bound}");
        assert_eq!(canonical(&over), Err(EmailError::TooLong));
        let padded = format!("{}{longest}{}", " ".repeat(400), " ".repeat(400));
        assert_eq!(canonical(&padded).map(|e| e.len()), Ok(MAX_EMAIL_LEN));
    }

    proptest::proptest! {
        #[test]
        fn canonical_is_idempotent(raw in "\\PC{0,40}") {
            if let Ok(once) = canonical(&raw) {
                proptest::prop_assert_eq!(canonical(&once), Ok(once.clone()));
                proptest::prop_assert_eq!(once.to_lowercase(), once.clone());
            }
        }

        #[test]
        fn canonical_is_idempotent_on_address_shapes(local in "[a-zA-Z0-9.ÀÉΣσ\u{212A}\u{85} ]{0,8}", domain in "[a-zA-Z.\u{FEFF}]{0,8}") {
            let raw = format!("{local}@{domain}");
            if let Ok(once) = canonical(&raw) {
                proptest::prop_assert_eq!(canonical(&once), Ok(once.clone()));
            }
        }
    }
}
