//! From what the platform sends (JSON batches, CSV files) to validated payments and merchants.
//! Both doors use the same checks, so a row the API refuses is refused by the import too.

pub mod import;

use crate::domain::{
    Category, Channel, Currency, Invalid, Loan, LoanId, LoanOutcome, Merchant, MerchantId, Money,
    OutcomeKind, PayerRef, Payment, PaymentId, PaymentKind, RegionCode, RegionType,
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

/// The currency a payment, loan or request is in: an ISO 4217 code that must be the merchant's
/// settlement currency.
pub fn in_settlement_currency(code: &str, settlement: Currency) -> Result<Currency, Invalid> {
    let c = Currency::parse(code)?;
    if c == settlement {
        Ok(c)
    } else {
        Err(Invalid::new(format!(
            "{c} is not the merchant's settlement currency, {settlement}"
        )))
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
        in_settlement_currency(raw.currency, currency),
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
    let onboarded_on = v.check("onboarded_on", parse_past_date(raw.onboarded_on, today));
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

/// Parses a `YYYY-MM-DD` date no earlier than 2000-01-01 and no later than `today`.
pub fn parse_past_date(s: &str, today: NaiveDate) -> Result<NaiveDate, Invalid> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        Invalid::new(format!(
            "{:?} is not a date in the form YYYY-MM-DD",
            s.chars().take(40).collect::<String>()
        ))
    })?;
    let earliest = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
    if d > today {
        Err(Invalid::new(format!("{d} is in the future")))
    } else if d < earliest {
        Err(Invalid::new(format!("{d} is before 2000-01-01")))
    } else {
        Ok(d)
    }
}

/// The fields of a loan as text, before validation.
#[derive(Debug, Clone, Copy)]
pub struct RawLoan<'a> {
    pub loan_id: &'a str,
    pub merchant_id: &'a str,
    pub disbursed_on: &'a str,
    pub principal: &'a str,
    pub currency: &'a str,
    pub term_days: &'a str,
}

/// Validates a loan to a merchant whose settlement currency is `currency`.
pub fn validate_loan(
    raw: &RawLoan<'_>,
    currency: Currency,
    today: NaiveDate,
) -> Result<Loan, Vec<(&'static str, Invalid)>> {
    let mut v = Verdicts::new();
    let id = v.check("loan_id", LoanId::parse(raw.loan_id));
    let merchant_id = v.check("merchant_id", MerchantId::parse(raw.merchant_id));
    let disbursed_on = v.check("disbursed_on", parse_past_date(raw.disbursed_on, today));
    let lent_in = v.check("currency", in_settlement_currency(raw.currency, currency));
    let principal = v.check(
        "principal",
        Money::parse(raw.principal, lent_in.unwrap_or(currency)).and_then(|m| {
            if m.is_positive() {
                Ok(m)
            } else {
                Err(Invalid::new(format!(
                    "{} must be greater than zero",
                    m.amount()
                )))
            }
        }),
    );
    let term_days = v.check(
        "term_days",
        raw.term_days
            .parse::<i64>()
            .map_err(|_| Invalid::new(format!("{:?} is not a whole number of days", raw.term_days)))
            .and_then(Loan::check_term),
    );
    match (id, merchant_id, disbursed_on, lent_in, principal, term_days) {
        (
            Some(id),
            Some(merchant_id),
            Some(disbursed_on),
            Some(_),
            Some(principal),
            Some(term_days),
        ) => Ok(Loan {
            id,
            merchant_id,
            disbursed_on,
            principal,
            term_days,
        }),
        _ => Err(v.errors),
    }
}

/// Validates the outcome of a loan disbursed on `disbursed_on`.
pub fn validate_outcome(
    outcome: &str,
    defaulted_on: Option<&str>,
    disbursed_on: NaiveDate,
    today: NaiveDate,
) -> Result<LoanOutcome, Vec<(&'static str, Invalid)>> {
    let mut v = Verdicts::new();
    let kind = v.check("outcome", OutcomeKind::parse(outcome));
    let on = match defaulted_on {
        Some(s) => v.check("defaulted_on", parse_past_date(s, today)).map(Some),
        None => Some(None),
    };
    match (kind, on) {
        (Some(kind), Some(on)) => {
            LoanOutcome::new(kind, on, disbursed_on, today).map_err(|e| vec![("defaulted_on", e)])
        }
        _ => Err(v.errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loan_in_another_currency_or_with_a_bad_term_is_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let raw = RawLoan {
            loan_id: "L-1",
            merchant_id: "m-1",
            disbursed_on: "2026-01-10",
            principal: "5000.00",
            currency: "CNY",
            term_days: "90",
        };
        let cny = Currency::parse("CNY").unwrap();
        assert_eq!(
            validate_loan(&raw, cny, today).unwrap().principal.minor(),
            500_000
        );
        let bad = RawLoan {
            currency: "USD",
            term_days: "0",
            principal: "0",
            ..raw
        };
        let fields: Vec<_> = validate_loan(&bad, cny, today)
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, ["currency", "principal", "term_days"]);
    }

    #[test]
    fn an_outcome_before_disbursement_is_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let disbursed = NaiveDate::from_ymd_opt(2026, 1, 10).unwrap();
        let errors =
            validate_outcome("defaulted", Some("2026-01-01"), disbursed, today).unwrap_err();
        assert_eq!(errors[0].0, "defaulted_on");
        assert!(validate_outcome("repaid", None, disbursed, today).is_ok());
        assert_eq!(
            validate_outcome("lost", None, disbursed, today).unwrap_err()[0].0,
            "outcome"
        );
    }

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
