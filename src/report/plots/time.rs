//! Figures over simulated time, from timeseries.csv's rows: delivery percentiles with the fault
//! windows shaded, sent / delivered / in flight, and queue depths.

use super::interactive::{hex, Axis, Band, Interactive, Line as PlotLine, Scale, Unit};
use super::{color, err, font, log_range, ms_label, short_count, DrawResult, Figure};
use super::{AXIS_PT, LEGEND_PT, TICK_PT, TITLE_PT};
use crate::metrics::{Sample, TimeSeries};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// A fault's active window, for shading.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    pub start_s: f64,
    /// The end of the run when the fault never heals.
    pub end_s: f64,
    pub label: String,
}

/// A line of a figure: its label, palette index and value per row.
type Line<T> = (&'static str, usize, fn(&Sample) -> T);

/// Which time figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeKind {
    /// p50 / p99 / max of the deliveries of each interval.
    Percentiles,
    /// Sent and delivered per second, and messages in flight.
    Throughput,
    /// Offline-queue and gateway-queue depth.
    Queues,
}

pub struct TimeFigure<'a> {
    pub kind: TimeKind,
    pub series: &'a TimeSeries,
    pub faults: &'a [FaultWindow],
    /// End of the send window (the drain starts there), seconds.
    pub send_end_s: f64,
}

fn x_range(ts: &TimeSeries) -> std::ops::Range<f64> {
    let end = ts.rows.last().map_or(1.0, |r| r.t_s).max(ts.interval_s);
    0.0..end
}

