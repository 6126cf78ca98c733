//! From run records to capacity curves: each grid point's repeats merged (histograms added, so
//! percentiles are of all deliveries, not averages of percentiles), points grouped into one
//! curve per value of the parameters that do not set the load, and each curve's knee found.

use super::record::{empty_histogram, RunRecord, ALL};
use super::SweepError;
use crate::report::plots::capacity::{Curve, CurvePoint};
use crate::report::sweep_page::{MinCapacity, SweepView};
use crate::scenario::{Scenario, SweepAxis};

/// The knee rule, shown in the report: the last point before latency or delivery degrades.
pub const KNEE_P99_FACTOR: f64 = 2.0;
pub const KNEE_RATIO_DROP: f64 = 0.01;

/// One grid point, its repeats merged.
#[derive(Clone, Debug)]
pub struct PointSummary {
    pub point: u64,
    pub labels: Vec<String>,
    pub values: Vec<f64>,
    pub runs: u64,
    pub passed: u64,
    pub offered_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub delivered_ratio: f64,
}

/// Merges the repeats of each point; `records` are in run order.
pub fn points(records: &[RunRecord]) -> Result<Vec<PointSummary>, SweepError> {
    let mut out: Vec<PointSummary> = Vec::new();
    let mut i = 0;
    while i < records.len() {
        let point = records[i].point;
        let group: Vec<&RunRecord> = records[i..]
            .iter()
            .take_while(|r| r.point == point)
            .collect();
        i += group.len();
        let mut h = empty_histogram();
        let (mut delivered, mut deliverable, mut offered) = (0u64, 0u64, 0.0);
        for r in &group {
            let rh = r.histogram(ALL)?;
            h.add(&rh).map_err(|e| SweepError::Histogram {
                run: r.run,
                message: format!("{e:?}"),
            })?;
            delivered += r.delivered;
            deliverable += r.deliverable();
            offered += r.offered_per_s();
        }
        let ms = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1e6
            }
        };
        out.push(PointSummary {
            point,
            labels: group[0].labels.clone(),
            values: group[0].values.clone(),
            runs: group.len() as u64,
            passed: group.iter().filter(|r| r.passed).count() as u64,
            offered_per_s: offered / group.len() as f64,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            delivered_ratio: if deliverable == 0 {
                1.0
            } else {
                delivered as f64 / deliverable as f64
            },
        });
    }
    Ok(out)
}

