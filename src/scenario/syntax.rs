//! TOML syntax errors in words a tired engineer reads at once. The parser says "duplicate key"
//! or "unclosed table" and where; this module finds, from the text around that place, which
//! table and key are involved and, for a duplicate, where the first definition is, so that the
//! problem reads `workload.cross_provider: invalid TOML: duplicate key "cross_provider" in
//! [workload] (first defined at line 2)`.
//!
//! It reads lines, not TOML: it runs only on text the parser already refused, so it must not
//! depend on the text being valid. Each guess it cannot make leaves the parser's words as they
//! were.

/// A syntax error explained: the key path involved and the message and help to show.
pub(crate) struct Explained {
    pub key_path: String,
    pub message: String,
    pub help: Option<String>,
}

/// One line of the source as the scanner sees it.
struct Line<'s> {
    /// 1-based.
    number: u32,
    /// Byte offset of the line's start.
    start: usize,
    text: &'s str,
}

/// The table a line belongs to: its header's name, with an index for arrays of tables.
#[derive(Clone, Default)]
struct Table {
    /// As a key path writes it: `workload`, `provider[1]`; empty for the root table.
    path: String,
    /// As the file writes it: `[workload]`, `[[provider]]`.
    header: String,
    /// The header's line (0 for the root table).
    line: u32,
}

/// Lines longer than this are not scanned for keys (a scenario line is short).
const LINE_SCAN_MAX: usize = 4096;

/// Explains the parser's `message` about the text at `span`.
pub(crate) fn explain(source: &str, span: std::ops::Range<usize>, message: &str) -> Explained {
    let lines = lines(source);
    let at = span.start.min(source.len());
    let Some(here) = lines.iter().rposition(|l| l.start <= at) else {
        return plain(message);
    };
    let table = table_of(&lines[..here]);
    let line = &lines[here];
    let spanned = source.get(span.clone()).unwrap_or("").trim();
    let in_header = header_name(line.text).is_some() || line.text.trim_start().starts_with('[');
    if in_header {
        return explain_header(&lines, here, spanned, message);
    }
    let key = line_key(line.text);
    let key_path = match (&key, inline_key(line, at, spanned)) {
        (Some(k), Some(inner)) => join(&table.path, &format!("{k}.{inner}")),
        (Some(k), None) => join(&table.path, k),
        (None, _) => table.path.clone(),
    };
    let in_table = if table.header.is_empty() {
        "at the top of the file".to_string()
    } else {
        format!("in {}", table.header)
    };
    if message == "duplicate key" && !spanned.is_empty() {
        let first = key
            .as_deref()
            .filter(|k| inline_key(line, at, spanned).is_none() && k.ends_with(spanned))
            .and_then(|k| first_key_line(&lines, table.line, here, k));
        let message = format!("invalid TOML: duplicate key \"{spanned}\" {in_table}");
        let help = Some(match first {
            Some(n) => format!("first defined at line {n}; a key may be set once per table"),
            None => "a key may be set once per table".to_string(),
        });
        return Explained {
            key_path,
            message,
            help,
        };
    }
    let after_equals = line
        .text
        .split_once('=')
        .map(|(_, v)| strip_comment(v).trim().is_empty());
    let help = match after_equals {
        Some(true) => Some("the value after `=` is missing".to_string()),
        _ if message.contains("must be quoted") => Some(
            "a value is a number, a quoted string (\"10s\"), true/false, [a, list] or { a = table }"
                .to_string(),
        ),
        _ => None,
    };
    Explained {
        key_path,
        message: format!("invalid TOML: {message} ({in_table})"),
        help,
    }
}

fn plain(message: &str) -> Explained {
    Explained {
        key_path: String::new(),
        message: format!("invalid TOML: {message}"),
        help: None,
    }
}

/// An error inside a table header (`[run`, a duplicate `[run]`).
fn explain_header(lines: &[Line<'_>], here: usize, spanned: &str, message: &str) -> Explained {
    let text = lines[here].text.trim();
    let name = header_name(text)
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| text.trim_start_matches('[').trim().to_string());
    if message == "duplicate key" {
        let first = lines[..here]
            .iter()
            .find(|l| header_name(l.text) == Some((name.as_str(), false)))
            .map(|l| l.number);
        let help = match first {
            Some(n) => format!("first defined at line {n}; a table is written once (use [[{name}]] for a list of tables)"),
            None => format!("[{name}] is already defined by a key above; a table is defined once"),
        };
        return Explained {
            key_path: name.clone(),
            message: format!("invalid TOML: table [{name}] defined twice"),
            help: Some(help),
        };
    }
    let _ = spanned;
    Explained {
        key_path: name.clone(),
        message: format!("invalid TOML: {message} (in the header of table [{name}])"),
        help: None,
    }
}

fn lines(source: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, text) in source.split('\n').enumerate() {
        out.push(Line {
            number: u32::try_from(i + 1).unwrap_or(u32::MAX),
            start,
            text,
        });
        start += text.len() + 1;
    }
    out
}