/// Consecutive rows where `f` has a value, as separate line segments (gaps stay gaps).
fn segments(rows: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for r in rows {
        match f(r) {
            Some(v) if v > 0.0 => cur.push((r.t_s, v)),
            _ => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl Figure for TimeFigure<'_> {
    fn name(&self) -> &str {
        match self.kind {
            TimeKind::Percentiles => "latency_over_time",
            TimeKind::Throughput => "throughput",
            TimeKind::Queues => "queues",
        }
    }
    fn caption(&self) -> String {
        match self.kind {
            TimeKind::Percentiles => format!(
                "Delivery latency percentiles per {}s interval (created to shown, every device), fault windows shaded.",
                super::trim_float(self.series.interval_s)
            ),
            TimeKind::Throughput => "Messages sent and delivered per second (a message is delivered once, when its last device shows it), device copies shown per second (left axis), and messages accepted but not yet settled (right axis).".to_string(),
            TimeKind::Queues => "Offline-queue depth (messages stored for offline devices, all servers) and gateway CPU queue depth (frames waiting or in service).".to_string(),
        }
    }
    fn interactive(&self) -> Option<Interactive> {
        let rows = &self.series.rows;
        if rows.is_empty() {
            return None;
        }
        let per_s = 1.0 / self.series.interval_s.max(1e-9);
        let line =
            |name: &str, c: usize, width: u32, right: bool, f: &dyn Fn(&Sample) -> Option<f64>| {
                PlotLine {
                    name: name.to_string(),
                    color: hex(color(c)),
                    width,
                    points: rows.iter().map(|r| (r.t_s, f(r))).collect(),
                    right,
                }
            };
        let time = Axis::new("simulated time", Scale::Linear, Unit::S);
        let (title, y, y2, lines) = match self.kind {
            TimeKind::Percentiles => (
                "Delivery latency over time",
                Axis::new("delivery latency", Scale::Log, Unit::Ms),
                None,
                vec![
                    line("p50", 0, 3, false, &|r| r.latency.p50_ms),
                    line("p99", 1, 3, false, &|r| r.latency.p99_ms),
                    line("max", 6, 3, false, &|r| r.latency.max_ms),
                ],
            ),
            TimeKind::Throughput => (
                "Sent, delivered and in flight",
                Axis::new("messages per second", Scale::Linear, Unit::Count),
                Some(Axis::new(
                    "in flight (messages)",
                    Scale::Linear,
                    Unit::Count,
                )),
                vec![
                    line("sent / s", 0, 3, false, &|r| Some(r.sent as f64 * per_s)),
                    line("messages delivered / s", 2, 3, false, &|r| {
                        Some(r.messages_delivered as f64 * per_s)
                    }),
                    line("device deliveries / s", 3, 2, false, &|r| {
                        Some(r.device_deliveries as f64 * per_s)
                    }),
                    line("in flight (right axis)", 1, 3, true, &|r| {
                        Some(r.in_flight as f64)
                    }),
                ],
            ),
            TimeKind::Queues => (
                "Queue depth over time",
                Axis::new("offline queue (messages)", Scale::Linear, Unit::Count),
                Some(Axis::new(
                    "gateway queue (frames)",
                    Scale::Linear,
                    Unit::Count,
                )),
                vec![
                    line("offline queue (messages)", 0, 3, false, &|r| {
                        Some(r.offline_queue as f64)
                    }),
                    line("gateway queue (frames, right axis)", 1, 3, true, &|r| {
                        Some(r.gateway_queue as f64)
                    }),
                ],
            ),
        };
        Some(Interactive {
            title: title.to_string(),
            x: time,
            y,
            y2,
            lines,
            bands: self
                .faults
                .iter()
                .map(|f| Band {
                    from: f.start_s,
                    to: f.end_s,
                    label: f.label.clone(),
                })
                .collect(),
            marks: Vec::new(),
        })
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        if self.series.rows.is_empty() {
            return super::draw_message(root, "Over time", "no timeseries rows");
        }
        match self.kind {
            TimeKind::Percentiles => self.percentiles(root),
            TimeKind::Throughput => self.throughput(root),
            TimeKind::Queues => self.queues(root),
        }
    }
}

impl TimeFigure<'_> {
    fn percentiles<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let rows = &self.series.rows;
        let y = log_range(
            rows.iter()
                .flat_map(|r| [r.latency.p50_ms, r.latency.max_ms].into_iter().flatten()),
        );
        let mut chart = ChartBuilder::on(root)
            .caption("Delivery latency over time", font(TITLE_PT))
            .margin(24)
            .x_label_area_size(80)
            .y_label_area_size(130)
            .build_cartesian_2d(x_range(self.series), y.clone().log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .x_label_formatter(&|v| super::trim_float(*v))
            .y_desc("delivery latency (log scale)")
            .y_label_formatter(&|v| {
                if super::is_125(*v) {
                    ms_label(*v)
                } else {
                    String::new()
                }
            })
            .label_style(font(TICK_PT))
            .axis_desc_style(font(AXIS_PT))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        self.shade_faults(&mut chart, y.start, y.end)?;
        let lines: [Line<Option<f64>>; 3] = [
            ("p50", 0, |r| r.latency.p50_ms),
            ("p99", 1, |r| r.latency.p99_ms),
            ("max", 6, |r| r.latency.max_ms),
        ];
        for (label, c, f) in lines {
            let style = color(c).stroke_width(3);
            let mut first = true;
            for seg in segments(rows, f) {
                let s = chart
                    .draw_series(LineSeries::new(seg, style))
                    .map_err(err)?;
                if first {
                    s.label(label).legend(move |(x, y)| {
                        PathElement::new(vec![(x - 4, y), (x + 40, y)], style)
                    });
                    first = false;
                }
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    }

    fn throughput<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let rows = &self.series.rows;
        let per_s = 1.0 / self.series.interval_s.max(1e-9);
        let rate_max = rows
            .iter()
            .map(|r| r.sent.max(r.device_deliveries) as f64 * per_s)
            .fold(1.0, f64::max);
        let flight_max = rows.iter().map(|r| r.in_flight as f64).fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(root)
            .caption("Sent, delivered and in flight", font(TITLE_PT))
            .margin(24)
            .x_label_area_size(80)
            .y_label_area_size(130)
            .right_y_label_area_size(130)
            .build_cartesian_2d(x_range(self.series), 0.0..rate_max * 1.1)
            .map_err(err)?
            .set_secondary_coord(x_range(self.series), 0.0..flight_max * 1.1);
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .x_label_formatter(&|v| super::trim_float(*v))
            .y_desc("messages per second")
            .y_label_formatter(&|v| short_count(*v))
            .label_style(font(TICK_PT))
            .axis_desc_style(font(AXIS_PT))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        chart
            .configure_secondary_axes()
            .y_desc("in flight (messages)")
            .y_label_formatter(&|v| short_count(*v))
            .label_style(font(TICK_PT))
            .axis_desc_style(font(AXIS_PT))
            .draw()
            .map_err(err)?;
        self.shade_faults(&mut chart, 0.0, rate_max * 1.1)?;
        let sent = rows.iter().map(|r| (r.t_s, r.sent as f64 * per_s));
        let messages = rows
            .iter()
            .map(|r| (r.t_s, r.messages_delivered as f64 * per_s));
        let copies = rows
            .iter()
            .map(|r| (r.t_s, r.device_deliveries as f64 * per_s));
        let s0 = color(0).stroke_width(3);
        let s1 = color(2).stroke_width(3);
        let s2 = color(1).stroke_width(3);
        let s3 = color(3).stroke_width(2);
        chart
            .draw_series(LineSeries::new(sent, s0))
            .map_err(err)?
            .label("sent / s")
            .legend(move |(x, y)| PathElement::new(vec![(x - 4, y), (x + 40, y)], s0));
        chart
            .draw_series(LineSeries::new(messages, s1))
            .map_err(err)?
            .label("messages delivered / s")
            .legend(move |(x, y)| PathElement::new(vec![(x - 4, y), (x + 40, y)], s1));
        chart
            .draw_series(LineSeries::new(copies, s3))
            .map_err(err)?
            .label("device deliveries / s")
            .legend(move |(x, y)| PathElement::new(vec![(x - 4, y), (x + 40, y)], s3));
        chart
            .draw_secondary_series(LineSeries::new(
                rows.iter().map(|r| (r.t_s, r.in_flight as f64)),
                s2,
            ))
            .map_err(err)?
            .label("in flight (right axis)")
            .legend(move |(x, y)| PathElement::new(vec![(x - 4, y), (x + 40, y)], s2));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(LEGEND_PT))
            .legend_area_size(56)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .margin(16)
            .draw()
            .map_err(err)
    }

    fn queues<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let root = root
            .margin(14, 0, 0, 0)
            .titled("Queue depth over time", font(TITLE_PT))
            .map_err(err)?;
        let (_, h) = root.dim_in_pixel();
        let (top, bottom) = root.split_vertically(h / 2);
        let areas = [&top, &bottom];
        let panels: [Line<f64>; 2] = [
            ("offline queue (messages)", 0, |r| r.offline_queue as f64),
            ("gateway queue (frames)", 1, |r| r.gateway_queue as f64),
        ];
        for (area, (label, c, f)) in areas.into_iter().zip(panels) {
            let rows = &self.series.rows;
            let y_max = rows.iter().map(f).fold(1.0, f64::max) * 1.15;
            let mut chart = ChartBuilder::on(area)
                .margin(16)
                .x_label_area_size(70)
                .y_label_area_size(130)
                .build_cartesian_2d(x_range(self.series), 0.0..y_max)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("simulated time (s)")
                .x_label_formatter(&|v| super::trim_float(*v))
                .x_label_formatter(&|v| super::trim_float(*v))
                .y_desc(label)
                .y_labels(5)
                .y_label_formatter(&|v| short_count(*v))
                .label_style(font(TICK_PT))
                .axis_desc_style(font(AXIS_PT))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(err)?;
            self.shade_faults(&mut chart, 0.0, y_max)?;
            let style = color(c).stroke_width(3);
            chart
                .draw_series(LineSeries::new(rows.iter().map(|r| (r.t_s, f(r))), style))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x - 4, y), (x + 40, y)], style));
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }

    /// Shades each fault window between `y_lo` and `y_hi` and labels it at the top; marks the
    /// start of the drain with a dashed line.
    fn shade_faults<'a, DB: DrawingBackend + 'a, X, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
        y_lo: f64,
        y_hi: f64,
    ) -> DrawResult
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let shade = RGBColor(230, 80, 80);
        let base = chart.plotting_area().get_base_pixel();
        let at = |chart: &ChartContext<'a, DB, Cartesian2d<X, Y>>, x: f64, y: f64| {
            let p = chart.backend_coord(&(x, y));
            (p.0 - base.0, p.1 - base.1)
        };
        for (i, f) in self.faults.iter().enumerate() {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(f.start_s, y_lo), (f.end_s, y_hi)],
                    shade.mix(0.13).filled(),
                )))
                .map_err(err)?;
            // Stagger the labels of nearby faults so that they do not overlap.
            let row = (i % 3) as i32;
            let p = at(chart, f.start_s, y_hi);
            let text = Text::new(
                f.label.clone(),
                (p.0 + 6, p.1 + 8 + row * 28),
                font(LEGEND_PT).color(&RGBColor(160, 30, 30)),
            );
            chart
                .plotting_area()
                .strip_coord_spec()
                .draw(&text)
                .map_err(err)?;
        }
        let drain = RGBColor(120, 120, 120);
        let style = ShapeStyle::from(drain).stroke_width(2);
        chart
            .plotting_area()
            .draw(&DashedPathElement::new(
                vec![(self.send_end_s, y_lo), (self.send_end_s, y_hi)],
                8u32,
                6u32,
                style,
            ))
            .map_err(err)?;
        // Half-way down: clear of the legend (top right) and of the near-zero lines of the drain.
        let (top, bottom) = (
            at(chart, self.send_end_s, y_hi),
            at(chart, self.send_end_s, y_lo),
        );
        let label = Text::new(
            "drain →".to_string(),
            (top.0 + 6, (top.1 + bottom.1) / 2),
            font(TICK_PT).color(&drain),
        );
        chart
            .plotting_area()
            .strip_coord_spec()
            .draw(&label)
            .map_err(err)
    }
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    pos: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(pos)
        .label_font(font(LEGEND_PT))
        .legend_area_size(56)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .margin(16)
        .draw()
        .map_err(err)
}
