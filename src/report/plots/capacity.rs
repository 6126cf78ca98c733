//! Capacity curves of a sweep: offered load against delivered latency percentiles and delivered
//! ratio, one line per value of the other swept parameters, with the knee marked.

use super::interactive::{hex, x_range, Axis, Interactive, Line, Mark, Scale, Unit};
use super::{color, err, font, log_range, ms_label, short_count, DrawResult, Figure};
use super::{AXIS_PT, LEGEND_PT, TICK_PT, TITLE_PT};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One point of a capacity curve (a grid point with its repeats merged).
#[derive(Clone, Debug, PartialEq)]
pub struct CurvePoint {
    pub x: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub delivered_ratio: f64,
}

/// A line: the points sharing the values of the parameters that do not set the load.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub label: String,
    pub points: Vec<CurvePoint>,
    /// Index into `points` of the knee.
    pub knee: Option<usize>,
}

/// Which number of the curve points is on the y axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    P50,
    P99,
    P999,
    Ratio,
}

impl Metric {
    fn of(self, p: &CurvePoint) -> f64 {
        match self {
            Metric::P50 => p.p50_ms,
            Metric::P99 => p.p99_ms,
            Metric::P999 => p.p999_ms,
            Metric::Ratio => p.delivered_ratio,
        }
    }
    fn key(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::Ratio => "delivered_ratio",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Metric::P50 => "Median delivery latency against load",
            Metric::P99 => "p99 delivery latency against load",
            Metric::P999 => "p99.9 delivery latency against load",
            Metric::Ratio => "Delivered ratio against load",
        }
    }
}

pub struct CapacityFigure<'a> {
    pub metric: Metric,
    pub curves: &'a [Curve],
    pub x_desc: &'a str,
    /// The scenario's bound on this metric (`[expect]`), drawn as a red line.
    pub slo: Option<f64>,
}

/// Log x when the load spans an order of magnitude (geometric grids such as 10, 40, 160).
const LOG_X_SPAN: f64 = 8.0;

impl Figure for CapacityFigure<'_> {
    fn name(&self) -> &str {
        match self.metric {
            Metric::P50 => "capacity_p50",
            Metric::P99 => "capacity_p99",
            Metric::P999 => "capacity_p999",
            Metric::Ratio => "capacity_delivered_ratio",
        }
    }
    fn caption(&self) -> String {
        let slo = if self.slo.is_some() {
            "; the red line is the scenario's bound on it ([expect])"
        } else {
            ""
        };
        format!(
            "{} ({}), one line per value of the other swept parameters; the ringed point is the knee{slo}.",
            self.metric.title(),
            self.metric.key()
        )
    }
    fn interactive(&self) -> Option<Interactive> {
        let xs = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.x));
        let (x_lo, x_hi, x_scale) = x_range(xs, LOG_X_SPAN)?;
        let y = match self.metric {
            Metric::Ratio => Axis::new("delivered ratio", Scale::Linear, Unit::Share),
            m => Axis::new(
                &format!("{} delivery latency", m.key()),
                Scale::Log,
                Unit::Ms,
            ),
        };
        let mut lines: Vec<Line> = self
            .curves
            .iter()
            .enumerate()
            .map(|(i, c)| Line {
                name: c.label.clone(),
                color: hex(color(i)),
                width: 3,
                points: c
                    .points
                    .iter()
                    .map(|p| (p.x, Some(self.metric.of(p))))
                    .collect(),
                right: false,
            })
            .collect();
        if let Some(v) = self.slo {
            lines.push(Line {
                name: "SLO ([expect])".to_string(),
                color: hex(RED),
                width: 2,
                points: vec![(x_lo, Some(v)), (x_hi, Some(v))],
                right: false,
            });
        }
        let marks = self
            .curves
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let p = c.points.get(c.knee?)?;
                Some(Mark {
                    x: p.x,
                    y: self.metric.of(p),
                    label: format!("knee of {}", c.label),
                    color: hex(color(i)),
                })
            })
            .collect();
        Some(Interactive {
            title: self.metric.title().to_string(),
            x: Axis::new(self.x_desc, x_scale, Unit::Plain),
            y,
            y2: None,
            lines,
            bands: Vec::new(),
            marks,
        })
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let xs = || {
            self.curves
                .iter()
                .flat_map(|c| c.points.iter().map(|p| p.x))
        };
        if xs().next().is_none() {
            return super::draw_message(root, self.metric.title(), "no runs");
        }
        let (x_lo, x_hi) = xs().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        let pad = ((x_hi - x_lo) * 0.05).max(x_hi.abs() * 0.02).max(1e-9);
        let log_x = x_lo > 0.0 && x_hi / x_lo >= LOG_X_SPAN;
        let ys = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| self.metric.of(p)))
            // Room under a latency bound, so that its line is not the axis.
            .chain(self.slo.map(|v| {
                if self.metric == Metric::Ratio {
                    v
                } else {
                    v * 0.8
                }
            }));
        match (self.metric, log_x) {
            (Metric::Ratio, lx) => {
                // At least 90%..100.5%, so that a flat 100% line reads as what it is.
                let lo = ys.fold(1.0f64, f64::min);
                let y_lo = ((lo - (1.0 - lo) * 0.1) * 100.0).floor() / 100.0;
                let y = y_lo.clamp(0.0, 0.9)..1.005;
                if lx {
                    self.chart(root, (x_lo / 1.3..x_hi * 1.3).log_scale(), y, true)
                } else {
                    self.chart(root, (x_lo - pad)..(x_hi + pad), y, false)
                }
            }
            (_, lx) => {
                let y = log_range(ys).log_scale();
                if lx {
                    self.chart(root, (x_lo / 1.3..x_hi * 1.3).log_scale(), y, true)
                } else {
                    self.chart(root, (x_lo - pad)..(x_hi + pad), y, false)
                }
            }
        }
    }
}

