//! Exact money. An amount is held as a whole number of the currency's minor unit (fen for CNY),
//! so it is exact by construction, `Copy`, and stored as an integer in both databases. It enters
//! and leaves as a decimal string with its ISO 4217 currency: `{"amount": "12.50", "currency": "CNY"}`.

use super::Invalid;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// An ISO 4217 currency with a defined minor unit (so not XAU, XDR and the like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: iso_currency::Currency,
    exponent: u8,
}

impl Currency {
    pub fn parse(code: &str) -> Result<Self, Invalid> {
        let known = (code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()))
            .then(|| iso_currency::Currency::from_code(code))
            .flatten();
        let Some(iso) = known else {
            return Err(Invalid::new(format!(
                "{code:?} is not an ISO 4217 currency code (three upper-case letters such as CNY)"
            )));
        };
        match iso.exponent() {
            Some(exponent) if exponent <= 4 => Ok(Self {
                code: iso,
                exponent: exponent as u8,
            }),
            _ => Err(Invalid::new(format!(
                "{code} has no minor unit and cannot be used for payments"
            ))),
        }
    }

    pub fn code(&self) -> &'static str {
        self.code.code()
    }

    /// Number of decimal places of the minor unit: 2 for CNY, 0 for JPY, 3 for KWD.
    pub fn exponent(&self) -> u32 {
        u32::from(self.exponent)
    }
}

impl TryFrom<String> for Currency {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An exact amount of money in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// The wire form of [`Money`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyJson {
    /// A decimal string with no more decimal places than the currency allows; never a JSON number.
    #[schema(example = "1234.50", pattern = r"^-?[0-9]+(\.[0-9]+)?$")]
    pub amount: String,
    /// ISO 4217 code.
    #[schema(example = "CNY", pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

impl Money {
    /// Money from a count of minor units (fen, cents).
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Parses a decimal string strictly: an optional minus sign, digits, and an optional
    /// fraction. No exponent, no thousands separators, no leading `+`, no surrounding spaces.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, Invalid> {
        let digits = amount.strip_prefix('-').unwrap_or(amount);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let well_formed = !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && (!digits.contains('.') || !fraction.is_empty())
            && fraction.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(Invalid::new(format!(
                "{:?} is not a decimal number (write it like \"1234.50\")",
                truncate_for_message(amount)
            )));
        }
        let places = fraction.trim_end_matches('0').len();
        if places > currency.exponent() as usize {
            return Err(Invalid::new(format!(
                "{amount} has {places} decimal places; {} allows at most {}",
                currency.code(),
                currency.exponent()
            )));
        }
        let out_of_range = || {
            Invalid::new(format!(
                "{} is beyond the representable range of amounts",
                truncate_for_message(amount)
            ))
        };
        let value = Decimal::from_str(amount).map_err(|_| out_of_range())?;
        Self::from_decimal(value, currency).map_err(|_| out_of_range())
    }

    /// Money from an exact decimal; refuses fractions of the minor unit and values beyond `i64`
    /// minor units.
    pub fn from_decimal(value: Decimal, currency: Currency) -> Result<Self, Invalid> {
        let scaled = value
            .checked_mul(Decimal::from(10_i64.pow(currency.exponent())))
            .ok_or_else(|| Invalid::new(format!("{value} is beyond the representable range")))?;
        if !scaled.fract().is_zero() {
            return Err(Invalid::new(format!(
                "{value} has more decimal places than {} allows ({})",
                currency.code(),
                currency.exponent()
            )));
        }
        let minor = i64::try_from(scaled)
            .map_err(|_| Invalid::new(format!("{value} is beyond the representable range")))?;
        Ok(Self { minor, currency })
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount as an exact decimal with exactly the currency's number of places ("12.50").
    pub fn amount(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    pub fn is_positive(&self) -> bool {
        self.minor > 0
    }

    /// Sum of two amounts in the same currency; `None` on a currency mismatch or overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.minor.checked_add(other.minor))
            .flatten()
            .map(|minor| Money::from_minor(minor, self.currency))
    }
}

fn truncate_for_message(s: &str) -> Cow<'_, str> {
    if s.chars().count() > 40 {
        Cow::Owned(format!("{}…", s.chars().take(40).collect::<String>()))
    } else {
        Cow::Borrowed(s)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount(), self.currency)
    }
}

impl From<Money> for MoneyJson {
    fn from(m: Money) -> Self {
        MoneyJson {
            amount: m.amount().to_string(),
            currency: m.currency.code().to_string(),
        }
    }
}

impl TryFrom<MoneyJson> for Money {
    type Error = Invalid;
    fn try_from(m: MoneyJson) -> Result<Self, Invalid> {
        Money::parse(&m.amount, Currency::parse(&m.currency)?)
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MoneyJson::from(*self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Money::try_from(MoneyJson::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <MoneyJson as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Money {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Money")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny() -> Currency {
        Currency::parse("CNY").unwrap()
    }

    #[test]
    fn parses_decimal_strings_exactly() {
        let m = Money::parse("1234.50", cny()).unwrap();
        assert_eq!(m.minor(), 123_450);
        assert_eq!(m.amount().to_string(), "1234.50");
        assert_eq!(
            Money::parse("7", cny()).unwrap().amount().to_string(),
            "7.00"
        );
        assert_eq!(Money::parse("0.1", cny()).unwrap().minor(), 10);
        // trailing zeros beyond the minor unit change nothing and are accepted
        assert_eq!(Money::parse("1.500", cny()).unwrap().minor(), 150);
    }

    #[test]
    fn ten_cents_and_twenty_cents_make_exactly_thirty() {
        let a = Money::parse("0.10", cny()).unwrap();
        let b = Money::parse("0.20", cny()).unwrap();
        assert_eq!(
            a.checked_add(b).unwrap(),
            Money::parse("0.30", cny()).unwrap()
        );
    }

    #[test]
    fn refuses_more_places_than_the_currency_has() {
        let err = Money::parse("1.005", cny()).unwrap_err();
        assert!(
            err.0.contains("3 decimal places; CNY allows at most 2"),
            "{err}"
        );
        let jpy = Currency::parse("JPY").unwrap();
        assert!(Money::parse("100.5", jpy).is_err());
        assert_eq!(Money::parse("100", jpy).unwrap().minor(), 100);
    }

    #[test]
    fn refuses_anything_that_is_not_a_plain_decimal() {
        for bad in [
            "", "abc", "1e5", "+1", " 1", "1,000", "1.", ".5", "1.2.3", "NaN", "--1", "0x10",
        ] {
            assert!(Money::parse(bad, cny()).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn refuses_amounts_beyond_the_range() {
        let err = Money::parse("99999999999999999999999999999999", cny()).unwrap_err();
        assert!(err.0.contains("beyond the representable range"), "{err}");
        assert!(Money::parse("92233720368547758.08", cny()).is_err());
        assert!(Money::parse("92233720368547758.07", cny()).is_ok());
    }

    #[test]
    fn currency_codes_must_be_iso_4217_with_a_minor_unit() {
        assert_eq!(cny().exponent(), 2);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        assert!(Currency::parse("cny").is_err());
        assert!(Currency::parse("ABC").is_err());
        assert!(Currency::parse("XAU").is_err());
    }

    #[test]
    fn serializes_as_a_string_with_its_currency() {
        let m = Money::parse("0.30", cny()).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"0.30","currency":"CNY"}"#);
        let back: Money = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert!(serde_json::from_str::<Money>(r#"{"amount":0.3,"currency":"CNY"}"#).is_err());
    }
}
