//! Identifiers chosen by the platform. They travel in URLs, CSV files and logs, so they are kept
//! to a safe alphabet: ASCII letters, digits and `.`, `_`, `:`, `-`, from 1 to 64 characters.

use super::Invalid;
use serde::{Deserialize, Serialize};
use std::fmt;

const MAX_ID_LEN: usize = 64;

fn check_id(what: &str, s: &str) -> Result<(), Invalid> {
    if s.is_empty() {
        return Err(Invalid::new(format!("{what} must not be empty")));
    }
    if s.len() > MAX_ID_LEN {
        return Err(Invalid::new(format!(
            "{what} is {} characters long; at most {MAX_ID_LEN} are allowed",
            s.chars().count()
        )));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(Invalid::new(format!(
            "{what} contains the forbidden character {bad:?}; allowed are ASCII letters, digits and . _ : -"
        )));
    }
    Ok(())
}

macro_rules! safe_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String, min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, Invalid> {
                let s = s.into();
                check_id($what, &s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(s: String) -> Result<Self, Invalid> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

safe_id!(
    /// The platform's identifier of a merchant.
    MerchantId,
    "merchant_id"
);
safe_id!(
    /// The platform's identifier of a payment, unique within its merchant.
    PaymentId,
    "payment_id"
);

safe_id!(
    /// The lender's or platform's identifier of a loan, unique across the service.
    LoanId,
    "loan_id"
);

/// An opaque, pseudonymous reference to the payer (a hash or token chosen by the platform). It is
/// used only to count distinct and repeat customers; smecredit never learns who the payer is and
/// never logs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PayerRef(String);

impl PayerRef {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: impl Into<String>) -> Result<Self, Invalid> {
        let s = s.into();
        if s.is_empty() {
            return Err(Invalid::new("payer_ref must not be empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(Invalid::new(format!(
                "payer_ref is {} bytes long; at most {} are allowed",
                s.len(),
                Self::MAX_LEN
            )));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Invalid::new(
                "payer_ref must not contain whitespace or control characters",
            ));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PayerRef {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

impl From<PayerRef> for String {
    fn from(p: PayerRef) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_safe_alphabet_up_to_64_characters() {
        assert!(MerchantId::parse("m-001_shop.A:2").is_ok());
        assert!(MerchantId::parse("a".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_unsafe_ids_naming_the_reason() {
        assert!(MerchantId::parse("").unwrap_err().0.contains("empty"));
        assert!(
            PaymentId::parse("a".repeat(65))
                .unwrap_err()
                .0
                .contains("65 characters")
        );
        assert!(PaymentId::parse("p 1").unwrap_err().0.contains("' '"));
        assert!(PaymentId::parse("p/1").unwrap_err().0.contains("'/'"));
        assert!(
            MerchantId::parse("商户")
                .unwrap_err()
                .0
                .contains("forbidden")
        );
    }

    #[test]
    fn payer_refs_are_opaque_but_bounded() {
        assert!(PayerRef::parse("wx_9f8e7d").is_ok());
        assert!(PayerRef::parse("").is_err());
        assert!(PayerRef::parse("a b").is_err());
        assert!(PayerRef::parse("x".repeat(129)).is_err());
    }
}
