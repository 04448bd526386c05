//! `smecredit serve --demo`: on an empty database, a small simulated population with payment
//! histories up to today and loan outcomes, so that a first look shows real scores and
//! explanations; and at every start, one API key per role to try them with.

use crate::ingest::import::{ImportOptions, import_file};
use crate::keys::{NewKey, Role};
use crate::simulate::SimConfig;
use crate::store::Store;
use anyhow::Context;

/// Merchants in the demo population (ids `m000000` to `m000039`).
pub const DEMO_MERCHANTS: usize = 40;
pub const DEMO_SEED: u64 = 7;

/// Seeds the demo population if the database holds no merchant; returns whether it did.
pub async fn seed_if_empty(store: &Store) -> anyhow::Result<bool> {
    if store.merchant_count().await? > 0 {
        return Ok(false);
    }
    let dir = tempfile_dir()?;
    let config = SimConfig {
        merchants: DEMO_MERCHANTS,
        seed: DEMO_SEED,
        history_days: 400,
        // Histories that end today, so that the demo merchants are trading now.
        end: chrono::Utc::now().date_naive(),
        ..SimConfig::default()
    };
    let summary =
        crate::simulate::run(&config, &dir, false).context("simulating the demo population")?;
    let options = ImportOptions::default();
    for file in ["merchants.csv", "payments.csv", "loans.csv"] {
        import_file(store, &dir.join(file), &options).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    tracing::info!(
        merchants = summary.merchants,
        payments = summary.payments,
        loans = summary.loans,
        "demo population seeded (merchant ids m000000 to m{:06})",
        DEMO_MERCHANTS - 1
    );
    Ok(true)
}

/// The merchant the demo's merchant key speaks for.
pub const DEMO_MERCHANT: &str = "m000001";
/// Demo keys are named with this prefix; each start revokes the unrevoked ones of earlier starts.
pub const DEMO_KEY_PREFIX: &str = "demo-";

/// Issues one key per role (the merchant key for [`DEMO_MERCHANT`]), after revoking the demo keys
/// of earlier starts: their secrets were shown once and are not stored, so a start cannot show
/// them again, and old demo keys should not pile up valid.
pub async fn issue_keys(store: &Store) -> anyhow::Result<Vec<NewKey>> {
    for old in crate::keys::list(store).await? {
        if old.name.starts_with(DEMO_KEY_PREFIX) && old.revoked_at.is_none() {
            crate::keys::revoke(store, &old.key_id).await?;
        }
    }
    let mut keys = Vec::new();
    for role in Role::ALL {
        let merchant = (role == Role::Merchant).then_some(DEMO_MERCHANT);
        let name = match merchant {
            Some(m) => format!("{DEMO_KEY_PREFIX}{role}-{m}"),
            None => format!("{DEMO_KEY_PREFIX}{role}"),
        };
        keys.push(crate::keys::create(store, role, merchant, Some(&name)).await?);
    }
    Ok(keys)
}

/// The demo keys as shell variables, to paste into a terminal.
pub fn keys_banner(keys: &[NewKey]) -> String {
    let mut s = String::from(
        "# Demo API keys, shown this once (the next `serve --demo` revokes them and issues new ones).\n\
         # Paste into the terminal you send requests from:\n",
    );
    for k in keys {
        let bound = k
            .info
            .merchant_id
            .as_ref()
            .map_or(String::new(), |m| format!(", merchant {m} only"));
        s.push_str(&format!(
            "export {}_KEY={}   # {}{bound}\n",
            k.info.role.as_str().to_ascii_uppercase(),
            k.secret.expose(),
            k.info.key_id,
        ));
    }
    s
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("smecredit-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyRing;
    use crate::store::StoreOptions;
    use std::time::Duration;

    #[tokio::test]
    async fn each_start_issues_a_key_per_role_and_revokes_the_previous_starts() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
        let ring = KeyRing::new(store.clone(), Duration::ZERO);
        let first = issue_keys(&store).await.unwrap();
        let roles: Vec<Role> = first.iter().map(|k| k.info.role).collect();
        assert_eq!(roles, Role::ALL);
        let merchant = first
            .iter()
            .find(|k| k.info.role == Role::Merchant)
            .unwrap();
        assert_eq!(
            merchant.info.merchant_id.as_ref().map(|m| m.as_str()),
            Some(DEMO_MERCHANT)
        );
        let banner = keys_banner(&first);
        for k in &first {
            assert!(banner.contains(&format!(
                "export {}_KEY={}",
                k.info.role.as_str().to_ascii_uppercase(),
                k.secret.expose()
            )));
        }

        let second = issue_keys(&store).await.unwrap();
        for k in &first {
            assert_eq!(ring.authenticate(k.secret.expose()).await.unwrap(), None);
        }
        for k in &second {
            assert!(
                ring.authenticate(k.secret.expose())
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    }
}
