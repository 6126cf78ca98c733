//! Building blocks of the self-contained report pages (run, compare, sweep): one HTML file with
//! its style inline and its figures as base64 PNG, so that it can be mailed or attached as is.

use super::plots::Drawn;
use base64::Engine as _;
use std::fmt::Write as _;

/// The interactive figures' style, shipped with their script (pages without them carry neither).
const INTERACTIVE_STYLE: &str = "
.iplot { position: relative; border: 1px solid #eee; max-width: 1400px; }
.iplot svg { width: 100%; display: block; font-family: inherit; user-select: none; }
.iplot-bar { display: flex; justify-content: space-between; align-items: center; padding: 0.3em 0.6em; font-weight: bold; }
.iplot-reset { font: inherit; font-weight: normal; cursor: pointer; }
.iplot-legend { padding: 0.3em 0.6em 0.6em; }
.iplot-key { display: inline-block; margin-right: 1.2em; cursor: pointer; user-select: none; }
.iplot-swatch { display: inline-block; width: 1.6em; height: 0.35em; vertical-align: middle; margin-right: 0.4em; }
.iplot-tip { position: absolute; display: none; pointer-events: none; background: rgba(255,255,255,0.95); border: 1px solid #bbb; padding: 0.3em 0.6em; font-size: 0.9em; white-space: nowrap; }
";

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Verdana, Arial, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; padding: 0 1em; }
h1 { font-size: 1.9em; margin-bottom: 0.2em; }
h2 { font-size: 1.4em; border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; font-size: 0.95em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.95em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
.pass { color: #0a7a2f; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; }
.badge { display: inline-block; padding: 0.15em 0.6em; border-radius: 0.3em; color: white; font-weight: bold; }
.badge.pass { background: #0a7a2f; color: white; }
.badge.fail { background: #b00020; color: white; }
figure { margin: 1.2em 0; }
figure img { width: 100%; max-width: 1400px; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.95em; margin-top: 0.3em; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
code { background: #f4f4f4; padding: 0 0.2em; }
";

/// Escapes text for HTML element content and attribute values.
/// A drawn figure as HTML: the PNG inline (base64), its caption, links to its PNG and SVG
/// files under `plots/`.
pub fn figure_html(d: &Drawn) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(&d.png);
    let (data, hint) = match &d.interactive {
        Some(json) => (
            format!(" data-plot=\"{}\"", esc(json)),
            " Hover for values, drag to zoom, click a legend entry to hide its line.",
        ),
        None => (String::new(), ""),
    };
    format!(
        "<figure id=\"{n}\"{data}><img alt=\"{alt}\" src=\"data:image/png;base64,{b64}\">\
         <figcaption>{cap}{hint} <a href=\"plots/{n}.svg\">SVG</a> · <a href=\"plots/{n}.png\">PNG</a></figcaption></figure>",
        n = esc(&d.name),
        alt = esc(&d.caption),
        cap = esc(&d.caption),
    )
}

/// The script that makes `data-plot` figures interactive, when `body` has one (a page without
/// them carries no script).
pub fn interactive_script(body: &str) -> String {
    if body.contains(" data-plot=\"") {
        format!(
            "<style>{INTERACTIVE_STYLE}</style>\n<script>{}</script>\n",
            include_str!("interactive.js")
        )
    } else {
        String::new()
    }
}

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A page under construction.
pub struct Page {
    body: String,
}

impl Page {
    pub fn new() -> Self {
        Page {
            body: String::new(),
        }
    }

    pub fn h1(&mut self, text: &str) {
        let _ = writeln!(self.body, "<h1>{}</h1>", esc(text));
    }

    pub fn h2(&mut self, text: &str) {
        let _ = writeln!(self.body, "<h2>{}</h2>", esc(text));
    }

    /// Raw HTML; the caller escapes what it interpolates.
    pub fn raw(&mut self, html: &str) {
        self.body.push_str(html);
        self.body.push('\n');
    }

    pub fn para(&mut self, class: &str, text: &str) {
        let _ = writeln!(self.body, "<p class=\"{class}\">{}</p>", esc(text));
    }

    /// A table; the first column is left-aligned (names), the others right-aligned (numbers).
    /// Cells are escaped, except those wrapped by [`Cell::Html`].
    pub fn table(&mut self, header: &[&str], rows: &[Vec<Cell>]) {
        self.body.push_str("<table>\n<tr>");
        for (i, h) in header.iter().enumerate() {
            let class = if i == 0 { " class=\"l\"" } else { "" };
            let _ = write!(self.body, "<th{class}>{}</th>", esc(h));
        }
        self.body.push_str("</tr>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for (i, c) in row.iter().enumerate() {
                let class = if i == 0 { " class=\"l\"" } else { "" };
                let inner = match c {
                    Cell::Text(t) => esc(t),
                    Cell::Html(h) => h.clone(),
                };
                let _ = write!(self.body, "<td{class}>{inner}</td>");
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }

    /// The figure as a base64 PNG, with links to its PNG and SVG files under `plots/`.
    pub fn figure(&mut self, d: &Drawn) {
        self.body.push_str(&figure_html(d));
        self.body.push('\n');
    }

    /// The whole document.
    pub fn finish(self, title: &str) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}{}</body>\n</html>\n",
            esc(title),
            self.body,
            interactive_script(&self.body)
        )
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

/// A table cell: text (escaped) or trusted HTML.
#[derive(Clone, Debug)]
pub enum Cell {
    Text(String),
    Html(String),
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

/// "PASS"/"FAIL" with its colour.
pub fn pass_cell(ok: bool) -> Cell {
    Cell::Html(if ok {
        "<span class=\"pass\">PASS</span>".to_string()
    } else {
        "<span class=\"fail\">FAIL</span>".to_string()
    })
}

/// A link to a file beside the report.
pub fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

/// A number for a table: integers in full, others with 3 decimals.
pub fn num(x: f64) -> String {
    crate::metrics::summary::trim(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
