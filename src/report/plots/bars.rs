//! Grouped bar charts: the outcome breakdown of a run (per path kind) and the crypto cost per
//! message kind (when the summary has a `crypto` section).

use super::{color, err, font, short_count, trim_float, DrawResult, Figure};
use super::{AXIS_PT, LEGEND_PT, TICK_PT, TITLE_PT};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Categories along x, one bar per series in each category.
pub struct GroupedBars {
    pub name: String,
    pub title: String,
    pub caption: String,
    pub y_desc: String,
    pub categories: Vec<String>,
    /// (label, one value per category).
    pub series: Vec<(String, Vec<f64>)>,
    /// Log y axis: for counts that span orders of magnitude (delivered vs lost).
    pub log_y: bool,
}

impl Figure for GroupedBars {
    fn name(&self) -> &str {
        &self.name
    }
    fn caption(&self) -> String {
        self.caption.clone()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let max = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0, f64::max);
        if self.categories.is_empty() || self.series.is_empty() {
            return super::draw_message(root, &self.title, "nothing to show");
        }
        let n = self.categories.len() as f64;
        if self.log_y {
            // Headroom for the legend above the tallest bar: a decade or two.
            let headroom = if self.series.len() > 3 { 300.0 } else { 3.0 };
            let top = 10f64.powf((max.max(1.0) * headroom).log10().ceil());
            let mut chart = ChartBuilder::on(root)
                .caption(&self.title, font(TITLE_PT))
                .margin(24)
                .x_label_area_size(80)
                .y_label_area_size(130)
                .build_cartesian_2d(0.0..n, (0.5..top).log_scale())
                .map_err(err)?;
            self.mesh(&mut chart)?;
            self.bars(&mut chart, 0.5)
        } else {
            let mut chart = ChartBuilder::on(root)
                .caption(&self.title, font(TITLE_PT))
                .margin(24)
                .x_label_area_size(80)
                .y_label_area_size(130)
                .build_cartesian_2d(0.0..n, 0.0..(max * 1.2).max(1e-9))
                .map_err(err)?;
            self.mesh(&mut chart)?;
            self.bars(&mut chart, 0.0)
        }
    }
}

impl GroupedBars {
    fn mesh<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    ) -> DrawResult {
        let cats = &self.categories;
        let label = |x: &f64| {
            // Category i is centred at i + 0.5.
            let i = (x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                cats.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(cats.len() * 2 + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&|v| short_count(*v))
            .y_desc(self.y_desc.as_str())
            .label_style(font(TICK_PT))
            .axis_desc_style(font(AXIS_PT))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(err)
    }

    fn bars<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
        floor: f64,
    ) -> DrawResult {
        let k = self.series.len() as f64;
        let width = 0.8 / k;
        for (si, (label, values)) in self.series.iter().enumerate() {
            let c = color(si);
            let rects = values
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > floor)
                .map(|(ci, v)| {
                    let x0 = ci as f64 + 0.1 + si as f64 * width;
                    Rectangle::new([(x0, floor), (x0 + width * 0.92, *v)], c.filled())
                });
            chart
                .draw_series(rects)
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 24, y + 8)], c.filled()));
            // Many series: smaller labels, and none for zero (the missing bar says it).
            let crowded = self.series.len() > 3;
            let pt = if crowded { TICK_PT - 8 } else { TICK_PT - 2 };
            let style = font(pt).pos(Pos::new(HPos::Center, VPos::Bottom));
            let texts = values
                .iter()
                .enumerate()
                .filter(|(_, v)| !crowded || **v > floor)
                .map(|(ci, v)| {
                    let x = ci as f64 + 0.1 + (si as f64 + 0.46) * width;
                    let y = if *v > floor { *v } else { floor };
                    Text::new(short_count_exact(*v), (x, y), style.clone())
                });
            chart.draw_series(texts).map_err(err)?;
        }
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
}

/// Counts below 10k in full (no decimals from 100 up), larger ones shortened.
fn short_count_exact(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        short_count(v)
    } else if v.abs() >= 100.0 {
        format!("{}", v.round())
    } else {
        trim_float(v)
    }
}
