//! Plots for capacity planners, drawn with plotters into PNG and SVG. Fresh machines have no
//! fonts, so the one font is compiled in (see [`FONT`]) and plotters uses it through
//! `ab_glyph`, never the system's. Each figure implements [`Figure`] once, generic over the
//! backend, and [`render`] draws it twice: SVG (for slides and zooming) and PNG (embedded in
//! report.html, so that the page looks the same wherever it is opened).

pub mod bars;
pub mod capacity;
pub mod designs;
pub mod interactive;
pub mod knob;
pub mod spectrum;
pub mod time;

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// DejaVu Sans 2.37 (Bitstream Vera license; DejaVu changes public domain), from Debian's
/// fonts-dejavu-core; license text in assets/fonts/LICENSE-DejaVu.txt.
pub const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// The family name the figures ask for.
pub const FAMILY: &str = "sans-serif";

/// Slide-sized canvas; font sizes below are chosen for it.
pub const WIDTH_PX: u32 = 1400;
pub const HEIGHT_PX: u32 = 800;
pub const TITLE_PT: u32 = 38;
pub const AXIS_PT: u32 = 26;
pub const TICK_PT: u32 = 22;
pub const LEGEND_PT: u32 = 22;

/// Colours per series: Okabe-Ito's eight, chosen to stay apart for colour-blind readers, then
/// four more from Paul Tol's palettes (wine, olive, indigo, grey) so that up to twelve series
/// (the crypto plot has nine operations and more) never share a colour.
pub const PALETTE: [RGBColor; 12] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
    RGBColor(136, 34, 85),
    RGBColor(153, 153, 51),
    RGBColor(51, 34, 136),
    RGBColor(136, 136, 136),
];

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("font: the embedded font could not be registered")]
    Font,
    #[error("drawing {name}: {message}")]
    Draw { name: String, message: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Result type of figure drawing; the message is plotters' error text.
pub type DrawResult = Result<(), String>;

/// Turns any plotters error into the message kept in [`PlotError::Draw`].
pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A figure, drawable on any plotters backend.
pub trait Figure {
    /// File stem under plots/ (`latency_spectrum` -> plots/latency_spectrum.{png,svg}).
    fn name(&self) -> &str;
    /// Caption under the figure in report.html.
    fn caption(&self) -> String;
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
    fn size(&self) -> (u32, u32) {
        (WIDTH_PX, HEIGHT_PX)
    }
    /// The figure's lines as numbers, for the report's hover, zoom and toggles; `None` keeps
    /// the static image alone.
    fn interactive(&self) -> Option<interactive::Interactive> {
        None
    }
}

/// A drawn figure: where its files are and what report.html embeds.
#[derive(Clone, Debug)]
pub struct Drawn {
    pub name: String,
    pub caption: String,
    pub png: Vec<u8>,
    /// [`Figure::interactive`] as JSON.
    pub interactive: Option<String>,
}

fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if *ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

/// Draws `fig` to `dir/<name>.svg` and `dir/<name>.png` (dir is created if missing).
pub fn render<F: Figure>(fig: &F, dir: &Path) -> Result<Drawn, PlotError> {
    register_font()?;
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let draw_err = |message: String| PlotError::Draw {
        name: fig.name().to_string(),
        message,
    };
    let size = fig.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(err(e)))?;
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(err(e)))?;
    }
    let svg_path = dir.join(format!("{}.svg", fig.name()));
    std::fs::write(&svg_path, svg).map_err(|source| PlotError::Io {
        path: svg_path,
        source,
    })?;
    let png_path = dir.join(format!("{}.png", fig.name()));
    {
        let root = BitMapBackend::new(&png_path, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(err(e)))?;
        fig.draw(&root).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(err(e)))?;
    }
    let png = std::fs::read(&png_path).map_err(|source| PlotError::Io {
        path: png_path,
        source,
    })?;
    let interactive = match fig.interactive() {
        Some(i) => Some(serde_json::to_string(&i).map_err(|e| draw_err(err(e)))?),
        None => None,
    };
    Ok(Drawn {
        name: fig.name().to_string(),
        caption: fig.caption(),
        png,
        interactive,
    })
}

/// The text style of titles, axis descriptions, ticks and legends.
pub fn font(pt: u32) -> TextStyle<'static> {
    (FAMILY, pt).into_font().into()
}