impl CapacityFigure<'_> {
    fn chart<DB, XS, YS>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x: XS,
        y: YS,
        log_x: bool,
    ) -> DrawResult
    where
        DB: DrawingBackend,
        XS: AsRangedCoord<Value = f64>,
        YS: AsRangedCoord<Value = f64>,
        XS::CoordDescType: ValueFormatter<f64>,
        YS::CoordDescType: ValueFormatter<f64>,
    {
        let ratio = self.metric == Metric::Ratio;
        let mut chart = ChartBuilder::on(root)
            .caption(self.metric.title(), font(TITLE_PT))
            .margin(24)
            .margin_right(40)
            .x_label_area_size(80)
            .y_label_area_size(130)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        let y_fmt = |v: &f64| {
            if ratio {
                format!("{:.1}%", *v * 100.0)
            } else if super::is_125(*v) {
                ms_label(*v)
            } else {
                String::new()
            }
        };
        let y_desc = if ratio {
            "delivered / deliverable"
        } else {
            "delivery latency (log scale)"
        };
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| {
                if log_x && !super::is_125(*v) {
                    String::new()
                } else {
                    short_count(*v)
                }
            })
            .y_label_formatter(&y_fmt)
            .label_style(font(TICK_PT))
            .axis_desc_style(font(AXIS_PT))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        if let Some(bound) = self.slo {
            let xr = chart.x_range();
            let red = RED.stroke_width(2);
            let label = if ratio {
                format!("SLO >= {:.1}%", bound * 100.0)
            } else {
                format!("SLO <= {}", ms_label(bound))
            };
            chart
                .draw_series(LineSeries::new([(xr.start, bound), (xr.end, bound)], red))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x - 4, y), (x + 40, y)], red));
        }
        for (i, c) in self.curves.iter().enumerate() {
            let style = color(i).stroke_width(3);
            let pts: Vec<(f64, f64)> = c.points.iter().map(|p| (p.x, self.metric.of(p))).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(err)?
                .label(c.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x - 4, y), (x + 40, y)], style));
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 6, color(i).filled())))
                .map_err(err)?;
            if let Some(k) = c.knee.and_then(|k| pts.get(k)) {
                chart
                    .draw_series([EmptyElement::at(*k)
                        + Circle::new((0, 0), 16, BLACK.stroke_width(3))
                        + Text::new("knee", (12, -40), font(LEGEND_PT))])
                    .map_err(err)?;
            }
        }
        chart
            .configure_series_labels()
            .position(if ratio {
                SeriesLabelPosition::LowerLeft
            } else {
                SeriesLabelPosition::UpperLeft
            })
            .label_font(font(LEGEND_PT))
            .legend_area_size(56)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .margin(16)
            .draw()
            .map_err(err)
    }
}
