//! Bad-input errors for scenario files. A scenario is written by hand, so one run of `check`
//! should list every problem in the file at once, each with its place (file:line:col), its key
//! path and what was expected, rather than the first one only.

use std::fmt;
use std::ops::Range;

/// One problem in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 when the problem has no place in the text (the file could not be read).
    pub line: u32,
    /// 1-based, in characters; 0 together with `line`.
    pub col: u32,
    /// Dotted path of the key, with 0-based indices for arrays of tables (`provider[2].users`);
    /// empty for problems of the whole file (syntax errors, unreadable file).
    pub key_path: String,
    pub message: String,
    /// A suggestion, such as "did you mean 'loss'?".
    pub help: Option<String>,
    /// The line of the file the problem is on, to show under it with a caret.
    pub snippet: Option<Snippet>,
}

/// A line of the source and the part of it a problem is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    /// The line's text, without its end of line (cut at [`SNIPPET_CHARS_MAX`] characters).
    pub text: String,
    /// 0-based, in characters, within `text`.
    pub caret_col: u32,
    /// Characters under the caret, at least 1.
    pub caret_width: u32,
}

/// Longest line shown under a problem; a scenario line is short, a pasted blob is not.
const SNIPPET_CHARS_MAX: usize = 160;

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        write!(f, ": ")?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        if let Some(s) = &self.snippet {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            let indent = " ".repeat(s.caret_col as usize);
            let carets = "^".repeat(s.caret_width as usize);
            write!(f, "\n {number} | {}\n {pad} | {indent}{carets}", s.text)?;
        }
        Ok(())
    }
}

/// Every problem found in one scenario file, in file order; never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioErrors {
    pub problems: Vec<Problem>,
}

impl ScenarioErrors {
    pub fn len(&self) -> usize {
        self.problems.len()
    }
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.problems.iter()
    }
    /// A problem of the whole file, without a place in its text.
    pub(crate) fn whole_file(file: &str, message: String) -> Self {
        let problem = Problem {
            file: file.to_string(),
            line: 0,
            col: 0,
            key_path: String::new(),
            message,
            help: None,
            snippet: None,
        };
        ScenarioErrors {
            problems: vec![problem],
        }
    }
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Collects problems while the scenario is walked, turning byte offsets into line:col.
pub(crate) struct Ctx<'s> {
    source: &'s str,
    file: &'s str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    problems: Vec<(usize, Problem)>,
    /// A cost table was given on the command line (`--cost-table`): the file's own
    /// `[e2ee] cost_table` path is not read (it may be outside the scenario's folder).
    cost_table_given: bool,
}

