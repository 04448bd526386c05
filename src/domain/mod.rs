//! Validated domain types. Every value here was checked once, at the edge (`parse`/`new`), so code
//! that holds a `Money` or a `MerchantId` never has to ask whether it is valid.

mod ids;
mod loan;
mod merchant;
mod money;
mod payment;

pub use ids::{LoanId, MerchantId, PayerRef, PaymentId};
pub use loan::{Loan, LoanOutcome, OutcomeKind};
pub use merchant::{Category, Merchant, RegionCode, RegionType};
pub use money::{Currency, Money, MoneyJson};
pub use payment::{Channel, Payment, PaymentKind};

use std::fmt;

/// Why a value was refused. The message names the offending value and the rule it broke; the
/// caller adds the field path (`payments[3].amount.amount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}
