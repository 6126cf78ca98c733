//! The data behind a figure, for the report's interactive view (hover values, zoom, series
//! toggles: `report/interactive.js`). The static PNG and SVG stay what slides use; this is the
//! same lines as numbers, embedded as JSON in the page, so that the page stays one file.

use plotters::style::RGBColor;
use serde::Serialize;

/// How an axis maps values to positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Linear,
    Log,
    /// Quantiles in [0, 1), placed at log10(1/(1-q)) as the latency spectrum draws them.
    Percentile,
}

/// How values on an axis read in ticks and in the hover box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds, shown as µs, ms or s.
    Ms,
    /// Seconds of simulated time.
    S,
    /// A count or a rate, shown with k and M.
    Count,
    /// Anything else, shown as is.
    Plain,
    /// A quantile, shown as a percentile.
    Quantile,
    /// A share (1.0 = 100 %), shown as a percentage.
    Share,
}

/// One axis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    pub unit: Unit,
}

/// One line: (x, y) points in increasing x; `None` for a y leaves a gap.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub width: u32,
    pub points: Vec<(f64, Option<f64>)>,
    /// Drawn against the right axis ([`Interactive::y2`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub right: bool,
}

/// A shaded stretch of x (a fault's window).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

/// A point of note (an SLO bound) drawn as a short bar.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark {
    pub x: f64,
    pub y: f64,
    pub label: String,
    pub color: String,
}

/// Everything the interactive view of one figure draws.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interactive {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    /// The right axis, when a line uses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y2: Option<Axis>,
    pub lines: Vec<Line>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bands: Vec<Band>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
}

impl Axis {
    pub fn new(label: &str, scale: Scale, unit: Unit) -> Self {
        Axis {
            label: label.to_string(),
            scale,
            unit,
        }
    }
}

/// The range of `xs` and the scale a static figure gives it (log once it spans `log_span` or
/// more, as the capacity and knob figures draw); `None` without a point.
pub fn x_range(xs: impl Iterator<Item = f64>, log_span: f64) -> Option<(f64, f64, Scale)> {
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if lo > hi {
        return None;
    }
    let scale = if lo > 0.0 && hi / lo >= log_span {
        Scale::Log
    } else {
        Scale::Linear
    };
    Some((lo, hi, scale))
}

/// `#rrggbb` of a plotters colour.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_compactly_with_gaps_as_null() {
        let i = Interactive {
            title: "t".into(),
            x: Axis::new("time", Scale::Linear, Unit::S),
            y: Axis::new("latency", Scale::Log, Unit::Ms),
            y2: None,
            lines: vec![Line {
                name: "p50".into(),
                color: hex(RGBColor(0, 114, 178)),
                width: 3,
                points: vec![(1.0, Some(2.5)), (2.0, None)],
                right: false,
            }],
            bands: Vec::new(),
            marks: Vec::new(),
        };
        assert_eq!(
            serde_json::to_string(&i).unwrap(),
            r##"{"title":"t","x":{"label":"time","scale":"linear","unit":"s"},"y":{"label":"latency","scale":"log","unit":"ms"},"lines":[{"name":"p50","color":"#0072b2","width":3,"points":[[1.0,2.5],[2.0,null]]}]}"##
        );
    }
}
