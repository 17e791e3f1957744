//! Email normalisation, the key by which accounts of one person are found across products.
//!
//! What normalisation does, and why it does no more:
//! - trims surrounding white space (copy-paste and form artefacts);
//! - lower-cases the whole address, because Auth0 stores emails lower-cased and legacy products
//!   differ in case handling; treating `Ann@X.com` and `ann@x.com` as different people would
//!   split one person into two. Case is folded for ASCII, Latin-1, Latin Extended-A, Greek and
//!   Cyrillic ([`lower`]); other scripts are left as they are, which can only fail to match two
//!   spellings of one address, never match two different ones (Unicode's full tables would
//!   cost 20 kB of every login artefact);
//! - removes one trailing dot from the domain (`x.com.` is the same DNS name as `x.com`).
//!
//! It does **not** drop dots or `+tags` in the local part, nor map `googlemail.com` to
//! `gmail.com`: those are different mailboxes at most providers, and treating them as equal
//! would merge different people's accounts, which is an account takeover. Matching by email only
//! ever *finds* candidate accounts; ownership is proven separately (password or inbox).

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
}

impl EmailError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            EmailError::Empty => "email.empty",
            EmailError::TooLong => "email.too_long",
            EmailError::Invalid => "email.invalid",
        }
    }

    /// As a boundary error body.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            EmailError::Empty => "email is empty".to_owned(),
            EmailError::TooLong => format!("email is longer than {MAX_EMAIL_LEN} bytes"),
            EmailError::Invalid => "email is not of the form local@domain".to_owned(),
        };
        ErrorBody::new(self.code(), message)
    }
}

/// Normalises an address: see the module documentation for exactly what changes.
pub fn normalize(raw: &str) -> Result<String, EmailError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(EmailError::Empty);
    }
    let lowered: String = trimmed.chars().map(lower).collect();
    let (local, domain) = lowered.rsplit_once('@').ok_or(EmailError::Invalid)?;
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if local.is_empty()
        || domain.is_empty()
        || domain.starts_with('.')
        || domain.contains("..")
        || local.contains('@')
        || lowered.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(EmailError::Invalid);
    }
    let normalized = format!("{local}@{domain}");
    if normalized.len() > MAX_EMAIL_LEN {
        return Err(EmailError::TooLong);
    }
    Ok(normalized)
}

/// Lower-cases one character of the scripts found in real addresses (see the module docs).
pub fn lower(c: char) -> char {
    let u = c as u32;
    let mapped = match u {
        0x41..=0x5A | 0xC0..=0xD6 | 0xD8..=0xDE | 0x391..=0x3A1 | 0x3A3..=0x3AB | 0x410..=0x42F => {
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

/// True when both addresses normalise to the same, valid address.
pub fn same(a: &str, b: &str) -> bool {
    matches!((normalize(a), normalize(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            normalize("  Ann.Lee@Example.COM \n").as_deref(),
            Ok("ann.lee@example.com")
        );
        assert_eq!(
            normalize("ÉLODIE@exemple.fr").as_deref(),
            Ok("élodie@exemple.fr")
        );
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
            } else if full != vec![c] {
                // Inside the claimed ranges every upper-case letter is folded (İ becomes two
                // characters in Unicode and is left alone); outside them, leaving it is the choice.
                let claimed = [
                    (0x41, 0x5A),
                    (0xC0, 0xDE),
                    (0x100, 0x17F),
                    (0x391, 0x3AB),
                    (0x400, 0x42F),
                ];
                let inside = claimed.iter().any(|(a, b)| (*a..=*b).contains(&u));
                assert!(!inside || u == 0x130, "U+{u:04X} not folded");
            }
        }
        assert_eq!(
            normalize("ŁUKASZ.ŻÓŁW@X.PL").as_deref(),
            Ok("łukasz.żółw@x.pl")
        );
        assert_eq!(normalize("ΑΝΝΑ@X.GR").as_deref(), Ok("αννα@x.gr"));
        assert_eq!(normalize("ЁЛКА@X.RU").as_deref(), Ok("ёлка@x.ru"));
    }

    #[test]
    fn keeps_dots_and_tags_apart() {
        assert!(!same("ann.lee@gmail.com", "annlee@gmail.com"));
        assert!(!same("ann+news@x.com", "ann@x.com"));
        assert!(same("ANN@x.com.", "ann@X.com"));
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(normalize("   "), Err(EmailError::Empty));
        assert_eq!(normalize("no-at-sign"), Err(EmailError::Invalid));
        assert_eq!(normalize("@x.com"), Err(EmailError::Invalid));
        assert_eq!(normalize("a@"), Err(EmailError::Invalid));
        assert_eq!(normalize("a b@x.com"), Err(EmailError::Invalid));
        assert_eq!(normalize("a@x..com"), Err(EmailError::Invalid));
        assert_eq!(normalize("a@b@c"), Err(EmailError::Invalid));
        assert_eq!(normalize("a\u{0}@x.com"), Err(EmailError::Invalid));
        let long = format!("{}@x.com", "a".repeat(250));
        assert_eq!(normalize(&long), Err(EmailError::TooLong));
    }
}