/// The report's view of a sweep.
pub fn view(base: &Scenario, hash: &str, records: &[RunRecord]) -> Result<SweepView, SweepError> {
    let axes = base.sweep.as_ref().map_or(&[][..], |s| s.axes.as_slice());
    let repeats = base.sweep.as_ref().map_or(1, |s| s.repeats);
    let pts = points(records)?;
    let load_axes: Vec<usize> = (0..axes.len())
        .filter(|&i| axes[i].target.is_load())
        .collect();
    // x: the measured offered load when a key sets it; else the first key's value.
    let (x_axis, x_desc): (Option<usize>, String) = if !load_axes.is_empty() || axes.is_empty() {
        (None, "offered load (messages/s)".to_string())
    } else {
        (Some(0), axes[0].key.clone())
    };
    let grouped: Vec<usize> = (0..axes.len())
        .filter(|i| !load_axes.contains(i) && Some(*i) != x_axis)
        .collect();
    let mut curves: Vec<Curve> = Vec::new();
    for p in &pts {
        let label = if grouped.is_empty() {
            "all points".to_string()
        } else {
            grouped
                .iter()
                .map(|&i| format!("{} = {}", axes[i].key, p.labels[i]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let x = match x_axis {
            Some(i) => p.values[i],
            None => p.offered_per_s,
        };
        let cp = CurvePoint {
            x,
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
            p999_ms: p.p999_ms,
            delivered_ratio: p.delivered_ratio,
        };
        match curves.iter_mut().find(|c| c.label == label) {
            Some(c) => c.points.push(cp),
            None => curves.push(Curve {
                label,
                points: vec![cp],
                knee: None,
            }),
        }
    }
    for c in &mut curves {
        c.points.sort_by(|a, b| a.x.total_cmp(&b.x));
        c.knee = knee(&c.points);
    }
    Ok(SweepView {
        name: base.run.name.clone(),
        hash: hash.to_string(),
        seed: base.run.seed,
        keys: axes.iter().map(|a| a.key.clone()).collect(),
        axis_values: axes
            .iter()
            .map(|a| a.values.iter().map(|v| v.label()).collect())
            .collect(),
        repeats,
        runs: records.len() as u64,
        runs_passed: records.iter().filter(|r| r.passed).count() as u64,
        x_desc,
        rows: pts
            .iter()
            .map(|p| {
                let mut row = vec![p.point.to_string()];
                row.extend(p.labels.iter().cloned());
                row.extend([
                    format!("{:.2}", p.offered_per_s),
                    format!("{:.1}", p.p50_ms),
                    format!("{:.1}", p.p99_ms),
                    format!("{:.1}", p.p999_ms),
                    format!("{:.4}", p.delivered_ratio),
                    format!("{}/{}", p.passed, p.runs),
                ]);
                row
            })
            .collect(),
        curves,
        slos: whole_run_slos(base),
        min_capacity: minimum_capacity(axes, &pts),
        designs: super::designs::view(axes, records),
        knee_rule: format!(
            "The knee (marked) is the last point of a curve before its p99 exceeds {KNEE_P99_FACTOR}x the p99 at its lowest load, or its delivered ratio falls more than {KNEE_RATIO_DROP} below the ratio there; a curve that degrades already at its second point has no knee marked (it bends below the loads run)."
        ),
    })
}

/// With a capacity knob among the keys and others beside it: for each combination of the
/// others (the load, say), the smallest capacity value all of whose runs met every
/// expectation (`None` in the cell: none in the range did). The header names the columns.
fn minimum_capacity(axes: &[SweepAxis], pts: &[PointSummary]) -> Option<MinCapacity> {
    let c = axes.iter().position(|a| a.target.is_capacity())?;
    if axes.len() < 2 {
        return None;
    }
    let others: Vec<usize> = (0..axes.len()).filter(|&i| i != c).collect();
    // Per combination of the others: the best value so far, as a number and as written.
    type Best = Option<(f64, String)>;
    let mut rows: Vec<(Vec<String>, Best)> = Vec::new();
    for p in pts {
        let key: Vec<String> = others.iter().map(|&i| p.labels[i].clone()).collect();
        let ok = p.runs > 0 && p.passed == p.runs;
        let here = ok.then(|| (p.values[c], p.labels[c].clone()));
        match rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, best)) => {
                if let Some(h) = here {
                    if best.as_ref().is_none_or(|b| h.0 < b.0) {
                        *best = Some(h);
                    }
                }
            }
            None => rows.push((key, here)),
        }
    }
    let mut header: Vec<String> = others.iter().map(|&i| axes[i].key.clone()).collect();
    header.push(format!(
        "smallest {} that met every expectation",
        axes[c].key
    ));
    Some(MinCapacity {
        header,
        rows: rows
            .into_iter()
            .map(|(mut k, best)| {
                k.push(best.map_or("none in the range".to_string(), |b| b.1));
                k
            })
            .collect(),
    })
}

/// The base scenario's whole-run bounds on p50, p99, p99.9 (ms) and the delivered ratio.
fn whole_run_slos(base: &Scenario) -> [Option<f64>; 4] {
    let bound = |name: &str, at_most: bool| {
        base.expect.iter().find_map(|e| {
            let key = e.key.strip_prefix("overall.").unwrap_or(&e.key);
            match (key == name, e.bound) {
                (true, crate::scenario::Bound::AtMost(x)) if at_most => Some(x),
                (true, crate::scenario::Bound::AtLeast(x)) if !at_most => Some(x),
                _ => None,
            }
        })
    };
    let ms = |name: &str| bound(name, true).map(|ns| ns / 1e6);
    [
        ms("delivered_p50"),
        ms("delivered_p99"),
        ms("delivered_p999"),
        bound("delivered_ratio", false),
    ]
}

