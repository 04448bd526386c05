//! The challenger: a random forest built from `linfa-trees` decision trees on the raw features.
//!
//! * [`TREES`] trees, each fitted on a bootstrap sample (drawn with a ChaCha8 stream from the
//!   seed) restricted to a random subset of ⌈√p⌉·2 features (random subspace; linfa-trees has no
//!   per-split feature sampling).
//! * Classes are weighted so that defaults and non-defaults weigh the same in each tree
//!   (otherwise, at a 5 % default rate, every leaf would predict "no default" and pruning would
//!   collapse the tree). Trees are depth-limited ([`MAX_DEPTH`]) with a minimum leaf weight.
//! * A tree's PD for a row is the observed default rate of the in-bag training rows that reach the
//!   same leaf (Laplace-smoothed: `(bads + 1)·/(rows + 1/base_rate)`, shrinking small leaves toward
//!   the base rate); the forest's PD is the mean over trees.
//! * Missing values become a sentinel below every real value (−1e15), so a split can isolate them.
//!   Categorical columns are encoded as the rank of their training default rate.

use super::table::{ColumnData, Table};
use anyhow::anyhow;
use linfa::prelude::*;
use linfa_trees::{DecisionTree, TreeNode};
use ndarray::{Array1, Array2, ArrayView1};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

pub const TREES: usize = 40;
pub const MAX_DEPTH: usize = 6;
const MISSING: f64 = -1e15;

/// One tree: the fitted tree, its feature subset, and (rows, defaults) per leaf id.
type Tree = (
    DecisionTree<f64, usize>,
    Vec<usize>,
    HashMap<usize, (f64, f64)>,
);

/// A fitted forest.
pub struct Forest {
    trees: Vec<Tree>,
    encodings: Vec<Option<HashMap<String, f64>>>,
    base_rate: f64,
}

fn encode(table: &Table, idx: &[usize], enc: &[Option<HashMap<String, f64>>]) -> Array2<f64> {
    let mut x = Array2::<f64>::from_elem((idx.len(), table.features.len()), MISSING);
    for (j, c) in table.features.iter().enumerate() {
        for (i, &r) in idx.iter().enumerate() {
            x[[i, j]] = match &c.data {
                ColumnData::Numeric(v) => v[r].unwrap_or(MISSING),
                ColumnData::Categorical(v) => v[r]
                    .as_ref()
                    .and_then(|s| enc[j].as_ref().and_then(|m| m.get(s)).copied())
                    .unwrap_or(MISSING),
            };
        }
    }
    x
}

/// Walks a tree to its leaf; returns the leaf's id (its address in the node tree).
fn leaf_id(node: &TreeNode<f64, usize>, x: ArrayView1<f64>) -> usize {
    let mut n = node;
    let mut id = 1usize;
    while !n.is_leaf() {
        let (f, split, _) = n.split();
        let children = n.children();
        let go_left = x[f] < split;
        let child = if go_left { children[0] } else { children[1] };
        id = id * 2 + usize::from(!go_left);
        match child {
            Some(c) => n = c,
            None => break,
        }
    }
    id
}

