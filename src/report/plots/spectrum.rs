//! The latency percentile spectrum, as HdrHistogram draws it: x is 1/(1-p) on a log scale, so
//! that 90%, 99%, 99.9% and 99.99% are evenly spaced and the tail gets as much room as the body.

use super::interactive::{hex, Axis, Interactive, Line, Mark, Scale, Unit};
use super::{color, err, font, log_range, ms_label, DrawResult, Figure, AXIS_PT, LEGEND_PT};
use super::{TICK_PT, TITLE_PT};
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Decades of 1/(1-p) always shown: up to 99.99%.
const DECADES_MIN: f64 = 4.0;
/// Decades drawn at most: up to 99.9999%.
const DECADES_MAX: f64 = 6.0;

/// One line: (quantile in [0, 1), latency in ms) points, in increasing quantile.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub width: u32,
}

pub struct Spectrum {
    pub name: String,
    pub title: String,
    pub caption: String,
    pub series: Vec<Series>,
    /// What the latencies measure, for the y axis ("delivery", "download").
    pub what: &'static str,
    /// Latency SLOs (`[expect]` bounds at a percentile), drawn where the curve must stay below.
    pub slos: Vec<SloMark>,
}

/// A latency bound at one percentile (`interop.delivered_p99 <= 2s`): a bar at that percentile
/// and that latency, in the colour of its series (black for all paths).
#[derive(Clone, Debug)]
pub struct SloMark {
    pub label: String,
    /// The percentile as a quantile in [0, 1) (`max` is drawn at the plot's right edge: 1.0).
    pub q: f64,
    pub ms: f64,
    pub color: RGBColor,
}

/// The spectrum points of a histogram of nanoseconds, in ms: the same iteration as
/// latency.hgrm (5 ticks per half distance), the 100% row left out (it has no finite x).
pub fn points_of(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| {
            let q = v.quantile_iterated_to();
            let ms = h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6;
            (q, ms)
        })
        .filter(|(q, _)| *q < 1.0)
        .collect()
}

/// A series per histogram with the standard colours (index `i` of the palette).
pub fn series(label: &str, i: usize, h: &Histogram<u64>) -> Series {
    counted_series(label, "deliveries", i, h)
}

/// The same, counting `items` ("downloads") in the label.
pub fn counted_series(label: &str, items: &str, i: usize, h: &Histogram<u64>) -> Series {
    Series {
        label: format!("{label} ({} {items})", h.len()),
        points: points_of(h),
        color: color(i),
        width: 3,
    }
}

/// x position of a quantile: log10(1/(1-q)).
pub fn x_of(q: f64) -> f64 {
    (1.0 / (1.0 - q).max(1e-12)).log10()
}

/// "0%", "90%", "99%", "99.9%" ... at whole decades, nothing in between.
pub fn percentile_label(x: f64) -> String {
    let k = x.round();
    if (x - k).abs() > 1e-6 || k < 0.0 {
        return String::new();
    }
    if k == 0.0 {
        return "0%".to_string();
    }
    let nines = k as usize;
    if nines <= 2 {
        format!("{}%", 100.0 - 100.0 / 10f64.powi(nines as i32))
    } else {
        format!("99.{}%", "9".repeat(nines - 2))
    }
}

impl Figure for Spectrum {
    fn name(&self) -> &str {
        &self.name
    }
    fn caption(&self) -> String {
        self.caption.clone()
    }
    fn interactive(&self) -> Option<Interactive> {
        let lines: Vec<Line> = self
            .series
            .iter()
            .filter(|s| !s.points.is_empty())
            .map(|s| Line {
                name: s.label.clone(),
                color: hex(s.color),
                width: s.width,
                points: s.points.iter().map(|&(q, ms)| (q, Some(ms))).collect(),
                right: false,
            })
            .collect();
        if lines.is_empty() {
            return None;
        }
        // `max` has no finite place: at the highest quantile drawn, as the static plot does.
        let q_last = lines
            .iter()
            .filter_map(|l| l.points.last().map(|p| p.0))
            .fold(0.0, f64::max);
        Some(Interactive {
            title: self.title.clone(),
            x: Axis::new("percentile", Scale::Percentile, Unit::Quantile),
            y: Axis::new(&format!("{} latency", self.what), Scale::Log, Unit::Ms),
            y2: None,
            lines,
            bands: Vec::new(),
            marks: self
                .slos
                .iter()
                .map(|m| Mark {
                    x: m.q.min(q_last),
                    y: m.ms,
                    label: m.label.clone(),
                    color: hex(m.color),
                })
                .collect(),
        })
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let live: Vec<&Series> = self
            .series
            .iter()
            .filter(|s| !s.points.is_empty())
            .collect();
        if live.is_empty() {
            return super::draw_message(root, &self.title, "no deliveries recorded");
        }
        let x_data = live
            .iter()
            .flat_map(|s| s.points.iter().map(|p| x_of(p.0)))
            .fold(0.0, f64::max);
        let x_max = x_data.ceil().clamp(DECADES_MIN, DECADES_MAX);
        let y = log_range(
            live.iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .chain(self.slos.iter().map(|m| m.ms)),
        );
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(TITLE_PT))
            .margin(24)
            .margin_right(70)
            .x_label_area_size(80)
            .y_label_area_size(130)
            .build_cartesian_2d(0f64..x_max, y.log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(x_max as usize + 1)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| {
                if super::is_125(*v) {
                    ms_label(*v)
                } else {
                    String::new()
                }
            })
            .x_desc("percentile (log scale of 1/(1-p))")
            .y_desc(format!("{} latency (log scale)", self.what))
            .label_style(font(TICK_PT))
            .axis_desc_style(font(AXIS_PT))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        for s in live {
            let style = s.color.stroke_width(s.width);
            let pts = s
                .points
                .iter()
                .map(|(q, ms)| (x_of(*q).min(x_max), *ms))
                .collect::<Vec<_>>();
            chart
                .draw_series(LineSeries::new(pts, style))
                .map_err(err)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x - 4, y), (x + 40, y)], style));
        }
        for m in &self.slos {
            // A bar half a decade wide, centred on the percentile, and its label above it.
            let x = if m.q >= 1.0 {
                x_max
            } else {
                x_of(m.q).min(x_max)
            };
            let (a, b) = ((x - 0.25).max(0.0), (x + 0.25).min(x_max));
            let style = m.color.stroke_width(5);
            chart
                .draw_series(LineSeries::new([(a, m.ms), (b, m.ms)], style))
                .map_err(err)?;
            let anchor = plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Right,
                plotters::style::text_anchor::VPos::Bottom,
            );
            chart
                .draw_series([Text::new(
                    m.label.clone(),
                    (b, m.ms),
                    font(LEGEND_PT - 4).color(&m.color).pos(anchor),
                )])
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(LEGEND_PT))
            .legend_area_size(56)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .margin(16)
            .draw()
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels_at_decades() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(4.0), "99.99%");
        assert_eq!(percentile_label(2.5), "");
        assert!((x_of(0.999) - 3.0).abs() < 1e-9);
    }
}
