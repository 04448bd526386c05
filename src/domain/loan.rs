//! Loans and their outcomes: the labels for retraining.

use super::payment::wire_enum;
use super::{Invalid, LoanId, MerchantId, Money};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A loan as disbursed to a merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loan {
    pub id: LoanId,
    pub merchant_id: MerchantId,
    pub disbursed_on: NaiveDate,
    /// In the merchant's settlement currency.
    pub principal: Money,
    pub term_days: u32,
}

impl Loan {
    pub const MAX_TERM_DAYS: u32 = 3_650;

    pub fn check_term(days: i64) -> Result<u32, Invalid> {
        if (1..=i64::from(Self::MAX_TERM_DAYS)).contains(&days) {
            Ok(days as u32)
        } else {
            Err(Invalid::new(format!(
                "{days} is not a term in days between 1 and {}",
                Self::MAX_TERM_DAYS
            )))
        }
    }

    /// The last day of the term.
    pub fn due_on(&self) -> NaiveDate {
        self.disbursed_on + chrono::Days::new(u64::from(self.term_days))
    }
}

wire_enum!(
    /// What became of a loan.
    OutcomeKind, "outcome" {
        Repaid => "repaid",
        Defaulted => "defaulted",
        WrittenOff => "written_off",
    }
);

/// What became of a loan, with the day it went bad when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoanOutcome {
    Repaid,
    Defaulted { on: NaiveDate },
    WrittenOff { on: NaiveDate },
}

impl LoanOutcome {
    /// Builds an outcome, checking that a bad outcome has its date, a repaid one has none, and
    /// the date is neither before the disbursement nor after `today`.
    pub fn new(
        kind: OutcomeKind,
        defaulted_on: Option<NaiveDate>,
        disbursed_on: NaiveDate,
        today: NaiveDate,
    ) -> Result<LoanOutcome, Invalid> {
        match (kind, defaulted_on) {
            (OutcomeKind::Repaid, None) => Ok(LoanOutcome::Repaid),
            (OutcomeKind::Repaid, Some(_)) => {
                Err(Invalid::new("a repaid loan has no defaulted_on"))
            }
            (_, None) => Err(Invalid::new(format!("a {kind} loan needs defaulted_on"))),
            (_, Some(on)) if on < disbursed_on => Err(Invalid::new(format!(
                "{on} is before the loan was disbursed ({disbursed_on})"
            ))),
            (_, Some(on)) if on > today => Err(Invalid::new(format!("{on} is in the future"))),
            (OutcomeKind::Defaulted, Some(on)) => Ok(LoanOutcome::Defaulted { on }),
            (OutcomeKind::WrittenOff, Some(on)) => Ok(LoanOutcome::WrittenOff { on }),
        }
    }

    pub fn kind(&self) -> OutcomeKind {
        match self {
            LoanOutcome::Repaid => OutcomeKind::Repaid,
            LoanOutcome::Defaulted { .. } => OutcomeKind::Defaulted,
            LoanOutcome::WrittenOff { .. } => OutcomeKind::WrittenOff,
        }
    }

    pub fn defaulted_on(&self) -> Option<NaiveDate> {
        match self {
            LoanOutcome::Repaid => None,
            LoanOutcome::Defaulted { on } | LoanOutcome::WrittenOff { on } => Some(*on),
        }
    }

    /// Whether the loan went bad (the training label).
    pub fn is_default(&self) -> bool {
        !matches!(self, LoanOutcome::Repaid)
    }

    /// Whether `next` may replace this outcome: the same outcome again, or a default that was
    /// later written off on the same date.
    pub fn may_become(&self, next: &LoanOutcome) -> bool {
        self == next
            || matches!((self, next), (LoanOutcome::Defaulted { on: a }, LoanOutcome::WrittenOff { on: b }) if a == b)
    }
}

impl fmt::Display for LoanOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.defaulted_on() {
            Some(on) => write!(f, "{} on {on}", self.kind()),
            None => write!(f, "{}", self.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn outcomes_check_their_dates() {
        let (disbursed, today) = (d("2026-01-10"), d("2026-06-01"));
        assert_eq!(
            LoanOutcome::new(OutcomeKind::Repaid, None, disbursed, today),
            Ok(LoanOutcome::Repaid)
        );
        assert!(LoanOutcome::new(OutcomeKind::Repaid, Some(today), disbursed, today).is_err());
        assert!(LoanOutcome::new(OutcomeKind::Defaulted, None, disbursed, today).is_err());
        let early = LoanOutcome::new(
            OutcomeKind::Defaulted,
            Some(d("2026-01-09")),
            disbursed,
            today,
        )
        .unwrap_err();
        assert!(early.0.contains("before the loan was disbursed"), "{early}");
        assert!(
            LoanOutcome::new(
                OutcomeKind::WrittenOff,
                Some(d("2026-06-02")),
                disbursed,
                today
            )
            .is_err()
        );
        let bad = LoanOutcome::new(
            OutcomeKind::Defaulted,
            Some(d("2026-03-01")),
            disbursed,
            today,
        )
        .unwrap();
        assert!(bad.is_default());
        assert!(bad.may_become(&LoanOutcome::WrittenOff {
            on: d("2026-03-01")
        }));
        assert!(!bad.may_become(&LoanOutcome::Repaid));
        assert!(!LoanOutcome::Repaid.may_become(&bad));
    }

    #[test]
    fn terms_are_bounded() {
        assert_eq!(Loan::check_term(90), Ok(90));
        assert!(Loan::check_term(0).is_err());
        assert!(Loan::check_term(3_651).is_err());
    }
}
