//! PNG plots drawn with `plotters`, text rendered with the bundled DejaVu Sans
//! (`assets/fonts/DejaVuSans.ttf`, Bitstream Vera licence, see `assets/fonts/LICENSE-DejaVu.txt`)
//! registered from `include_bytes!`, so no system font is needed at run time.

use super::TrainOutcome;
use super::metrics::roc;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();
const W: u32 = 800;
const H: u32 = 600;

fn register_font() {
    REGISTER.call_once(|| {
        // the bytes are a valid TTF bundled with the crate; a failure leaves text unrendered
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting failed: {e}")
}

type Curve<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

fn roc_plot(path: &Path, curves: &[Curve<'_>]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut c = ChartBuilder::on(&root)
        .caption("ROC, test set", ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("false positive rate")
        .y_desc("true positive rate")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    c.draw_series(LineSeries::new(
        vec![(0.0, 0.0), (1.0, 1.0)],
        &BLACK.mix(0.3),
    ))
    .map_err(err)?;
    for (name, pts, color) in curves {
        let color = *color;
        c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Writes `roc.png`, `calibration.png`, `score_distribution.png`, `ks.png` into `dir`.
pub fn write_plots(o: &TrainOutcome, dir: &Path) -> anyhow::Result<()> {
    register_font();
    let y: Vec<bool> = o.test_idx.iter().map(|&i| o.table.label[i]).collect();
    let sc = &o.test_scored;

    // ROC
    let mut curves = vec![(
        format!(
            "scorecard (AUC {:.3})",
            o.test_eval.metrics.auc.unwrap_or(f64::NAN)
        ),
        roc(&sc.pd, &y),
        BLUE,
    )];
    if let Some((pd, m)) = &o.challenger {
        curves.push((
            format!("challenger forest (AUC {:.3})", m.auc.unwrap_or(f64::NAN)),
            roc(pd, &y),
            RED,
        ));
    }
    let named: Vec<Curve<'_>> = curves
        .iter()
        .map(|(n, p, c)| (n.as_str(), p.clone(), *c))
        .collect();
    roc_plot(&dir.join("roc.png"), &named)?;

    // calibration
    {
        let path = dir.join("calibration.png");
        let cal = &o.test_eval.calibration;
        let top = cal
            .iter()
            .map(|c| c.predicted.max(c.observed))
            .fold(0.0f64, f64::max)
            * 1.1
            + 1e-3;
        let root = BitMapBackend::new(&path, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut c = ChartBuilder::on(&root)
            .caption("Calibration by score decile, test set", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..top, 0.0..top)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("mean predicted PD")
            .y_desc("observed default rate")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        c.draw_series(LineSeries::new(
            vec![(0.0, 0.0), (top, top)],
            &BLACK.mix(0.3),
        ))
        .map_err(err)?;
        c.draw_series(LineSeries::new(
            cal.iter().map(|b| (b.predicted, b.observed)),
            BLUE.stroke_width(2),
        ))
        .map_err(err)?;
        c.draw_series(
            cal.iter()
                .map(|b| Circle::new((b.predicted, b.observed), 5, BLUE.filled())),
        )
        .map_err(err)?;
        root.present().map_err(err)?;
    }

    // score distribution by outcome (share of each class per 10-point bucket)
    {
        let path = dir.join("score_distribution.png");
        let lo = (sc.score.iter().copied().fold(f64::INFINITY, f64::min) / 10.0).floor() * 10.0;
        let hi = (sc.score.iter().copied().fold(f64::NEG_INFINITY, f64::max) / 10.0).ceil() * 10.0
            + 10.0;
        let nb = (((hi - lo) / 10.0) as usize).max(1);
        let mut h = [vec![0.0f64; nb], vec![0.0f64; nb]];
        for (s, &l) in sc.score.iter().zip(&y) {
            let b = (((s - lo) / 10.0) as usize).min(nb - 1);
            h[usize::from(l)][b] += 1.0;
        }
        for hist in h.iter_mut() {
            let t: f64 = hist.iter().sum::<f64>().max(1.0);
            hist.iter_mut().for_each(|v| *v /= t);
        }
        let top = h.iter().flatten().copied().fold(0.0f64, f64::max) * 1.1 + 1e-3;
        let root = BitMapBackend::new(&path, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut c = ChartBuilder::on(&root)
            .caption(
                "Score distribution by outcome, test set",
                ("sans-serif", 24),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("score (10-point buckets)")
            .y_desc("share of the class")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        for (k, (name, color)) in [("repaid", GREEN), ("defaulted", RED)].iter().enumerate() {
            let color = *color;
            c.draw_series(h[k].iter().enumerate().map(|(b, &v)| {
                let x0 = lo + 10.0 * b as f64;
                Rectangle::new([(x0 + 1.0, 0.0), (x0 + 9.0, v)], color.mix(0.45).filled())
            }))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.mix(0.45).filled())
            });
        }
        c.configure_series_labels()
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }

    // KS: cumulative share of defaults and of repaid loans by score
    {
        let path = dir.join("ks.png");
        let mut idx: Vec<usize> = (0..sc.score.len()).collect();
        idx.sort_by(|&a, &b| sc.score[a].total_cmp(&sc.score[b]));
        let nb = y.iter().filter(|&&v| v).count().max(1) as f64;
        let ng = (y.len() - y.iter().filter(|&&v| v).count()).max(1) as f64;
        let (mut cb, mut cg) = (0.0, 0.0);
        let mut bad_pts = Vec::with_capacity(idx.len());
        let mut good_pts = Vec::with_capacity(idx.len());
        let (mut best, mut at) = (0.0f64, 0.0f64);
        for &i in &idx {
            if y[i] {
                cb += 1.0;
            } else {
                cg += 1.0;
            }
            let s = sc.score[i];
            bad_pts.push((s, cb / nb));
            good_pts.push((s, cg / ng));
            if cb / nb - cg / ng > best {
                best = cb / nb - cg / ng;
                at = s;
            }
        }
        let lo = sc.score.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = sc.score.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 1e-9;
        let root = BitMapBackend::new(&path, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut c = ChartBuilder::on(&root)
            .caption(
                format!("KS = {best:.3} at score {at:.0}, test set"),
                ("sans-serif", 24),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(lo..hi, 0.0..1.0)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("score")
            .y_desc("cumulative share")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        c.draw_series(LineSeries::new(bad_pts, RED.stroke_width(2)))
            .map_err(err)?
            .label("defaulted")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        c.draw_series(LineSeries::new(good_pts, GREEN.stroke_width(2)))
            .map_err(err)?
            .label("repaid")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(2)));
        c.draw_series(LineSeries::new(vec![(at, 0.0), (at, 1.0)], BLACK.mix(0.4)))
            .map_err(err)?;
        c.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(())
}
