//! A merchant as the platform describes it.

use super::payment::wire_enum;
use super::{Currency, Invalid, MerchantId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

wire_enum!(
    /// Where the merchant trades. Reported on for fairness; never an input to the model.
    RegionType, "region_type" {
        Urban => "urban",
        County => "county",
        Rural => "rural",
    }
);

macro_rules! slug {
    ($(#[$meta:meta])* $name:ident, $what:literal, $max:literal, $example:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String, example = $example)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, Invalid> {
                let s = s.into();
                if s.is_empty() || s.len() > $max {
                    return Err(Invalid::new(format!(
                        "{} must be 1 to {} characters long",
                        $what, $max
                    )));
                }
                if let Some(bad) = s
                    .chars()
                    .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')))
                {
                    return Err(Invalid::new(format!(
                        "{} contains {:?}; use lower-case ASCII letters, digits, '_' and '-'",
                        $what, bad
                    )));
                }
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
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug!(
    /// The platform's business category, as a slug (`food_stall`, `grocery`, `farm_supplies`).
    Category, "category", 64, "grocery"
);
slug!(
    /// An administrative region code (for example a county's division code, `330782`).
    RegionCode, "region_code", 32, "330782"
);

/// A validated merchant profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    pub category: Category,
    pub region_type: RegionType,
    pub region_code: RegionCode,
    /// The settlement currency; every payment of this merchant is in it.
    pub currency: Currency,
    pub onboarded_on: NaiveDate,
}

impl Merchant {
    pub const MAX_NAME_CHARS: usize = 200;

    /// A display name: trimmed, 1 to 200 characters, no control characters. Any script is
    /// welcome (`老王早餐店`).
    pub fn parse_name(s: &str) -> Result<String, Invalid> {
        let name = s.trim();
        if name.is_empty() {
            return Err(Invalid::new("name must not be empty"));
        }
        if name.chars().count() > Self::MAX_NAME_CHARS {
            return Err(Invalid::new(format!(
                "name is {} characters long; at most {} are allowed",
                name.chars().count(),
                Self::MAX_NAME_CHARS
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(Invalid::new("name must not contain control characters"));
        }
        Ok(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_script_are_welcome_but_bounded() {
        assert_eq!(Merchant::parse_name("  老王早餐店 ").unwrap(), "老王早餐店");
        assert!(Merchant::parse_name("   ").is_err());
        assert!(Merchant::parse_name(&"店".repeat(201)).is_err());
        assert!(Merchant::parse_name("a\nb").is_err());
    }

    #[test]
    fn categories_and_region_codes_are_slugs() {
        assert!(Category::parse("farm_supplies").is_ok());
        assert!(Category::parse("Farm").is_err());
        assert!(RegionCode::parse("330782").is_ok());
        assert!(RegionCode::parse("").is_err());
        assert_eq!(RegionType::parse("rural").unwrap(), RegionType::Rural);
    }
}
