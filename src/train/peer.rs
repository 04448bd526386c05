//! Peer-relative candidates of catalog datasets: the repeat customers' share, the refund share
//! and the chargeback share, each read relative to the merchant's category
//! ([`crate::scorecard::PeerRelative`]); the repeat share also relative to how long the merchant
//! has traded.
//!
//! Why these three: at the same health, the kinds of business differ in these rates by more
//! than health moves them (in the simulator the repeat-customer logit at health 0 runs from −0.4
//! for retail to 1.1 for groceries, and the refund rate from 0.4 % to 2.5 %; real categories
//! differ the same way). Read raw, a grocery's repeat customers look like health and a retail
//! shop's look like risk. Relative to its category, the rate says how the merchant trades
//! compared with shops like it: that is what the health behind it moves. Scale and activity
//! features stay raw (they carry the merchant's own size and region, which the category does
//! not explain). `models/sc-2026.12-sim44/FINDINGS.md` measures what this changes: the AUC, and
//! the approval rates by category and region.
//!
//! Why the repeat share also by days of history ([`HISTORY_BANDS`]): a repeat customer is one
//! with two sales in the 90-day window, and a merchant that has traded for 40 days has had 40
//! days for its customers to come back. Its share reads low for that reason alone: on the
//! development rows of `sc-2026.12-sim44`'s data, merchants under 30 days of history read a
//! median 0.69 below their category on the log-odds scale (30–59 days: 0.18; 60–89: 0.00),
//! while they defaulted less (2.8 % against 5.2 % for 90 days and more). Read against merchants
//! of its category that have traded about as long, a young shop is no longer scored down for
//! being young. `models/sc-2026.12-sim45/FINDINGS.md` measures what it changes.
//!
//! The references are medians over the **development rows only** (the training rows before the
//! calibration slice): nothing from the calibration slice or the test window shapes them, so
//! the out-of-time evaluation stays out of time. Cross-validation folds share those references
//! (a median over 24,000 rows hardly moves with a fifth of them).

use super::table::{ColumnData, FeatureColumn, Table};
use crate::features::{CATALOG, FeatureId};
use crate::scorecard::{Artifact, PeerRelative, PeerScale, Peers, relative_name};
use anyhow::{anyhow, bail};
use std::collections::BTreeMap;

/// The segment column whose values are the peer groups.
pub const GROUP_BY: &str = crate::scorecard::PEER_GROUP_BY;

/// The candidates: source feature, scale, floor, and whether the peers are also grouped by
/// days of history. The floors sit below the smallest rates that occur (a refund share of
/// 0.1 %, a chargeback share of 0.01 %), so that a merchant without any still reads as the best
/// rather than as an outlier. Refund and chargeback shares are ratios of amounts of the same
/// days, which a short history does not bias, so they are grouped by category alone.
pub const CANDIDATES: [(FeatureId, PeerScale, f64, bool); 3] = [
    (
        FeatureId::RepeatPayerSalesShare90d,
        PeerScale::Logit,
        1e-4,
        true,
    ),
    (FeatureId::RefundShare90d, PeerScale::Log, 1e-3, false),
    (FeatureId::ChargebackShare180d, PeerScale::Log, 1e-4, false),
];

/// The history bands of the repeat share: under 30 days of history, 30–59, 60–89, 90 and more
/// (the last covers the whole 90-day window).
pub const HISTORY_BANDS: [u32; 3] = [30, 60, 90];

/// Fewest development rows with a value for a category and band to get a reference of its
/// own; fewer are read against their whole category.
pub const MIN_BAND_ROWS: usize = 50;

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn numeric<'a>(table: &'a Table, name: &str) -> anyhow::Result<&'a [Option<f64>]> {
    match table
        .features
        .iter()
        .find(|c| c.name == name)
        .map(|c| &c.data)
    {
        Some(ColumnData::Numeric(v)) => Ok(v),
        Some(ColumnData::Categorical(_)) => bail!("column {name:?} is not numeric"),
        None => bail!("the data has no column {name:?}"),
    }
}

fn groups(table: &Table) -> anyhow::Result<&[String]> {
    table
        .segments
        .iter()
        .find(|(n, _)| n == GROUP_BY)
        .map(|(_, v)| v.as_slice())
        .ok_or_else(|| anyhow!("peer-relative features need the segment column {GROUP_BY:?}"))
}