/// Stroke `i` of the palette.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// "1.5k", "20M": short labels for counts on axes.
pub fn short_count(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{}G", trim_float(x / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim_float(x / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim_float(x / 1e3))
    } else {
        trim_float(x)
    }
}

/// At most 2 decimals, no trailing zeros.
pub fn trim_float(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A latency in ms as an axis label: "250ms", "1.5s", "1000s", "30h".
pub fn ms_label(ms: f64) -> String {
    if ms >= 100_000_000.0 {
        format!("{}h", trim_float(ms / 3_600_000.0))
    } else if ms >= 1000.0 {
        format!("{}s", trim_float(ms / 1000.0))
    } else {
        format!("{}ms", trim_float(ms))
    }
}

/// A log-axis range for positive values, from a 1-2-5 step at or below the smallest to one at
/// or above the largest (with 5% headroom), never empty.
pub fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.1..10.0;
    }
    let lo = step_125(lo, false);
    let hi = step_125(hi * 1.05, true).max(lo * 10.0);
    lo..hi
}

/// The 1-2-5 step (1, 2, 5, 10, 20, ...) at or below `x` (`up`: at or above).
fn step_125(x: f64, up: bool) -> f64 {
    let decade = 10f64.powf(x.log10().floor());
    let steps = [1.0, 2.0, 5.0, 10.0];
    let m = x / decade;
    if up {
        steps.iter().find(|s| **s >= m - 1e-9).map_or(10.0, |s| *s) * decade
    } else {
        steps
            .iter()
            .rev()
            .find(|s| **s <= m + 1e-9)
            .map_or(1.0, |s| *s)
            * decade
    }
}

/// Whether `x` is 1, 2 or 5 times a power of ten: the labels kept on a log axis.
pub fn is_125(x: f64) -> bool {
    if x.is_nan() || x <= 0.0 {
        return false;
    }
    let m = x / 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|s| (m - s).abs() < 1e-6 * s)
}

/// An empty figure with a centered message, for data that is absent.
pub fn draw_message<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    message: &str,
) -> DrawResult {
    let root = root
        .margin(14, 0, 0, 0)
        .titled(title, font(TITLE_PT))
        .map_err(err)?;
    let (w, h) = root.dim_in_pixel();
    let style = font(AXIS_PT).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Center,
        plotters::style::text_anchor::VPos::Center,
    ));
    root.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))
    .map_err(err)
}

/// Characters of a legend line in the band right of a plot.
const LEGEND_CHARS: usize = 22;

/// `text` in lines of at most about `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(l) if l.len() + 1 + word.len() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// A legend in `band`, a strip of its own right of the plot (so it never covers a point): a
/// stroke of each label's colour, then the label, wrapped at its first space past the band's
/// width ("interop.delivered_p99" over "<= 2000 ms") so that none runs off the canvas.
pub fn draw_legend<DB: DrawingBackend>(
    band: &DrawingArea<DB, Shift>,
    labels: &[(String, RGBColor)],
) -> DrawResult {
    let row = (LEGEND_PT as i32 * 3) / 2;
    let mut y = 110;
    for (text, c) in labels {
        band.draw(&PathElement::new(
            vec![(10, y + row / 3), (50, y + row / 3)],
            c.stroke_width(3),
        ))
        .map_err(err)?;
        for line in wrap(text, LEGEND_CHARS) {
            band.draw(&Text::new(line, (60, y), font(LEGEND_PT)))
                .map_err(err)?;
            y += row;
        }
        y += row / 3;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn legend_labels_wrap_at_spaces() {
        assert_eq!(
            super::wrap("interop.delivered_p99 <= 2000 ms", 22),
            ["interop.delivered_p99", "<= 2000 ms"]
        );
        assert_eq!(super::wrap("the SLO (100 %)", 22), ["the SLO (100 %)"]);
    }
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(short_count(15_300.0), "15.3k");
        assert_eq!(short_count(12.0), "12");
        assert_eq!(ms_label(250.0), "250ms");
        assert_eq!(ms_label(1500.0), "1.5s");
        assert_eq!(ms_label(120_000.0), "120s");
        assert_eq!(ms_label(1_000_000.0), "1000s");
        let r = log_range([3.0, 450.0].into_iter());
        assert_eq!((r.start, r.end), (2.0, 500.0));
        let r = log_range([0.3, 0.4].into_iter());
        assert_eq!((r.start, r.end), (0.2, 2.0));
        assert!(is_125(200.0) && is_125(0.05) && !is_125(300.0));
    }
}
