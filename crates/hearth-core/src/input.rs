//! Parse, don't validate: request fields become these types or a field-named error.

use crate::error::{CoreError, Result};

/// A normalised (trimmed, lower-cased) email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses `raw` as the value of `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let value = raw.trim().to_lowercase();
        let bad = |reason: &str| CoreError::invalid(field, reason);
        if value.is_empty() {
            return Err(bad("is required"));
        }
        if value.chars().count() > 254 {
            return Err(bad("must be at most 254 characters"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("must not contain spaces"));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(bad("must be an email address like name@example.com"));
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.chars().count() > 64 || !domain_ok {
            return Err(bad("must be an email address like name@example.com"));
        }
        Ok(Self(value))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`, as a default display name.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or(&self.0)
    }
}

/// A password that meets the policy. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Passwords too common to allow whatever their length.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "qwerty123",
    "iloveyou",
    "11111111",
    "00000000",
    "abcdefgh",
    "letmein1",
    "welcome1",
    "admin123",
    "changeme",
];

impl Password {
    /// Minimum length in characters.
    pub const MIN_CHARS: usize = 8;
    /// Maximum length in characters; bounds the hashing cost an attacker can force.
    pub const MAX_CHARS: usize = 128;

    /// Parses `raw` as the value of `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let n = raw.chars().count();
        let bad = |reason: &str| CoreError::invalid(field, reason);
        if n < Self::MIN_CHARS {
            return Err(bad("must be at least 8 characters"));
        }
        if n > Self::MAX_CHARS {
            return Err(bad("must be at most 128 characters"));
        }
        let first = raw.chars().next();
        if raw.chars().all(|c| Some(c) == first) || COMMON.contains(&raw.to_lowercase().as_str()) {
            return Err(bad("is too easy to guess"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Trims `raw` and checks it is a single-line text of 1 to `max` characters.
pub fn text(field: &str, raw: &str, max: usize) -> Result<String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(CoreError::invalid(field, "must not be empty"));
    }
    // The whole value, spaces included: the length the API document states.
    if raw.chars().count() > max {
        return Err(CoreError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised() {
        let e = Email::parse("email", "  Ada@Example.COM ").expect("valid");
        assert_eq!(e.as_str(), "ada@example.com");
        assert_eq!(e.local_part(), "ada");
    }

    #[test]
    fn bad_emails_name_the_field() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@x.io",
            "ada@localhost",
            "a b@x.io",
            "ada@x..io",
            "a@b@c.io",
            "ada@.x.io",
        ] {
            match Email::parse("email", raw) {
                Err(CoreError::InvalidInput { field, .. }) => assert_eq!(field, "email", "{raw}"),
                other => panic!("{raw:?} gave {other:?}"),
            }
        }
        assert!(Email::parse("email", &format!("{}@x.io", "a".repeat(300))).is_err());
    }

    #[test]
    fn password_policy() {
        assert!(Password::parse("password", "short").is_err());
        assert!(Password::parse("password", "aaaaaaaaaaaa").is_err());
        assert!(Password::parse("password", "Password123").is_err());
        assert!(Password::parse("password", &"x1".repeat(100)).is_err());
        assert!(Password::parse("password", "correct-horse-battery").is_ok());
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::parse("password", "correct-horse-battery").expect("valid");
        assert!(!format!("{p:?}").contains("horse"));
    }

    #[test]
    fn text_bounds() {
        assert_eq!(text("name", "  Ada ", 10).expect("ok"), "Ada");
        assert!(text("name", "   ", 10).is_err());
        assert!(text("name", "abcdefghijk", 10).is_err());
        assert!(text("name", "a\u{7}b", 10).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn email_parse_never_panics_and_normalises(raw in ".{0,300}") {
                if let Ok(email) = Email::parse("email", &raw) {
                    let s = email.as_str();
                    prop_assert_eq!(s, s.trim());
                    prop_assert_eq!(s.to_lowercase(), s);
                    prop_assert_eq!(s.matches('@').count(), 1);
                    prop_assert!(s.chars().count() <= 254);
                }
            }

            #[test]
            fn emails_of_the_usual_shape_parse(local in "[a-z0-9._+-]{1,30}", domain in "[a-z0-9-]{1,20}", tld in "[a-z]{2,6}") {
                let raw = format!(" {}@{}.{} ", local.to_uppercase(), domain, tld);
                let email = Email::parse("email", &raw).expect("valid");
                prop_assert_eq!(email.as_str(), format!("{local}@{domain}.{tld}"));
            }

            #[test]
            fn password_accepts_exactly_the_policy(raw in ".{0,140}") {
                let n = raw.chars().count();
                let first = raw.chars().next();
                let allowed = (Password::MIN_CHARS..=Password::MAX_CHARS).contains(&n)
                    && !raw.chars().all(|c| Some(c) == first)
                    && !COMMON.contains(&raw.to_lowercase().as_str());
                prop_assert_eq!(Password::parse("password", &raw).is_ok(), allowed);
            }

            #[test]
            fn text_is_trimmed_and_bounded(raw in ".{0,60}", max in 1usize..40) {
                if let Ok(t) = text("name", &raw, max) {
                    prop_assert!(!t.is_empty() && t.chars().count() <= max);
                    prop_assert_eq!(t.as_str(), raw.trim());
                }
            }
        }
    }
}
