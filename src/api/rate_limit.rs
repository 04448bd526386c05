//! Rate limits per API key, with a rate and a burst per role (GCRA, the `governor` crate).
//!
//! The limits live in each replica's memory: behind a load balancer with N replicas, a key may
//! reach up to N times its limit.

use crate::keys::{Caller, Role};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// One role's limit: a sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoleLimit {
    /// Requests per second a key may sustain; 0 means no limit.
    pub per_second: f64,
    /// Requests a key may make at once after being idle.
    pub burst: u32,
}

const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 1_000_000.0;

impl RoleLimit {
    /// Whether the limit makes sense; the error names the setting at fault (`per_second` or
    /// `burst`).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let r = self.per_second;
        if !(r == 0.0 || (MIN_RATE..=MAX_RATE).contains(&r)) {
            return Err((
                "per_second",
                format!("must be 0 (no limit) or between {MIN_RATE} and {MAX_RATE}, got {r}"),
            ));
        }
        if r > 0.0 && self.burst == 0 {
            return Err(("burst", "must be at least 1".to_string()));
        }
        Ok(())
    }

    fn quota(&self) -> Option<Quota> {
        if self.per_second == 0.0 {
            return None;
        }
        let burst = NonZeroU32::new(self.burst)?;
        Quota::with_period(Duration::from_secs_f64(1.0 / self.per_second))
            .map(|q| q.allow_burst(burst))
    }
}

/// A limiter per role, keyed by the key's id.
pub struct RateLimits {
    limiters: Vec<(Role, Option<DefaultKeyedRateLimiter<String>>)>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl RateLimits {
    pub fn new(limits: &[(Role, RoleLimit)]) -> RateLimits {
        RateLimits {
            limiters: limits
                .iter()
                .map(|(role, limit)| (*role, limit.quota().map(RateLimiter::keyed)))
                .collect(),
        }
    }

    /// Counts a request of `caller`; `Err` with the whole seconds to wait (rounded up, at least
    /// 1) when its limit is spent.
    pub fn check(&self, caller: &Caller) -> Result<(), u64> {
        let Some((_, Some(limiter))) = self.limiters.iter().find(|(r, _)| *r == caller.role) else {
            return Ok(());
        };
        limiter.check_key(&caller.key_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            (wait.as_secs_f64().ceil() as u64).max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(key_id: &str, role: Role) -> Caller {
        Caller {
            key_id: key_id.into(),
            principal: key_id.into(),
            name: key_id.into(),
            role,
            merchant_id: None,
        }
    }

    #[test]
    fn a_key_gets_its_burst_then_waits_and_others_are_unaffected() {
        // One request per 100 s, burst 3: the fourth request waits about 100 s.
        let limits = RateLimits::new(&[
            (
                Role::Lender,
                RoleLimit {
                    per_second: 0.01,
                    burst: 3,
                },
            ),
            (
                Role::Platform,
                RoleLimit {
                    per_second: 0.0,
                    burst: 0,
                },
            ),
        ]);
        let a = caller("key_a", Role::Lender);
        for _ in 0..3 {
            assert_eq!(limits.check(&a), Ok(()));
        }
        let wait = limits.check(&a).unwrap_err();
        assert!((99..=100).contains(&wait), "{wait}");
        assert_eq!(limits.check(&caller("key_b", Role::Lender)), Ok(()));
        let platform = caller("key_p", Role::Platform);
        for _ in 0..1000 {
            assert_eq!(limits.check(&platform), Ok(()), "0 means no limit");
        }
        assert_eq!(
            limits.check(&caller("key_m", Role::Merchant)),
            Ok(()),
            "no limit configured"
        );
    }

    #[test]
    fn nonsense_limits_are_refused() {
        let l = |per_second, burst| RoleLimit { per_second, burst }.check();
        assert!(l(0.0, 0).is_ok());
        assert!(l(10.0, 20).is_ok());
        assert_eq!(l(10.0, 0).unwrap_err().0, "burst");
        assert_eq!(l(-1.0, 5).unwrap_err().0, "per_second");
        assert_eq!(l(f64::NAN, 5).unwrap_err().0, "per_second");
        assert_eq!(l(f64::INFINITY, 5).unwrap_err().0, "per_second");
    }
}
