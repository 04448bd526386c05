//! From what the platform sends (JSON batches, CSV files) to validated payments and merchants.
//! Both doors use the same checks, so a row the API refuses is refused by the import too.

pub mod import;

use crate::domain::{
    Category, Channel, Currency, Invalid, Merchant, MerchantId, Money, PayerRef, Payment,
    PaymentId, PaymentKind, RegionCode, RegionType,
};
use chrono::{DateTime, NaiveDate, Utc};

/// The fields of a payment as text, before validation.
#[derive(Debug, Clone, Copy)]
pub struct RawPayment<'a> {
    pub payment_id: &'a str,
    pub occurred_at: &'a str,
    pub amount: &'a str,
    pub currency: &'a str,
    pub kind: &'a str,
    pub channel: &'a str,
    pub payer_ref: &'a str,
}

/// Which field of a raw record is at fault; the caller names it in its own terms
/// (`payments[3].amount.amount` in JSON, column `amount` in CSV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentField {
    PaymentId,
    OccurredAt,
    Amount,
    Currency,
    Kind,
    Channel,
    PayerRef,
}

/// Every problem with one raw payment (not just the first).
pub type PaymentErrors = Vec<(PaymentField, Invalid)>;

/// Gathers every field's verdict, so that a record's errors are all reported at once.
struct Verdicts<F> {
    errors: Vec<(F, Invalid)>,
}

impl<F> Verdicts<F> {
    fn new() -> Self {
        Verdicts { errors: Vec::new() }
    }

    fn check<T>(&mut self, field: F, result: Result<T, Invalid>) -> Option<T> {
        result.map_err(|e| self.errors.push((field, e))).ok()
    }
}

/// Parses an RFC 3339 timestamp with an explicit offset and converts it to UTC.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, Invalid> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Invalid::new(format!(
                "{:?} is not an RFC 3339 timestamp such as 2026-03-01T08:30:00Z",
                s.chars().take(40).collect::<String>()
            ))
        })
}

/// Validates one payment of a merchant whose settlement currency is `currency`, as of `now`.
pub fn validate_payment(
    raw: &RawPayment<'_>,
    currency: Currency,
    now: DateTime<Utc>,
) -> Result<Payment, PaymentErrors> {
    let mut v = Verdicts::new();
    let id = v.check(PaymentField::PaymentId, PaymentId::parse(raw.payment_id));
    let occurred_at = v.check(
        PaymentField::OccurredAt,
        parse_timestamp(raw.occurred_at).and_then(|t| Payment::check_occurred_at(t, now)),
    );
    let paid_in = v.check(
        PaymentField::Currency,
        Currency::parse(raw.currency).and_then(|c| {
            if c == currency {
                Ok(c)
            } else {
                Err(Invalid::new(format!(
                    "{c} is not the merchant's settlement currency, {currency}"
                )))
            }
        }),
    );
    // Judge the amount by the currency it claims to be in, or by the merchant's if that is bad.
    let amount = v.check(
        PaymentField::Amount,
        Money::parse(raw.amount, paid_in.unwrap_or(currency)).and_then(Payment::check_amount),
    );
    let kind = v.check(PaymentField::Kind, PaymentKind::parse(raw.kind));
    let channel = v.check(PaymentField::Channel, Channel::parse(raw.channel));
    let payer_ref = v.check(PaymentField::PayerRef, PayerRef::parse(raw.payer_ref));
    match (id, occurred_at, paid_in, amount, kind, channel, payer_ref) {
        (
            Some(id),
            Some(occurred_at),
            Some(_),
            Some(amount),
            Some(kind),
            Some(channel),
            Some(payer_ref),
        ) => Ok(Payment {
            id,
            occurred_at,
            amount,
            kind,
            channel,
            payer_ref,
        }),
        _ => Err(v.errors),
    }
}

/// The fields of a merchant as text, before validation.
#[derive(Debug, Clone, Copy)]
pub struct RawMerchant<'a> {
    pub merchant_id: &'a str,
    pub name: &'a str,
    pub category: &'a str,
    pub region_type: &'a str,
    pub region_code: &'a str,
    pub currency: &'a str,
    pub onboarded_on: &'a str,
}

/// Validates a merchant profile; errors are keyed by field name.
pub fn validate_merchant(
    raw: &RawMerchant<'_>,
    today: NaiveDate,
) -> Result<Merchant, Vec<(&'static str, Invalid)>> {
    let mut v = Verdicts::new();
    let id = v.check("merchant_id", MerchantId::parse(raw.merchant_id));
    let name = v.check("name", Merchant::parse_name(raw.name));
    let category = v.check("category", Category::parse(raw.category));
    let region_type = v.check("region_type", RegionType::parse(raw.region_type));
    let region_code = v.check("region_code", RegionCode::parse(raw.region_code));
    let currency = v.check("currency", Currency::parse(raw.currency));
    let onboarded_on = v.check(
        "onboarded_on",
        NaiveDate::parse_from_str(raw.onboarded_on, "%Y-%m-%d")
            .map_err(|_| {
                Invalid::new(format!(
                    "{:?} is not a date in the form YYYY-MM-DD",
                    raw.onboarded_on
                ))
            })
            .and_then(|d| {
                let earliest = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
                if d > today {
                    Err(Invalid::new(format!("{d} is in the future")))
                } else if d < earliest {
                    Err(Invalid::new(format!("{d} is before 2000-01-01")))
                } else {
                    Ok(d)
                }
            }),
    );
    match (
        id,
        name,
        category,
        region_type,
        region_code,
        currency,
        onboarded_on,
    ) {
        (
            Some(id),
            Some(name),
            Some(category),
            Some(region_type),
            Some(region_code),
            Some(currency),
            Some(onboarded_on),
        ) => Ok(Merchant {
            id,
            name,
            category,
            region_type,
            region_code,
            currency,
            onboarded_on,
        }),
        _ => Err(v.errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>() -> RawPayment<'a> {
        RawPayment {
            payment_id: "p-1",
            occurred_at: "2026-03-01T08:30:00+08:00",
            amount: "12.50",
            currency: "CNY",
            kind: "sale",
            channel: "qr_code",
            payer_ref: "wx_1",
        }
    }

    fn now() -> DateTime<Utc> {
        parse_timestamp("2026-06-01T00:00:00Z").unwrap()
    }

    #[test]
    fn a_good_payment_is_converted_to_utc() {
        let p = validate_payment(&raw(), Currency::parse("CNY").unwrap(), now()).unwrap();
        assert_eq!(p.occurred_at.to_rfc3339(), "2026-03-01T00:30:00+00:00");
        assert_eq!(p.amount.minor(), 1250);
    }

    #[test]
    fn every_bad_field_is_reported_not_just_the_first() {
        let bad = RawPayment {
            payment_id: "p 1",
            amount: "-3",
            kind: "gift",
            ..raw()
        };
        let errors = validate_payment(&bad, Currency::parse("CNY").unwrap(), now()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            vec![
                PaymentField::PaymentId,
                PaymentField::Amount,
                PaymentField::Kind
            ]
        );
    }

    #[test]
    fn a_payment_in_another_currency_is_refused() {
        let usd = RawPayment {
            currency: "USD",
            ..raw()
        };
        let errors = validate_payment(&usd, Currency::parse("CNY").unwrap(), now()).unwrap_err();
        assert_eq!(errors[0].0, PaymentField::Currency);
        assert!(errors[0].1.0.contains("settlement currency, CNY"));
    }
}