impl Forest {
    pub fn fit(table: &Table, train: &[usize], seed: u64) -> anyhow::Result<Forest> {
        let y: Vec<bool> = train.iter().map(|&i| table.label[i]).collect();
        let bads = y.iter().filter(|&&b| b).count();
        if bads == 0 || bads == y.len() {
            return Err(anyhow!("the challenger needs both classes"));
        }
        let base_rate = bads as f64 / y.len() as f64;
        let encodings: Vec<Option<HashMap<String, f64>>> = table
            .features
            .iter()
            .map(|c| match &c.data {
                ColumnData::Numeric(_) => None,
                ColumnData::Categorical(v) => {
                    let mut s: HashMap<String, (f64, f64)> = HashMap::new();
                    for &r in train {
                        if let Some(k) = &v[r] {
                            let e = s.entry(k.clone()).or_default();
                            e.0 += 1.0;
                            e.1 += f64::from(u8::from(table.label[r]));
                        }
                    }
                    let mut cats: Vec<(String, f64)> =
                        s.into_iter().map(|(k, (n, b))| (k, b / n)).collect();
                    cats.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                    Some(
                        cats.into_iter()
                            .enumerate()
                            .map(|(i, (k, _))| (k, i as f64))
                            .collect(),
                    )
                }
            })
            .collect();
        let x = encode(table, train, &encodings);
        let p = table.features.len();
        let m = ((p as f64).sqrt().ceil() as usize * 2).clamp(1, p);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_f0e5);
        let w_bad = (y.len() - bads) as f32 / bads as f32;
        // the bootstrap rows and feature subsets are drawn first, in the same order as a
        // sequential loop; the trees are then fitted on worker threads and gathered in order, so
        // the forest does not depend on scheduling
        let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..TREES)
            .map(|_| {
                let rows: Vec<usize> = (0..y.len()).map(|_| rng.random_range(0..y.len())).collect();
                let mut feats: Vec<usize> = (0..p).collect();
                for i in 0..m {
                    let j = rng.random_range(i..p);
                    feats.swap(i, j);
                }
                feats.truncate(m);
                feats.sort_unstable();
                (rows, feats)
            })
            .collect();
        let fit_tree = |(rows, feats): &(Vec<usize>, Vec<usize>)| -> anyhow::Result<Tree> {
            let xs = x
                .select(ndarray::Axis(0), rows)
                .select(ndarray::Axis(1), feats);
            let ys: Array1<usize> = rows.iter().map(|&r| usize::from(y[r])).collect();
            let ws: Array1<f32> = rows
                .iter()
                .map(|&r| if y[r] { w_bad } else { 1.0 })
                .collect();
            let ds = linfa::Dataset::new(xs.clone(), ys).with_weights(ws);
            let min_leaf = (0.01 * y.len() as f32).max(5.0);
            let tree = DecisionTree::params()
                .max_depth(Some(MAX_DEPTH))
                .min_weight_leaf(min_leaf)
                .min_weight_split(2.0 * min_leaf)
                .fit(&ds)
                .map_err(|e| anyhow!("decision tree: {e}"))?;
            let mut leaves: HashMap<usize, (f64, f64)> = HashMap::new();
            for (i, &r) in rows.iter().enumerate() {
                let e = leaves
                    .entry(leaf_id(tree.root_node(), xs.row(i)))
                    .or_default();
                e.0 += 1.0;
                e.1 += f64::from(u8::from(y[r]));
            }
            Ok((tree, feats.clone(), leaves))
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let chunk = TREES.div_ceil(threads);
        let fitted: Vec<anyhow::Result<Vec<Tree>>> = std::thread::scope(|s| {
            let handles: Vec<_> = draws
                .chunks(chunk)
                .map(|part| {
                    let fit_tree = &fit_tree;
                    s.spawn(move || part.iter().map(fit_tree).collect())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a challenger thread panicked")))
                })
                .collect()
        });
        let mut trees = Vec::with_capacity(TREES);
        for part in fitted {
            trees.extend(part?);
        }
        Ok(Forest {
            trees,
            encodings,
            base_rate,
        })
    }

    /// PDs of rows `idx`.
    pub fn predict(&self, table: &Table, idx: &[usize]) -> Vec<f64> {
        let x = encode(table, idx, &self.encodings);
        let prior = 1.0 / self.base_rate;
        (0..idx.len())
            .map(|i| {
                let row = x.row(i);
                self.trees
                    .iter()
                    .map(|(t, feats, leaves)| {
                        let sub: Array1<f64> = feats.iter().map(|&f| row[f]).collect();
                        let (n, b) = leaves
                            .get(&leaf_id(t.root_node(), sub.view()))
                            .copied()
                            .unwrap_or((0.0, 0.0));
                        (b + 1.0) / (n + prior)
                    })
                    .sum::<f64>()
                    / self.trees.len() as f64
            })
            .collect()
    }
}
