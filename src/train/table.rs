//! Reading a feature table from CSV: either a smecredit dataset (catalog features, detected by
//! its header) or any table with a binary label column.
//!
//! * A header row is required.
//! * Missing values: an empty field, `NA`, `N/A`, `NaN`, `null`, `?` (any case, surrounding
//!   spaces ignored). Non-finite numbers (`inf`) are missing too.
//! * A column is **numeric** when every non-missing value parses as a number (Rust's `f64`
//!   grammar: `1`, `-2.5`, `1e-3`, `3.2E+05`); otherwise it is **categorical** and its values are
//!   kept as trimmed strings.
//! * The label is `1`/`0`, `true`/`false`, `yes`/`no` (any case), or, when `positive_label` is
//!   given, `true` exactly for that value (e.g. `bad`). A row with a missing label is an error.
//! * `id_columns` are ignored; `date_column` (`YYYY-MM-DD`, or the date part of an RFC 3339 time)
//!   drives the out-of-time split; `segment_columns` are reported on, never model inputs (a
//!   catalog dataset's `category` is the peer group of the peer-relative features, `super::peer`).

use crate::features::{CATALOG, Direction};
use anyhow::{Context, anyhow, bail};
use chrono::NaiveDate;
use std::path::Path;

/// The values of one candidate feature.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Numeric(Vec<Option<f64>>),
    Categorical(Vec<Option<String>>),
}

/// One candidate feature.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureColumn {
    pub name: String,
    pub data: ColumnData,
    /// The catalog's risk direction for catalog features; `None` = choose the best monotone one.
    pub direction: Option<Direction>,
}

/// A feature table in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub features: Vec<FeatureColumn>,
    pub label: Vec<bool>,
    pub label_name: String,
    pub dates: Option<Vec<NaiveDate>>,
    pub ids: Option<Vec<String>>,
    /// (segment column, value per row).
    pub segments: Vec<(String, Vec<String>)>,
    /// True when the table is a smecredit dataset with the catalog features.
    pub catalog: bool,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.label.len()
    }

    /// The same table restricted to `idx` (in that order).
    pub fn subset(&self, idx: &[usize]) -> Table {
        let pick = |v: &Vec<String>| idx.iter().map(|&i| v[i].clone()).collect::<Vec<_>>();
        Table {
            features: self
                .features
                .iter()
                .map(|f| FeatureColumn {
                    name: f.name.clone(),
                    direction: f.direction,
                    data: match &f.data {
                        ColumnData::Numeric(v) => {
                            ColumnData::Numeric(idx.iter().map(|&i| v[i]).collect())
                        }
                        ColumnData::Categorical(v) => {
                            ColumnData::Categorical(idx.iter().map(|&i| v[i].clone()).collect())
                        }
                    },
                })
                .collect(),
            label: idx.iter().map(|&i| self.label[i]).collect(),
            label_name: self.label_name.clone(),
            dates: self
                .dates
                .as_ref()
                .map(|d| idx.iter().map(|&i| d[i]).collect()),
            ids: self.ids.as_ref().map(pick),
            segments: self
                .segments
                .iter()
                .map(|(n, v)| (n.clone(), pick(v)))
                .collect(),
            catalog: self.catalog,
            sha256: self.sha256.clone(),
        }
    }
}

/// How to read a table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableOptions {
    /// Label column; default `label`.
    pub label: Option<String>,
    /// The label value meaning "defaulted" when the label is not 0/1-like.
    pub positive_label: Option<String>,
    pub id_columns: Vec<String>,
    pub date_column: Option<String>,
    pub segment_columns: Vec<String>,
    /// Columns neither features nor anything else.
    pub exclude_columns: Vec<String>,
}

/// Whether a cell is a missing value.
pub fn is_missing(s: &str) -> bool {
    let t = s.trim();
    t.is_empty()
        || t == "?"
        || ["na", "n/a", "nan", "null"]
            .iter()
            .any(|m| t.eq_ignore_ascii_case(m))
}

/// A number, or `None` when the cell is not one.
pub fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