impl<'s> Ctx<'s> {
    pub fn new(source: &'s str, file: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Ctx {
            source,
            file,
            line_starts,
            problems: Vec::new(),
            cost_table_given: false,
        }
    }

    /// Marks the file's cost table path as overridden by one given on the command line.
    pub fn with_cost_table_given(mut self, given: bool) -> Self {
        self.cost_table_given = given;
        self
    }

    pub fn cost_table_given(&self) -> bool {
        self.cost_table_given
    }

    pub fn problem(
        &mut self,
        span: Range<usize>,
        path: &str,
        message: String,
        help: Option<String>,
    ) {
        let (line, col) = self.line_col(span.start);
        let problem = Problem {
            file: self.file.to_string(),
            line,
            col,
            key_path: path.to_string(),
            message,
            help,
            snippet: self.snippet(line, col, &span),
        };
        self.problems.push((span.start, problem));
    }

    pub fn error(&mut self, span: Range<usize>, path: &str, message: String) {
        self.problem(span, path, message, None);
    }

    /// The text being checked.
    pub fn source(&self) -> &'s str {
        self.source
    }

    /// The name of the file being checked, as problems show it.
    pub fn file_name(&self) -> &str {
        self.file
    }

    /// Adds the problems of another file (one this file names, such as a cost table), sorted
    /// with this file's problems as if found at byte `offset` of this file.
    pub fn append(&mut self, offset: usize, errors: ScenarioErrors) {
        self.problems
            .extend(errors.problems.into_iter().map(|p| (offset, p)));
    }

    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Problems so far; comparing two counts tells whether a part of the walk found any.
    pub fn problem_count(&self) -> usize {
        self.problems.len()
    }

    /// The problems in file order (stable: problems at one place keep the order found).
    pub fn finish(mut self) -> ScenarioErrors {
        self.problems.sort_by_key(|(offset, _)| *offset);
        ScenarioErrors {
            problems: self.problems.into_iter().map(|(_, p)| p).collect(),
        }
    }

    /// The text of `line` with a caret under `span` (clipped to the line), when the file has
    /// that line.
    fn snippet(&self, line: u32, col: u32, span: &Range<usize>) -> Option<Snippet> {
        let start = *self.line_starts.get((line as usize).checked_sub(1)?)?;
        let rest = self.source.get(start..)?;
        let text = rest.split('\n').next().unwrap_or("").trim_end_matches('\r');
        if line as usize == self.line_starts.len() && text.is_empty() {
            return None; // the end of the file: nothing to point at
        }
        let shown: String = text.chars().take(SNIPPET_CHARS_MAX).collect();
        let shown_chars = shown.chars().count() as u32;
        let caret_col = col.saturating_sub(1).min(shown_chars);
        let line_end = start + text.len();
        let (from, to) = (span.start.min(line_end), span.end.min(line_end));
        let spanned = self
            .source
            .get(from..to.max(from))
            .map_or(0, |t| t.chars().count()) as u32;
        let caret_width = spanned.min(shown_chars.saturating_sub(caret_col)).max(1);
        Some(Snippet {
            text: shown,
            caret_col,
            caret_width,
        })
    }

    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.source.len());
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let start = self.line_starts[line - 1];
        let col = match self.source.get(start..offset) {
            Some(text) => text.chars().count(),
            None => offset - start,
        };
        (to_u32(line), to_u32(col + 1))
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The known name closest to `found` by edit distance, if close enough to be a likely typo.
pub(crate) fn did_you_mean(found: &str, known: &[&str]) -> Option<String> {
    let found_lower = found.to_ascii_lowercase();
    let (best, distance) = known
        .iter()
        .map(|k| (*k, edit_distance(&found_lower, k)))
        .min_by_key(|(_, d)| *d)?;
    let limit = (found.chars().count().max(best.len()) / 3).max(1);
    (distance <= limit).then(|| format!("did you mean '{best}'?"))
}

/// Levenshtein distance over characters; inputs are short keys, so O(n*m) is fine. Inputs are
/// capped so that a pathological key cannot cost much.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    const LEN_MAX: usize = 64;
    let a: Vec<char> = a.chars().take(LEN_MAX).collect();
    let b: Vec<char> = b.chars().take(LEN_MAX).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("los", "loss"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_only_close_keys() {
        assert_eq!(
            did_you_mean("los", &["loss", "latency"]).as_deref(),
            Some("did you mean 'loss'?")
        );
        assert_eq!(
            did_you_mean("Seed", &["seed", "name"]).as_deref(),
            Some("did you mean 'seed'?")
        );
        assert_eq!(did_you_mean("zzzzzz", &["loss", "latency"]), None);
    }

    #[test]
    fn caret_sits_under_the_span() {
        let mut ctx = Ctx::new("[run]\nseed = \"x\"\n", "s.toml");
        ctx.error(13..16, "run.seed", "expected an integer".into());
        let shown = ctx.finish().to_string();
        assert_eq!(
            shown,
            "s.toml:2:8: run.seed: expected an integer\n 2 | seed = \"x\"\n   |        ^^^"
        );
    }

    #[test]
    fn no_snippet_without_a_line() {
        let mut ctx = Ctx::new("a = 1\n", "s.toml");
        ctx.error(6..6, "", "at the end".into());
        assert_eq!(ctx.finish().problems[0].snippet, None);
    }

    #[test]
    fn line_col_counts_characters() {
        let ctx = Ctx::new("a = 1\nbé = 2\n", "x.toml");
        assert_eq!(ctx.line_col(0), (1, 1));
        assert_eq!(ctx.line_col(6), (2, 1));
        assert_eq!(ctx.line_col(9), (2, 3));
        assert_eq!(ctx.line_col(1000), (3, 1));
    }

    #[test]
    fn display_one_problem_per_line() {
        let mut ctx = Ctx::new("x\ny\n", "s.toml");
        ctx.problem(2..3, "a.b", "bad".into(), Some("did you mean 'c'?".into()));
        ctx.error(0..1, "", "first".into());
        let errors = ctx.finish();
        assert_eq!(
            errors.to_string(),
            "s.toml:1:1: first\n 1 | x\n   | ^\ns.toml:2:1: a.b: bad (did you mean 'c'?)\n 2 | y\n   | ^"
        );
    }
}
