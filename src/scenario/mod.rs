//! Scenario files: the TOML contract of SCENARIOS.md, parsed, validated and resolved into
//! [`model::Scenario`].
//!
//! The file is parsed into a spanned TOML tree and walked by hand, so that every problem (not
//! only the first) is reported with its line, column and key path. Module map: `errors`
//! (problems, line:col, did-you-mean), `values` (single values, durations), `sections`, `workload`,
//! `faults` and `expect` (the walk, section by section), `render` (`to_toml`, `hash`).

mod errors;
mod expect;
mod faults;
pub mod model;
mod render;
mod sections;
mod values;
mod workload;

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

pub use errors::{Problem, ScenarioErrors};
pub use model::*;
pub use render::{hash, to_toml};

use errors::Ctx;
use values::{check_keys, get};

/// Bound on the size of a scenario file; a real one is a few kilobytes.
pub const FILE_BYTES_MAX: u64 = 16 << 20;

const TOP_KEYS: [&str; 9] = [
    "run", "provider", "network", "workload", "capacity", "e2ee", "devices", "fault", "expect",
];

/// Reads and parses a scenario file. Unreadable, oversized, non-UTF-8 and empty files are
/// problems like any other.
pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
    let file = path.display().to_string();
    let bytes = read_bounded(path).map_err(|message| ScenarioErrors::whole_file(&file, message))?;
    match String::from_utf8(bytes) {
        Ok(source) => parse(&source, &file),
        Err(e) => {
            let valid_len = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid_len]).into_owned();
            let mut ctx = Ctx::new(&prefix, &file);
            let message = format!(
                "not a text file: invalid UTF-8 at byte {valid_len}; a scenario is UTF-8 TOML"
            );
            ctx.error(valid_len..valid_len, "", message);
            Err(ctx.finish())
        }
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > FILE_BYTES_MAX {
        return Err(format!(
            "the file is larger than {FILE_BYTES_MAX} bytes; a scenario is a few kilobytes"
        ));
    }
    Ok(bytes)
}

/// Parses and validates a scenario. `file_name` is used in messages and, through its stem, as
/// the default run name.
pub fn parse(source: &str, file_name: &str) -> Result<Scenario, ScenarioErrors> {
    let mut ctx = Ctx::new(source, file_name);
    if source.trim().is_empty() {
        let message = "the file is empty: a scenario needs at least a gatekeeper and a partner ([[provider]])";
        ctx.error(0..0, "", message.to_string());
        return Err(ctx.finish());
    }
    let (doc, syntax_errors) = DeTable::parse_recoverable(source);
    if !syntax_errors.is_empty() {
        report_syntax(&mut ctx, &syntax_errors);
        return Err(ctx.finish());
    }
    if doc.get_ref().is_empty() {
        let message = "the file has no settings: a scenario needs at least a gatekeeper and a partner ([[provider]])";
        ctx.error(0..0, "", message.to_string());
        return Err(ctx.finish());
    }
    let stem = Path::new(file_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scenario = walk(&mut ctx, doc.get_ref(), &sections::name_from_stem(&stem));
    if ctx.has_problems() {
        Err(ctx.finish())
    } else {
        Ok(scenario)
    }
}

/// Only the first syntax error is reported: after it the parser guesses, and its later errors
/// (a "duplicate key" where a header was not closed) are mostly echoes of the first. The rest of
/// the file is checked once it parses.
fn report_syntax(ctx: &mut Ctx, errors: &[toml::de::Error]) {
    let first = errors
        .iter()
        .map(|e| (e.span().unwrap_or(0..0), e.message().trim()))
        .min_by_key(|(span, _)| span.start);
    if let Some((span, message)) = first {
        let help = (errors.len() > 1)
            .then(|| "the rest of the file is checked once this is fixed".to_string());
        ctx.problem(span, "", format!("invalid TOML: {message}"), help);
    }
}

fn walk(ctx: &mut Ctx, doc: &DeTable<'_>, default_name: &str) -> Scenario {
    check_keys(ctx, doc, "", &TOP_KEYS);
    let run = match section(ctx, doc, "run") {
        Some((t, _)) => sections::run(ctx, t, default_name),
        None => sections::run(ctx, &DeTable::new(), default_name),
    };
    let (providers, names_written) = sections::providers(ctx, get(doc, "provider"));
    let network_table = section(ctx, doc, "network").map(|(t, _)| t);
    let network = sections::network(ctx, network_table);
    let workload_table = section(ctx, doc, "workload").map(|(t, _)| t);
    let workload = workload::workload(ctx, workload_table);
    let capacity_table = section(ctx, doc, "capacity").map(|(t, _)| t);
    let capacity = workload::capacity(ctx, capacity_table);
    let e2ee = match section(ctx, doc, "e2ee") {
        Some((t, span)) => workload::e2ee(ctx, Some(t), span),
        None => workload::default_e2ee(),
    };
    let devices = match section(ctx, doc, "devices") {
        Some((t, span)) => workload::devices(ctx, Some(t), span),
        None => workload::default_devices(),
    };
    let refs = faults::Refs {
        providers: &providers,
        names_written: &names_written,
        run: &run,
    };
    let faults = faults::faults(ctx, get(doc, "fault"), &refs);
    let expect_table = section(ctx, doc, "expect").map(|(t, _)| t);
    let expect = expect::expect(ctx, expect_table);
    Scenario {
        run,
        providers,
        network,
        workload,
        capacity,
        e2ee,
        devices,
        faults,
        expect,
    }
}

/// A top-level table, or a problem if the key holds something else.
fn section<'a, 'i>(
    ctx: &mut Ctx,
    doc: &'a DeTable<'i>,
    key: &str,
) -> Option<(&'a DeTable<'i>, Range<usize>)> {
    let value = get(doc, key)?;
    match value.get_ref() {
        DeValue::Table(t) => Some((t, value.span())),
        _ => {
            ctx.expected(value, key, &format!("a table ([{key}])"));
            None
        }
    }
}
