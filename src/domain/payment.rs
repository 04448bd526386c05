//! A payment as the platform reports it: a sale, or money going back to a payer (refund,
//! chargeback). Amounts are always positive; the kind says which way the money went.

use super::{Invalid, Money, PayerRef, PaymentId};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Result<Self, Invalid> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(Invalid::new(format!(
                        "{:?} is not a known {}; expected one of: {}",
                        other,
                        $what,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// Which way the money went.
    PaymentKind, "kind" {
        Sale => "sale",
        Refund => "refund",
        Chargeback => "chargeback",
    }
);

wire_enum!(
    /// How the payer paid.
    Channel, "channel" {
        QrCode => "qr_code",
        InApp => "in_app",
        MiniProgram => "mini_program",
        Pos => "pos",
        Other => "other",
    }
);

/// A validated payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: PaymentId,
    pub occurred_at: DateTime<Utc>,
    pub amount: Money,
    pub kind: PaymentKind,
    pub channel: Channel,
    pub payer_ref: PayerRef,
}

impl Payment {
    /// The largest amount one payment may carry, in minor units: 9,999,999,999.99 CNY. It keeps
    /// every per-merchant sum far inside `i64` in both databases.
    pub const MAX_AMOUNT_MINOR: i64 = 999_999_999_999;

    /// Earliest accepted `occurred_at`: mobile payments of the kind scored here did not exist
    /// before; an older date is a data error.
    pub fn earliest() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
    }

    /// How far in the future a payment may be dated, to allow for clock skew between the
    /// platform and us.
    pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

    pub fn check_amount(amount: Money) -> Result<Money, Invalid> {
        if !amount.is_positive() {
            return Err(Invalid::new(format!(
                "{} must be greater than zero (the kind says whether money came in or went back)",
                amount.amount()
            )));
        }
        if amount.minor() > Self::MAX_AMOUNT_MINOR {
            return Err(Invalid::new(format!(
                "{} is above the largest allowed amount, {}",
                amount.amount(),
                Money::from_minor(Self::MAX_AMOUNT_MINOR, amount.currency()).amount()
            )));
        }
        Ok(amount)
    }

    /// Checks that a payment time is plausible as of `now`, and exact to the microsecond (the
    /// precision both stores keep).
    pub fn check_occurred_at(
        t: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Invalid> {
        if t < Self::earliest() {
            return Err(Invalid::new(format!(
                "{} is before 2000-01-01T00:00:00Z",
                t.to_rfc3339()
            )));
        }
        if (t - now).num_seconds() > Self::MAX_CLOCK_SKEW_SECONDS {
            return Err(Invalid::new(format!(
                "{} is more than 5 minutes in the future",
                t.to_rfc3339()
            )));
        }
        if !t.timestamp_subsec_nanos().is_multiple_of(1_000) {
            return Err(Invalid::new(format!(
                "{} is more precise than a microsecond",
                t.to_rfc3339()
            )));
        }
        Ok(t)
    }

    /// The payment's effect on net sales, in minor units: a sale adds, a refund or a chargeback
    /// takes away.
    pub fn signed_minor(&self) -> i64 {
        match self.kind {
            PaymentKind::Sale => self.amount.minor(),
            PaymentKind::Refund | PaymentKind::Chargeback => -self.amount.minor(),
        }
    }

    /// Microseconds since the Unix epoch, as stored.
    pub fn occurred_at_micros(&self) -> i64 {
        self.occurred_at.timestamp_micros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    #[test]
    fn kinds_and_channels_round_trip_through_their_wire_names() {
        for k in PaymentKind::ALL {
            assert_eq!(PaymentKind::parse(k.as_str()).unwrap(), *k);
        }
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()).unwrap(), *c);
        }
        let err = Channel::parse("cash").unwrap_err();
        assert!(
            err.0.contains("qr_code, in_app, mini_program, pos, other"),
            "{err}"
        );
    }

    #[test]
    fn amounts_must_be_positive_and_at_most_the_ceiling() {
        let cny = Currency::parse("CNY").unwrap();
        assert!(Payment::check_amount(Money::from_minor(0, cny)).is_err());
        assert!(Payment::check_amount(Money::from_minor(-5, cny)).is_err());
        assert!(Payment::check_amount(Money::from_minor(Payment::MAX_AMOUNT_MINOR, cny)).is_ok());
        let err = Payment::check_amount(Money::from_minor(Payment::MAX_AMOUNT_MINOR + 1, cny))
            .unwrap_err();
        assert!(err.0.contains("9999999999.99"), "{err}");
    }

    #[test]
    fn occurred_at_must_be_plausible() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let ok = now + chrono::Duration::seconds(299);
        assert!(Payment::check_occurred_at(ok, now).is_ok());
        assert!(Payment::check_occurred_at(now + chrono::Duration::seconds(301), now).is_err());
        let old = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        assert!(Payment::check_occurred_at(old, now).is_err());
        let nanos = now + chrono::Duration::nanoseconds(1);
        assert!(Payment::check_occurred_at(nanos, now).is_err());
    }
}
