//! Integration tests: the real application on port 0, over HTTP, against a fresh SQLite file and,
//! when `SMECREDIT_TEST_POSTGRES_URL` is set, a fresh PostgreSQL database per test.

mod helpers;

mod access;
mod eligibility;
mod features;
mod health;
mod idempotency;
mod import;
mod limits;
mod loans;
mod logs;
mod merchants;
mod metrics;
mod openapi;
mod payments;
mod rate_limits;
mod scores;
mod simulated;
