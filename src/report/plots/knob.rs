//! A plan's knob curve: for each value of one knob the solver tried, how much of each service
//! level the confidence bound used (100 % = exactly at the SLO), with the SLO line and the
//! answer marked. One picture says where the knob stops paying and how sharp the edge is.

use super::interactive::{hex, x_range, Axis, Band, Interactive, Line, Mark, Scale, Unit};
use super::{color, err, font, log_range, short_count, DrawResult, Figure};
use super::{AXIS_PT, TICK_PT, TITLE_PT};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One point of an SLO's series: the knob's value and the bound's share of the SLO.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SloPoint {
    pub x: f64,
    /// The confidence bound over the SLO's limit (for an at-least SLO, the limit over the
    /// bound): 1.0 is at the line, above it fails.
    pub used: f64,
    pub ok: bool,
}

/// One SLO across the knob's values.
#[derive(Clone, Debug, PartialEq)]
pub struct SloSeries {
    pub label: String,
    pub points: Vec<SloPoint>,
}

pub struct KnobFigure<'a> {
    /// File stem (`plan_knob_1`).
    pub name: String,
    /// The knob's dotted key, on the x axis.
    pub knob: &'a str,
    pub series: &'a [SloSeries],
    /// Values where an SLO of limit 0 (`lost = 0`, `failed = 0`) was broken: drawn as crosses on
    /// the SLO line, since a share of 0 has no scale.
    pub zero_limit_failures: &'a [f64],
    pub answer: Option<f64>,
}

/// Log x when the knob spans an order of magnitude (galloping doubles it).
const LOG_X_SPAN: f64 = 8.0;

impl Figure for KnobFigure<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn caption(&self) -> String {
        format!(
            "Share of each service level used at each value of {} the solver ran (the one-sided confidence bound over the SLO's limit; at most 100 % meets it). Crosses on the line: a zero-limit SLO (lost, failed) broken. The dashed line is the answer.",
            self.knob
        )
    }
    fn interactive(&self) -> Option<Interactive> {
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.x));
        let (lo, hi, x_scale) = x_range(xs, LOG_X_SPAN)?;
        let mut lines: Vec<Line> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut points: Vec<(f64, Option<f64>)> =
                    s.points.iter().map(|p| (p.x, Some(p.used))).collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Line {
                    name: s.label.clone(),
                    color: hex(color(i)),
                    width: 3,
                    points,
                    right: false,
                }
            })
            .collect();
        lines.push(Line {
            name: "limit (100 %)".to_string(),
            color: hex(RED),
            width: 2,
            points: vec![(lo, Some(1.0)), (hi, Some(1.0))],
            right: false,
        });
        Some(Interactive {
            title: format!("Service levels against {}", self.knob),
            x: Axis::new(self.knob, x_scale, Unit::Count),
            y: Axis::new("share of the SLO used", Scale::Log, Unit::Share),
            y2: None,
            lines,
            bands: self
                .answer
                .map(|a| Band {
                    from: a,
                    to: a,
                    label: format!("answer: {}", super::trim_float(a)),
                })
                .into_iter()
                .collect(),
            marks: self
                .zero_limit_failures
                .iter()
                .map(|&x| Mark {
                    x,
                    y: 1.0,
                    label: "a zero-limit SLO (lost, failed) broken".to_string(),
                    color: hex(RED),
                })
                .collect(),
        })
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let title = format!("Service levels against {}", self.knob);
        let xs = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.x))
                .chain(self.zero_limit_failures.iter().copied())
                .chain(self.answer)
        };
        if xs().next().is_none() {
            return super::draw_message(root, &title, "no points");
        }
        let (lo, hi) = xs().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.used))
            .chain([0.5, 2.0]);
        let y = log_range(ys).log_scale();
        if lo > 0.0 && hi / lo >= LOG_X_SPAN {
            self.chart(root, &title, (lo / 1.3..hi * 1.3).log_scale(), y, true)
        } else {
            let pad = ((hi - lo) * 0.06).max(hi.abs() * 0.05).max(1e-9);
            self.chart(root, &title, (lo - pad)..(hi + pad), y, false)
        }
    }
}

impl KnobFigure<'_> {
    fn chart<DB, XS, YS>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
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
        // The legend sits in a band of its own to the right: it never covers a point.
        let (plot, legend) = root.split_horizontally(root.dim_in_pixel().0 as i32 * 3 / 4);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, font(TITLE_PT))
            .margin(24)
            .x_label_area_size(80)
            .y_label_area_size(130)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.knob)
            .y_desc("share of the SLO used (log)")
            .x_label_formatter(&|v| {
                if log_x && !super::is_125(*v) {
                    String::new()
                } else {
                    short_count(*v)
                }
            })
            .y_label_formatter(&|v| {
                if super::is_125(*v) {
                    format!("{} %", short_count(*v * 100.0))
                } else {
                    String::new()
                }
            })
            .label_style(font(TICK_PT))
            .axis_desc_style(font(AXIS_PT))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        let (x_range, _) = (chart.x_range(), ());
        let line = RED.stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                [(x_range.start, 1.0), (x_range.end, 1.0)],
                line,
            ))
            .map_err(err)?;
        if let Some(a) = self.answer {
            let y_range = chart.y_range();
            let dashes = (0..40).map(|i| {
                let f = |k: f64| y_range.start * (y_range.end / y_range.start).powf(k / 40.0);
                PathElement::new(vec![(a, f(i as f64)), (a, f(i as f64 + 0.5))], BLACK)
            });
            chart.draw_series(dashes).map_err(err)?;
        }
        let mut labels = vec![("the SLO (100 %)".to_string(), RED)];
        for (i, s) in self.series.iter().enumerate() {
            let c = color(i);
            let mut pts: Vec<SloPoint> = s.points.clone();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.x, p.used)),
                    c.stroke_width(3),
                ))
                .map_err(err)?;
            // Filled: met; hollow: this SLO failed there.
            chart
                .draw_series(pts.iter().map(|p| {
                    let style = if p.ok { c.filled() } else { c.stroke_width(3) };
                    Circle::new((p.x, p.used), 7, style)
                }))
                .map_err(err)?;
            labels.push((s.label.clone(), c));
        }
        chart
            .draw_series(
                self.zero_limit_failures
                    .iter()
                    .map(|x| Cross::new((*x, 1.0), 10, BLACK.stroke_width(3))),
            )
            .map_err(err)?;
        if !self.zero_limit_failures.is_empty() {
            labels.push(("lost or failed > 0 (cross)".to_string(), BLACK));
        }
        if self.answer.is_some() {
            labels.push(("the answer (dashed)".to_string(), BLACK));
        }
        super::draw_legend(&legend, &labels)?;
        Ok(())
    }
}