/// The days of history of each row (`None` where unknown, or when `needed` is false and the
/// table may lack the column).
fn days_of_history(table: &Table, needed: bool) -> anyhow::Result<Vec<Option<f64>>> {
    if !needed {
        return Ok(vec![None; table.label.len()]);
    }
    Ok(numeric(table, CATALOG[FeatureId::DaysOfHistory as usize].name)?.to_vec())
}

/// Appends the column of a peer-relative feature to `table`.
fn push_column(table: &mut Table, peer: &PeerRelative) -> anyhow::Result<()> {
    let days = days_of_history(table, peer.by_history())?;
    let source = numeric(table, &peer.source)?;
    let groups = groups(table)?;
    let values: Vec<Option<f64>> = source
        .iter()
        .zip(groups)
        .zip(days)
        .map(|((x, g), d)| peer.value(*x, Peers::new(Some(g), d)))
        .collect();
    let direction = FeatureId::from_name(&peer.source).map(|id| CATALOG[id as usize].direction);
    table.features.push(FeatureColumn {
        name: relative_name(&peer.source, &peer.group_by),
        data: ColumnData::Numeric(values),
        direction,
    });
    Ok(())
}

/// Adds the peer-relative candidates to a catalog table, their references taken from the rows
/// `dev` (the development rows); returns their definitions.
pub fn add_candidates(table: &mut Table, dev: &[usize]) -> anyhow::Result<Vec<PeerRelative>> {
    let mut out = Vec::with_capacity(CANDIDATES.len());
    for (id, scale, floor, by_history) in CANDIDATES {
        let source_name = CATALOG[id as usize].name;
        let days = days_of_history(table, by_history)?;
        let source = numeric(table, source_name)?;
        let groups = groups(table)?;
        let mut peer = PeerRelative {
            source: source_name.to_string(),
            scale,
            floor,
            group_by: GROUP_BY.to_string(),
            references: BTreeMap::new(),
            default_reference: 0.0,
            history_bands: if by_history {
                HISTORY_BANDS.to_vec()
            } else {
                Vec::new()
            },
        };
        let mut by_group: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut by_band: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut all = Vec::with_capacity(dev.len());
        for &r in dev {
            if let Some(x) = source[r].filter(|x| x.is_finite()) {
                let y = scale.apply(x, floor);
                by_group.entry(groups[r].clone()).or_default().push(y);
                if let Some(key) = days[r].and_then(|d| peer.band_key(&groups[r], d)) {
                    by_band.entry(key).or_default().push(y);
                }
                all.push(y);
            }
        }
        peer.default_reference = median(all)
            .ok_or_else(|| anyhow!("{source_name} is missing on every development row"))?;
        let bands = by_band
            .into_iter()
            .filter(|(_, v)| v.len() >= MIN_BAND_ROWS);
        peer.references = by_group
            .into_iter()
            .chain(bands)
            .filter_map(|(g, v)| median(v).map(|m| (g, m)))
            .collect();
        push_column(table, &peer)?;
        out.push(peer);
    }
    Ok(out)
}

