//! A sweep with `topology.design` among its keys compares the interop designs: per value of
//! another key (group size, say), what each design spends per delivered copy (message crypto
//! CPU and bytes on the wire, over the point's repeats), one line per design, and where the
//! lines cross. The crossover is what a planner reads: below it one design is cheaper, above it
//! the other.

use super::record::RunRecord;
use crate::report::plots::designs::DesignSeries;
use crate::report::sweep_page::{DesignMetric, DesignView};
use crate::scenario::{SweepAxis, SweepTarget};
use std::collections::BTreeMap;

/// Per (the other keys' labels, design), per x: crypto ns, bytes, copies shown, refused MLS
/// commits and members who left, summed over the repeats.
type Totals = BTreeMap<(String, String), Vec<(f64, [f64; 5])>>;

/// The view, when a design axis with two or more designs sits beside another key.
pub fn view(axes: &[SweepAxis], records: &[RunRecord]) -> Option<DesignView> {
    let d = axes.iter().position(|a| a.target == SweepTarget::Design)?;
    let x = axes.iter().position(|a| a.target != SweepTarget::Design)?;
    if axes[d].values.len() < 2 {
        return None;
    }
    let others: Vec<usize> = (0..axes.len()).filter(|&i| i != d && i != x).collect();
    let mut totals: Totals = BTreeMap::new();
    for r in records {
        let other = others
            .iter()
            .map(|&i| format!("{} = {}", axes[i].key, r.labels[i]))
            .collect::<Vec<_>>()
            .join(", ");
        let series = totals.entry((other, r.labels[d].clone())).or_default();
        let add = [
            r.crypto_ns,
            r.bytes,
            r.copies_shown,
            r.commit_conflicts,
            r.leaves,
        ];
        let add = add.map(|n| n as f64);
        match series.iter_mut().find(|(v, _)| *v == r.values[x]) {
            Some((_, sum)) => (0..add.len()).for_each(|k| sum[k] += add[k]),
            None => series.push((r.values[x], add)),
        }
    }
    for series in totals.values_mut() {
        series.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let metrics = [
        (
            "design_crypto_per_copy",
            "Message crypto CPU per delivered copy",
            "µs of CPU per copy (devices and gateway)",
            0usize,
            1e-3,
        ),
        (
            "design_bytes_per_copy",
            "Bytes on the wire per delivered copy",
            "bytes per copy (every hop class)",
            1,
            1.0,
        ),
        (
            "design_commit_conflicts",
            "MLS commits refused per member who left",
            "refused commits per member who left (MIMI)",
            3,
            1.0,
        ),
    ];
    let metrics = metrics
        .into_iter()
        .map(|(name, title, y_desc, k, scale)| {
            let series: Vec<DesignSeries> = totals
                .iter()
                .map(|((other, design), pts)| DesignSeries {
                    label: if other.is_empty() {
                        design.clone()
                    } else {
                        format!("{design}, {other}")
                    },
                    design: design.clone(),
                    points: pts
                        .iter()
                        .map(|(x, s)| {
                            // Per copy shown, or, for re-keying, per member who left.
                            let per = if k == 3 { s[4] } else { s[2] };
                            (*x, s[k] / per.max(f64::MIN_POSITIVE) * scale)
                        })
                        .filter(|(_, y)| y.is_finite() && *y > 0.0)
                        .collect(),
                })
                .collect();
            let (crossover, sentence) = if k == 3 {
                (None, conflicts(&series, &axes[x].key))
            } else {
                crossover(&series, &axes[x].key, title)
            };
            DesignMetric {
                name: name.to_string(),
                title: title.to_string(),
                y_desc: y_desc.to_string(),
                series,
                crossover,
                sentence,
            }
        })
        .collect();
    Some(DesignView {
        x_key: axes[x].key.clone(),
        metrics,
    })
}

/// Where the first two designs' lines (the first combination of the other keys) cross, found
/// between two neighbouring x values and placed on a log scale by the lines' difference; and
/// the sentence that says so, or that they do not cross, with the figures at both ends.
pub fn crossover(series: &[DesignSeries], x_key: &str, what: &str) -> (Option<f64>, String) {
    let (Some(a), Some(b)) = (
        series.first(),
        series.iter().find(|s| s.design != series[0].design),
    ) else {
        return (
            None,
            format!("{what}: one design only, nothing to compare."),
        );
    };
    let both: Vec<(f64, f64, f64)> = a
        .points
        .iter()
        .filter_map(|&(x, ya)| {
            let yb = b.points.iter().find(|p| p.0 == x)?.1;
            Some((x, ya, yb))
        })
        .collect();
    let (Some(first), Some(last)) = (both.first(), both.last()) else {
        return (
            None,
            format!("{what}: no value of {x_key} ran under both designs."),
        );
    };
    let ratio = |p: &(f64, f64, f64)| p.2 / p.1.max(f64::MIN_POSITIVE);
    let ends = format!(
        "{} / {} = {:.2} at {}, {:.2} at {}",
        b.design,
        a.design,
        ratio(first),
        first.0,
        ratio(last),
        last.0
    );
    for w in both.windows(2) {
        let (d0, d1) = (w[0].1 - w[0].2, w[1].1 - w[1].2);
        if d0 != 0.0 && d0.signum() != d1.signum() {
            let (l0, l1) = (w[0].0.max(1e-9).ln(), w[1].0.max(1e-9).ln());
            let at = (l0 + (l1 - l0) * d0 / (d0 - d1)).exp();
            let (cheap_above, dear_above) = if d1 > 0.0 {
                (&b.design, &a.design)
            } else {
                (&a.design, &b.design)
            };
            let sentence = format!(
                "{what}: the lines cross at {x_key} ≈ {} (between {} and {}); above it {cheap_above} costs less than {dear_above} ({ends}).",
                crate::report::plots::trim_float((at * 10.0).round() / 10.0),
                w[0].0,
                w[1].0,
            );
            return (Some(at), sentence);
        }
    }
    let lower = if first.1 <= first.2 {
        &a.design
    } else {
        &b.design
    };
    (
        None,
        format!(
            "{what}: no crossover between {x_key} = {} and {}: {lower} costs less at every value run ({ends}).",
            first.0, last.0,
        ),
    )
}

/// The commit conflicts in one sentence: only MIMI commits, so nothing crosses; the figures
/// per value of the swept key say how often two members raced for one epoch.
fn conflicts(series: &[DesignSeries], x_key: &str) -> String {
    let values: Vec<String> = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(move |(x, y)| format!("{y:.2} at {x} ({})", s.label))
        })
        .collect();
    let when = if values.is_empty() {
        "none at any value run".to_string()
    } else {
        values.join(", ")
    };
    format!(
        "MLS commits the hub refused (another member committed the same epoch first; the loser processes the winner's commit and sends again) per member who left, by {x_key}: {when}. The hub design has no commits: each sender makes a new Sender Key after a leave."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(design: &str, points: &[(f64, f64)]) -> DesignSeries {
        DesignSeries {
            label: design.to_string(),
            design: design.to_string(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn the_crossover_is_found_between_the_sizes_where_the_order_flips() {
        let hub = series(
            "hub",
            &[(2.0, 10.0), (8.0, 20.0), (32.0, 80.0), (128.0, 320.0)],
        );
        let mimi = series(
            "mimi",
            &[(2.0, 40.0), (8.0, 45.0), (32.0, 50.0), (128.0, 60.0)],
        );
        let (at, text) = crossover(&[hub, mimi], "workload.groups.size", "CPU");
        let at = at.expect("a crossover");
        assert!(at > 8.0 && at < 32.0, "{at}");
        assert!(
            text.contains("between 8 and 32") && text.contains("above it mimi costs less"),
            "{text}"
        );
    }

    #[test]
    fn no_crossover_says_which_design_is_cheaper_everywhere() {
        let hub = series("hub", &[(2.0, 10.0), (1024.0, 20.0)]);
        let mimi = series("mimi", &[(2.0, 40.0), (1024.0, 45.0)]);
        let (at, text) = crossover(&[hub, mimi], "workload.groups.size", "CPU");
        assert!(at.is_none());
        assert!(
            text.contains("no crossover") && text.contains("hub costs less"),
            "{text}"
        );
        assert!(text.contains("4.00 at 2"), "{text}");
    }
}