/// The table the lines after `before` belong to: the last header among them.
fn table_of(before: &[Line<'_>]) -> Table {
    let mut current = Table::default();
    let mut array_counts: Vec<(String, usize)> = Vec::new();
    for l in before {
        let Some((name, array)) = header_name(l.text) else {
            continue;
        };
        current = if array {
            let n = match array_counts.iter_mut().find(|(k, _)| k == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    array_counts.push((name.to_string(), 0));
                    0
                }
            };
            Table {
                path: format!("{name}[{n}]"),
                header: format!("[[{name}]]"),
                line: l.number,
            }
        } else {
            Table {
                path: name.to_string(),
                header: format!("[{name}]"),
                line: l.number,
            }
        };
    }
    current
}

/// `[name]` -> (name, false); `[[name]]` -> (name, true); anything else -> None.
fn header_name(text: &str) -> Option<(&str, bool)> {
    let t = strip_comment(text).trim();
    if let Some(inner) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
        return Some((inner.trim(), true));
    }
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    Some((inner.trim(), false))
}

/// The key a `key = value` line sets (dotted as written), if the line has that shape.
fn line_key(text: &str) -> Option<String> {
    if text.len() > LINE_SCAN_MAX {
        return None;
    }
    let (key, _) = text.split_once('=')?;
    let key = key.trim();
    let plain = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '"'));
    (!key.is_empty() && plain).then(|| key.replace([' ', '"'], ""))
}

/// A key inside an inline table on this line (`client_server = { loss = 0.1, loss = 0.2 }`):
/// the spanned text when it sits after the line's opening brace.
fn inline_key<'a>(line: &Line<'_>, at: usize, spanned: &'a str) -> Option<&'a str> {
    let brace = line.text.find('{')?;
    (at > line.start + brace && !spanned.is_empty()).then_some(spanned)
}

/// The first line in the table starting at `table_line` (exclusive) and ending before line
/// index `here` that sets `key`.
fn first_key_line(lines: &[Line<'_>], table_line: u32, here: usize, key: &str) -> Option<u32> {
    lines[..here]
        .iter()
        .filter(|l| l.number > table_line)
        .find(|l| line_key(l.text).as_deref() == Some(key))
        .map(|l| l.number)
}

fn strip_comment(text: &str) -> &str {
    // Good enough for a refused file: a `#` inside a string is rare in a scenario.
    text.split_once('#').map_or(text, |(before, _)| before)
}

fn join(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the real parser on `source` and explains its first error.
    fn first(source: &str) -> Explained {
        let (_, errors) = toml::de::DeTable::parse_recoverable(source);
        let e = errors.first().expect("the source must be invalid");
        explain(source, e.span().unwrap_or(0..0), e.message().trim())
    }

    #[test]
    fn duplicate_key_names_key_table_and_first_line() {
        let e = first("[workload]\ncross_provider = 0.3\nrate = 3\ncross_provider = 0.5\n");
        assert_eq!(e.key_path, "workload.cross_provider");
        assert_eq!(
            e.message,
            "invalid TOML: duplicate key \"cross_provider\" in [workload]"
        );
        assert!(e.help.unwrap().starts_with("first defined at line 2"));
    }

    #[test]
    fn duplicate_key_in_an_array_of_tables_has_its_index() {
        let e = first("[[provider]]\nname = \"a\"\n[[provider]]\nname = \"b\"\nname = \"c\"\n");
        assert_eq!(e.key_path, "provider[1].name");
        assert!(e.message.contains("in [[provider]]"), "{}", e.message);
        assert!(e.help.unwrap().starts_with("first defined at line 4"));
    }

    #[test]
    fn duplicate_key_in_an_inline_table() {
        let e = first("[network]\nclient_server = { loss = 0.1, loss = 0.2 }\n");
        assert_eq!(e.key_path, "network.client_server.loss");
        assert!(
            e.message.contains("duplicate key \"loss\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn duplicate_table_names_the_first_header() {
        let e = first("[run]\nseed = 1\n[run]\nname = \"x\"\n");
        assert_eq!(e.key_path, "run");
        assert_eq!(e.message, "invalid TOML: table [run] defined twice");
        assert!(e.help.unwrap().starts_with("first defined at line 1"));
    }

    #[test]
    fn unclosed_header_names_the_table() {
        let e = first("[run]\nseed = 1\n[workload\nx = 1\n");
        assert_eq!(e.key_path, "workload");
        assert!(
            e.message.contains("in the header of table [workload]"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_value_says_so() {
        let e = first("[run]\nseed = \n");
        assert_eq!(e.key_path, "run.seed");
        assert_eq!(e.help.as_deref(), Some("the value after `=` is missing"));
        assert!(e.message.contains("(in [run])"), "{}", e.message);
    }

    #[test]
    fn garbage_never_panics() {
        for source in [
            "[",
            "[[",
            "=",
            "a = {",
            "\"\n=\n[x]]\n",
            "[a]\n[a]\n",
            "x=1\nx=1",
        ] {
            let (_, errors) = toml::de::DeTable::parse_recoverable(source);
            for e in errors {
                let span = e.span().unwrap_or(0..0);
                let _ = explain(source, span.start..span.end + 100, e.message());
            }
        }
    }
}
