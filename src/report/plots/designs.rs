//! The interop designs side by side over a swept key (group size, say): one line per design of
//! a cost per delivered copy, log scales, and the crossover marked with a dashed line.

use super::{color, err, font, log_range, short_count, DrawResult, Figure};
use super::{AXIS_PT, TICK_PT, TITLE_PT};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One design's line (or one design at one value of the other keys).
#[derive(Clone, Debug, PartialEq)]
pub struct DesignSeries {
    pub label: String,
    pub design: String,
    /// (the swept key's value, the cost), by x.
    pub points: Vec<(f64, f64)>,
}

pub struct DesignFigure<'a> {
    pub name: &'a str,
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub series: &'a [DesignSeries],
    pub crossover: Option<f64>,
}

impl Figure for DesignFigure<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn caption(&self) -> String {
        let mark = match self.crossover {
            Some(x) => format!(
                " The dashed line marks where the first two lines cross ({} ≈ {}).",
                self.x_desc,
                super::trim_float((x * 10.0).round() / 10.0)
            ),
            None => " The lines do not cross over the values run.".to_string(),
        };
        format!(
            "{} against {}, one line per interop design (each point: all repeats of that grid point together; log scales).{mark}",
            self.title, self.x_desc
        )
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| *x > 0.0)
            .collect();
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| *y > 0.0)
            .collect();
        if xs.is_empty() || ys.is_empty() {
            return super::draw_message(root, self.title, "no points");
        }
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let (plot, legend) = root.split_horizontally(root.dim_in_pixel().0 as i32 * 3 / 4);
        let mut chart = ChartBuilder::on(&plot)
            .caption(self.title, font(TITLE_PT))
            .margin(24)
            .x_label_area_size(80)
            .y_label_area_size(130)
            .build_cartesian_2d(
                (lo / 1.3..hi * 1.3).log_scale(),
                log_range(ys.iter().copied()).log_scale(),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .x_label_formatter(&|v| short_count(*v))
            .y_label_formatter(&|v| {
                if super::is_125(*v) {
                    short_count(*v)
                } else {
                    String::new()
                }
            })
            .label_style(font(TICK_PT))
            .axis_desc_style(font(AXIS_PT))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)?;
        if let Some(at) = self.crossover {
            let y = chart.y_range();
            let dashes = (0..40).map(|i| {
                let f = |k: f64| y.start * (y.end / y.start).powf(k / 40.0);
                PathElement::new(vec![(at, f(i as f64)), (at, f(i as f64 + 0.5))], BLACK)
            });
            chart.draw_series(dashes).map_err(err)?;
        }
        let mut labels = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            let c = color(i);
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|p| p.0 > 0.0 && p.1 > 0.0)
                .collect();
            if pts.is_empty() {
                continue; // a design with nothing to show here (no MLS commits under the hub)
            }
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(3)))
                .map_err(err)?;
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 7, c.filled())))
                .map_err(err)?;
            labels.push((s.label.clone(), c));
        }
        if self.crossover.is_some() {
            labels.push(("crossover (dashed)".to_string(), BLACK));
        }
        // The legend in a band of its own, right of the plot: it never covers a point.
        super::draw_legend(&legend, &labels)?;
        Ok(())
    }
}
