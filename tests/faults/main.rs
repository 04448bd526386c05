//! Fault tests: the store goes away and comes back, a process is killed mid-import, the SQLite
//! file is locked by another process, the service is stopped with SIGTERM mid-request. Each one
//! breaks something real — a private PostgreSQL cluster, the real binary — never a mock.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod import_killed;
mod postgres_outage;
mod private_postgres;
mod shutdown;
mod sqlite_locked;

use std::time::{Duration, Instant};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

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
