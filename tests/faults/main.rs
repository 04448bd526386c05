//! Fault tests: the service is stopped with SIGTERM mid-request. Each one breaks something real
//! — the real binary — never a mock.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod shutdown;

use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics with `what` after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