/// Index of the knee: the last point before the first one that degrades, if any degrades.
pub fn knee(points: &[CurvePoint]) -> Option<usize> {
    let first = points.first()?;
    let bad = points.iter().position(|p| {
        p.p99_ms > KNEE_P99_FACTOR * first.p99_ms
            || p.delivered_ratio < first.delivered_ratio - KNEE_RATIO_DROP
    })?;
    // A curve already past its knee at the second point bends somewhere below the range run:
    // no point of it is the knee (marking the first would call a saturated start a knee).
    bad.checked_sub(1).filter(|&k| k > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(x: f64, p99: f64, ratio: f64) -> CurvePoint {
        CurvePoint {
            x,
            p50_ms: p99 / 4.0,
            p99_ms: p99,
            p999_ms: p99 * 2.0,
            delivered_ratio: ratio,
        }
    }

    #[test]
    fn whole_run_bounds_become_the_curves_slo_lines() {
        let s = crate::scenario::test_file_with(
            "small-sweep.toml",
            &[(
                "[expect]\n",
                "[expect]\noverall.delivered_p99 = \"1s\"\ndelivered_ratio = 0.99\ninterop.delivered_p50 = \"1s\"\n",
            )],
        );
        assert_eq!(whole_run_slos(&s), [None, Some(1000.0), None, Some(0.99)]);
    }

    #[test]
    fn minimum_capacity_per_load_is_the_smallest_value_whose_runs_all_passed() {
        let s = crate::scenario::test_file_with(
            "small-sweep.toml",
            &[
                (
                    "\"network.gateway_partner.loss\" = [0.0, 0.02]",
                    "\"capacity.gateway.cores\" = [1, 2, 4]",
                ),
                ("[60, 120, 240]", "[60, 240]"),
            ],
        );
        let axes = &s.sweep.as_ref().expect("a sweep").axes;
        // (rate, cores, runs passed of 2): at 60/h, 2 cores pass (1 does not); at 240/h, none.
        let grid = [
            (60.0, 1.0, 0),
            (60.0, 2.0, 2),
            (60.0, 4.0, 2),
            (240.0, 1.0, 0),
            (240.0, 2.0, 1),
            (240.0, 4.0, 1),
        ];
        let pts: Vec<PointSummary> = grid
            .iter()
            .enumerate()
            .map(|(i, &(rate, cores, passed))| PointSummary {
                point: i as u64,
                labels: vec![rate.to_string(), cores.to_string()],
                values: vec![rate, cores],
                runs: 2,
                passed,
                offered_per_s: rate,
                p50_ms: 1.0,
                p99_ms: 1.0,
                p999_ms: 1.0,
                delivered_ratio: 1.0,
            })
            .collect();
        let m = minimum_capacity(axes, &pts).expect("a capacity knob beside the load");
        assert_eq!(m.header[0], "workload.messages_per_user_hour");
        assert_eq!(m.rows, [vec!["60", "2"], vec!["240", "none in the range"]]);
    }

    #[test]
    fn knee_is_the_last_good_point() {
        let c = [
            pt(1.0, 100.0, 1.0),
            pt(2.0, 120.0, 1.0),
            pt(4.0, 900.0, 1.0),
        ];
        assert_eq!(knee(&c), Some(1));
        let c = [
            pt(1.0, 100.0, 1.0),
            pt(2.0, 110.0, 1.0),
            pt(4.0, 120.0, 0.95),
        ];
        assert_eq!(knee(&c), Some(1));
        // Bent before the range: no knee, not the first point.
        let c = [pt(1.0, 100.0, 1.0), pt(2.0, 120.0, 0.95)];
        assert_eq!(knee(&c), None);
        let c = [pt(1.0, 100.0, 1.0), pt(2.0, 110.0, 1.0)];
        assert_eq!(knee(&c), None);
    }
}