fn parse_label(s: &str, positive: Option<&str>, line: usize) -> anyhow::Result<bool> {
    let t = s.trim();
    if is_missing(t) {
        bail!("line {line}: the label is missing");
    }
    if let Some(p) = positive {
        return Ok(t == p);
    }
    for (yes, no) in [("1", "0"), ("true", "false"), ("yes", "no")] {
        if t.eq_ignore_ascii_case(yes) {
            return Ok(true);
        }
        if t.eq_ignore_ascii_case(no) {
            return Ok(false);
        }
    }
    if let Some(x) = parse_number(t) {
        if x == 1.0 {
            return Ok(true);
        }
        if x == 0.0 {
            return Ok(false);
        }
    }
    bail!(
        "line {line}: label {t:?} is not 0/1, true/false or yes/no; name the value meaning default with positive_label"
    )
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let t = s.trim();
    NaiveDate::parse_from_str(t.get(..10).unwrap_or(t), "%Y-%m-%d").ok()
}

/// Reads a CSV feature table.
pub fn read_table(path: &Path, opts: &TableOptions) -> anyhow::Result<Table> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read table {}", path.display()))?;
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    read_table_bytes(&bytes, opts, sha256).with_context(|| format!("{}", path.display()))
}

/// [`read_table`] on bytes already in memory.
pub fn read_table_bytes(
    bytes: &[u8],
    opts: &TableOptions,
    sha256: String,
) -> anyhow::Result<Table> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
    if headers.is_empty() {
        bail!("the table has no header row");
    }
    let pos = |name: &str| headers.iter().position(|h| h == name);
    let catalog = CATALOG.iter().all(|d| pos(d.name).is_some()) && pos("loan_date").is_some();

    let label_name = opts.label.clone().unwrap_or_else(|| "label".to_string());
    let label_col = pos(&label_name).ok_or_else(|| {
        anyhow!(
            "no label column {label_name:?} (columns: {})",
            headers.join(", ")
        )
    })?;
    let mut ids: Vec<String> = opts.id_columns.clone();
    let mut date_name = opts.date_column.clone();
    let mut segments = opts.segment_columns.clone();
    if catalog {
        for c in ["loan_id", "merchant_id"] {
            if !ids.iter().any(|x| x == c) {
                ids.push(c.to_string());
            }
        }
        date_name.get_or_insert_with(|| "loan_date".to_string());
        if segments.is_empty() {
            segments = ["region_type", "category", "thin_file"]
                .map(String::from)
                .to_vec();
        }
    }
    for n in ids
        .iter()
        .chain(segments.iter())
        .chain(opts.exclude_columns.iter())
        .chain(date_name.iter())
    {
        if pos(n).is_none() {
            bail!("no column {n:?} (columns: {})", headers.join(", "));
        }
    }
    let special = |h: &str| {
        h == label_name
            || ids.iter().any(|x| x == h)
            || segments.iter().any(|x| x == h)
            || opts.exclude_columns.iter().any(|x| x == h)
            || date_name.as_deref() == Some(h)
    };
    // feature columns: in catalog mode only the catalog features, in catalog order
    let feature_cols: Vec<(usize, Option<Direction>)> = if catalog {
        CATALOG
            .iter()
            .filter_map(|d| pos(d.name).map(|i| (i, Some(d.direction))))
            .collect()
    } else {
        (0..headers.len())
            .filter(|&i| !special(&headers[i]))
            .map(|i| (i, None))
            .collect()
    };
    if feature_cols.is_empty() {
        bail!("the table has no feature column besides the label");
    }

    let mut raw: Vec<Vec<Option<String>>> = vec![Vec::new(); feature_cols.len()];
    let mut nums: Vec<Vec<Option<f64>>> = vec![Vec::new(); feature_cols.len()];
    let mut numeric = vec![true; feature_cols.len()];
    let mut label = Vec::new();
    let mut dates = date_name.as_ref().map(|_| Vec::new());
    let date_col = date_name.as_deref().and_then(pos);
    let id_col = ids.first().and_then(|n| pos(n));
    let mut id_vals = id_col.map(|_| Vec::new());
    let seg_cols: Vec<usize> = segments.iter().filter_map(|n| pos(n)).collect();
    let mut seg_vals: Vec<Vec<String>> = vec![Vec::new(); seg_cols.len()];

    let mut rec = csv::StringRecord::new();
    let mut line = 1usize;
    while r.read_record(&mut rec)? {
        line += 1;
        if rec.len() != headers.len() {
            bail!(
                "line {line} has {} fields, the header has {}",
                rec.len(),
                headers.len()
            );
        }
        label.push(parse_label(
            &rec[label_col],
            opts.positive_label.as_deref(),
            line,
        )?);
        if let (Some(c), Some(d)) = (date_col, dates.as_mut()) {
            d.push(
                parse_date(&rec[c])
                    .ok_or_else(|| anyhow!("line {line}: {:?} is not a date", &rec[c]))?,
            );
        }
        if let (Some(c), Some(v)) = (id_col, id_vals.as_mut()) {
            v.push(rec[c].to_string());
        }
        for (k, &c) in seg_cols.iter().enumerate() {
            seg_vals[k].push(rec[c].to_string());
        }
        for (k, &(c, _)) in feature_cols.iter().enumerate() {
            let cell = &rec[c];
            if is_missing(cell) {
                raw[k].push(None);
                nums[k].push(None);
            } else {
                let x = parse_number(cell);
                match x {
                    Some(x) if x.is_finite() => nums[k].push(Some(x)),
                    Some(_) => nums[k].push(None), // inf: missing
                    None => {
                        if catalog {
                            bail!("line {line}: {} = {cell:?} is not a number", headers[c]);
                        }
                        numeric[k] = false;
                        nums[k].push(None);
                    }
                }
                if !catalog {
                    raw[k].push(Some(cell.trim().to_string()));
                }
            }
        }
    }
    if label.is_empty() {
        bail!("the table has no data rows");
    }
    let features = feature_cols
        .iter()
        .enumerate()
        .map(|(k, &(c, direction))| FeatureColumn {
            name: headers[c].clone(),
            direction,
            data: if numeric[k] {
                ColumnData::Numeric(std::mem::take(&mut nums[k]))
            } else {
                ColumnData::Categorical(std::mem::take(&mut raw[k]))
            },
        })
        .collect();
    Ok(Table {
        features,
        label,
        label_name,
        dates,
        ids: id_vals,
        segments: segments.into_iter().zip(seg_vals).collect(),
        catalog,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_messy_real_world_tables() {
        let csv = "\
id,when,income,score,city,target
1,2024-01-05,1.5e3,NA,beijing,1
2,2024-02-05, 2E-1 ,?,shanghai,0
3,2024-03-05,,12,?,no
4,2024-04-05,N/A,7.25,beijing,YES
5,2024-05-05,-3.0e+2,nan,Chengdu,false
";
        let opts = TableOptions {
            label: Some("target".into()),
            id_columns: vec!["id".into()],
            date_column: Some("when".into()),
            ..TableOptions::default()
        };
        let t = read_table_bytes(csv.as_bytes(), &opts, String::new()).unwrap();
        assert!(!t.catalog);
        assert_eq!(t.label, [true, false, false, true, false]);
        assert_eq!(t.features.len(), 3);
        assert_eq!(t.features[0].name, "income");
        assert_eq!(
            t.features[0].data,
            ColumnData::Numeric(vec![Some(1500.0), Some(0.2), None, None, Some(-300.0)])
        );
        assert_eq!(
            t.features[1].data,
            ColumnData::Numeric(vec![None, None, Some(12.0), Some(7.25), None])
        );
        assert_eq!(
            t.features[2].data,
            ColumnData::Categorical(vec![
                Some("beijing".into()),
                Some("shanghai".into()),
                None,
                Some("beijing".into()),
                Some("Chengdu".into())
            ])
        );
        assert_eq!(t.dates.as_ref().unwrap()[2].to_string(), "2024-03-05");
        assert_eq!(t.ids.as_ref().unwrap()[4], "5");
    }

    #[test]
    fn labels_need_a_positive_value_when_not_binary_and_must_be_present() {
        let csv = "x,credit\n1,good\n2,bad\n";
        let err = read_table_bytes(
            csv.as_bytes(),
            &TableOptions {
                label: Some("credit".into()),
                ..TableOptions::default()
            },
            String::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("positive_label"), "{err}");
        let t = read_table_bytes(
            csv.as_bytes(),
            &TableOptions {
                label: Some("credit".into()),
                positive_label: Some("bad".into()),
                ..TableOptions::default()
            },
            String::new(),
        )
        .unwrap();
        assert_eq!(t.label, [false, true]);
        let err = read_table_bytes(b"x,label\n1,\n", &TableOptions::default(), String::new())
            .unwrap_err();
        assert!(err.to_string().contains("label is missing"), "{err}");
        let err =
            read_table_bytes(b"x,y\n1,0\n", &TableOptions::default(), String::new()).unwrap_err();
        assert!(err.to_string().contains("no label column"), "{err}");
    }
}