/// Adds the columns the artifact's peer-relative features read, with the artifact's own
/// references (evaluating a model on another dataset).
pub fn add_artifact_columns(table: &mut Table, artifact: &Artifact) -> anyhow::Result<()> {
    for peer in artifact.features.iter().filter_map(|f| f.relative.as_ref()) {
        if !table
            .features
            .iter()
            .any(|c| c.name == relative_name(&peer.source, &peer.group_by))
        {
            push_column(table, peer)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn table(repeat: &[Option<f64>], category: &[&str]) -> Table {
        table_with_history(repeat, category, &vec![Some(400.0); repeat.len()])
    }

    fn table_with_history(
        repeat: &[Option<f64>],
        category: &[&str],
        days: &[Option<f64>],
    ) -> Table {
        let n = repeat.len();
        let col = |name: &str, v: Vec<Option<f64>>| FeatureColumn {
            name: name.to_string(),
            data: ColumnData::Numeric(v),
            direction: None,
        };
        Table {
            features: vec![
                col("repeat_payer_sales_share_90d", repeat.to_vec()),
                col("refund_share_90d", vec![Some(0.01); n]),
                col("chargeback_share_180d", vec![Some(0.0); n]),
                col("days_of_history", days.to_vec()),
            ],
            label: vec![false; n],
            label_name: "label".into(),
            dates: Some(vec![NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(); n]),
            ids: None,
            segments: vec![(
                "category".into(),
                category.iter().map(|s| s.to_string()).collect(),
            )],
            catalog: true,
            sha256: String::new(),
        }
    }

    #[test]
    fn references_are_medians_of_the_development_rows_per_category() {
        // logit(0.5) = 0, logit(0.8) = ln 4, logit(0.2) = −ln 4; the last row is not a
        // development row and must not move the grocery median
        let mut t = table(
            &[Some(0.5), Some(0.8), Some(0.2), None, Some(0.99)],
            &["grocery", "grocery", "retail", "retail", "grocery"],
        );
        let peers = add_candidates(&mut t, &[0, 1, 2, 3]).unwrap();
        let repeat = &peers[0];
        assert_eq!(repeat.source, "repeat_payer_sales_share_90d");
        let ln4 = 4f64.ln();
        assert!((repeat.references["grocery"] - ln4 / 2.0).abs() < 1e-12);
        assert!((repeat.references["retail"] + ln4).abs() < 1e-12);
        // all development rows with a value: −ln 4, 0, ln 4 → median 0
        assert!(repeat.default_reference.abs() < 1e-12);
        let ColumnData::Numeric(col) = &t.features[4].data else {
            panic!("numeric");
        };
        assert_eq!(
            t.features[4].name,
            "repeat_payer_sales_share_90d_vs_category"
        );
        assert_eq!(
            t.features[4].direction,
            Some(crate::features::Direction::HigherIsSafer)
        );
        // a typical retail shop (20 % repeat sales) reads 0, like a typical grocery
        assert!(col[2].unwrap().abs() < 1e-12);
        assert!((col[0].unwrap() + ln4 / 2.0).abs() < 1e-12);
        assert_eq!(col[3], None, "missing stays missing");
        // an unseen category reads against all merchants
        assert!(
            (repeat
                .value(Some(0.8), Peers::new(Some("bakery"), Some(400.0)))
                .unwrap()
                - ln4)
                .abs()
                < 1e-12
        );
        // the inverse gives the source value back
        assert!(
            (repeat.source_value(col[1].unwrap(), Peers::new(Some("grocery"), Some(400.0))) - 0.8)
                .abs()
                < 1e-12
        );
        // a chargeback share of 0 sits at the floor, the same for every category
        let cb = &peers[2];
        assert_eq!(cb.references["grocery"], 1e-4f64.ln());
    }

    #[test]
    fn the_repeat_share_of_a_young_merchant_reads_against_merchants_as_young() {
        // 60 groceries under 30 days at a 20 % repeat share, 60 established ones at 50 %
        let young = MIN_BAND_ROWS + 10;
        let mut repeat = vec![Some(0.2); young];
        repeat.extend(vec![Some(0.5); young]);
        let mut days = vec![Some(10.0); young];
        days.extend(vec![Some(400.0); young]);
        let category = vec!["grocery"; 2 * young];
        let mut t = table_with_history(&repeat, &category, &days);
        let dev: Vec<usize> = (0..2 * young).collect();
        let peers = add_candidates(&mut t, &dev).unwrap();
        let r = &peers[0];
        assert_eq!(r.history_bands, HISTORY_BANDS.to_vec());
        let logit = |p: f64| (p / (1.0 - p)).ln();
        assert!((r.references["grocery/0-29d"] - logit(0.2)).abs() < 1e-12);
        assert!((r.references["grocery/90d+"]).abs() < 1e-12);
        // the 30–59 and 60–89 day bands had no rows: no reference of their own
        assert!(!r.references.contains_key("grocery/30-59d"));
        let ColumnData::Numeric(col) = &t.features[4].data else {
            panic!("numeric");
        };
        // both kinds read as typical of their peers
        assert!(col[0].unwrap().abs() < 1e-12 && col[young].unwrap().abs() < 1e-12);
        // refund and chargeback shares have no bands
        assert!(peers[1].history_bands.is_empty() && peers[2].history_bands.is_empty());
        // a band with fewer rows than MIN_BAND_ROWS has none either
        let mut t = table_with_history(&repeat, &category, &days);
        let few: Vec<usize> = (young - MIN_BAND_ROWS + 1..2 * young).collect();
        let peers = add_candidates(&mut t, &few).unwrap();
        assert!(!peers[0].references.contains_key("grocery/0-29d"));
    }
}
