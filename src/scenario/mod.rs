//! Scenario files: the TOML contract of SCENARIOS.md, parsed, validated and resolved into
//! [`model::Scenario`].
//!
//! The file is parsed into a spanned TOML tree and walked by hand, so that every problem (not
//! only the first) is reported with its line, column and key path. Module map: `errors`
//! (problems, line:col, did-you-mean), `values` (single values, durations), `sections`, `workload`,
//! `faults` and `expect` (the walk, section by section), `render` (`to_toml`, `hash`), `budget`
//! (peak memory and events estimated before a run, and the budget that refuses it).
//!
//! Keys beyond the SCENARIOS.md example (all optional; `interop-sim check` prints every value):
//! - `[run]` `interval` ("1s", timeseries row width), `ramp` ("5s" or a tenth of `duration`:
//!   initial connects spread over it), `warmup` (the ramp: left out of the percentiles and
//!   utilization), `events_max` (2_000_000_000); `name`
//!   defaults to the file stem, `seed` to 1, `duration` to "60s", `drain` to "2m".
//! - `[[provider]]` `adapter = "proxied" | "direct"` (partners; default "proxied");
//!   `devices_per_user` 1..=5 (default 1), `opt_in` (default 1.0).
//! - `[network]` a fourth hop class `adapter_server`; per link also `reorder_delay` ("20ms"),
//!   `bandwidth` (bytes/s, default unlimited), `queue_max_bytes` (67108864), `latency_hold`
//!   ("1s": how long a link keeps one latency draw).
//! - `[workload]` `contacts_per_user` (8), `reply_probability` (0.5), `reply_delay` ("20s"),
//!   `read_probability` (0.8); `content` may name any subset of kinds (normalized to sum 1).
//! - `[capacity.gateway]` `rate_limit_per_partner` also accepts "unlimited".
//! - `[e2ee]` `sessions = "first_message" | "established"` (sessions set up at the first
//!   message, on the measured path, or before the clock, off the books);
//!   `prekey_refill_below` (10, at most `one_time_prekeys`).
//!   `cost_table`: a cost table file (what `interop-sim calibrate` writes; a path relative to
//!   the scenario file's directory) or the same table inline,
//!   `{ ratchet_encrypt = { fixed_ns = 1300, per_kib_ns = 1600 }, .. }`; the operations it names
//!   replace the default prices, the others keep theirs (`cost_table`: format, why `to_toml`
//!   writes the table inline and why the hash follows its content, not its path).
//!   `bundle_fetch_burst` (6, at least 1) and `bundle_fetch_per_hour` (6; a number >= 0, where 0
//!   means the burst is never refilled, or "unlimited" to switch the limit off): the key
//!   directory's token bucket per (requesting device, fetched device), Signal's server figures.
//!   A `prekey_drain` adversary's excess fetches are refused (`crypto.bundle_fetches_limited`);
//!   the limit is enforced on it only: honest devices fetch a peer device once per session and
//!   do not meet it at the default, and if a tighter one would stop them their fetches are
//!   counted (`crypto.bundle_fetches_limited_honest`) but served (`nodes::key_directory`).
//! - `[devices]` `online_share` (0.8), `online_mean` ("10m"), `offline_ttl` ("30d"),
//!   `retry_initial` ("1s"), `retry_max` ("60s", at least `retry_initial`), `outbox_max` (1000);
//!   the durations that re-arm a repeating timer are at least 1ms (`values::TIMER_FLOOR_NS`).
//! - `[expect]` any metric may be written `{ max = X }` or `{ min = X }` to override its default
//!   direction; `native.`, `interop.`, `group.` prefixes; `gateway.`, `chat_server.`, `adapter.`
//!   with `utilization_mean` / `utilization_peak`.
//! - `[sweep]` `grid` (scenario key paths to lists of values) and `repeats` (1): see `sweep`;
//!   every grid point is validated as a scenario of its own.
//!
//! Key paths in problems index arrays of tables from 0: `provider[0]` is the first `[[provider]]`.

pub mod budget;
pub mod cost_table;
mod design;
mod errors;
mod expect;
mod faults;
pub mod model;
mod plan;
pub use plan::SLICE_MAX;
mod render;
mod sections;
pub mod swarm;
pub mod sweep;
mod sweep_keys;
mod syntax;
pub mod topology;
mod values;
mod workload;

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

pub use errors::{Problem, ScenarioErrors};
pub(crate) use expect::is_latency;
pub use expect::{held_per_path_kind, INBOXES, INBOX_COUNTS, INBOX_LATENCIES};
pub use model::*;
pub use render::{hash, to_toml};

use errors::Ctx;
use values::{check_keys, get};

/// Bound on the size of a scenario file; a real one is a few kilobytes.
pub const FILE_BYTES_MAX: u64 = 16 << 20;

const TOP_KEYS: [&str; 13] = [
    "run", "provider", "topology", "network", "workload", "capacity", "e2ee", "devices", "fault",
    "expect", "swarm", "sweep", "plan",
];

/// Why a MIMI scenario needs modeled crypto, and what to do.
const MIMI_REAL: &str = "the MIMI design runs with modeled MLS only: the simulator prices every MLS operation from the cost table (measured on real MLS by `calibrate`), but does not yet hold real MLS rooms per device";
const MIMI_REAL_HELP: &str = "set [e2ee] crypto = \"modeled\"";

/// What the command line adds to a scenario file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--cost-table FILE`: replaces the scenario's `[e2ee] cost_table` (which is then not
    /// read). Any path: the user named it, unlike a path written in a scenario file.
    pub cost_table: Option<PathBuf>,
    /// `--design`: runs the file under this design instead of its `[topology] design`.
    pub design: Option<Design>,
}

/// Reads and parses a scenario file. Unreadable, oversized, non-UTF-8 and empty files are
/// problems like any other.
pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
    load_with(path, &LoadOptions::default())
}

/// [`load`] with the command line's additions.
pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Scenario, ScenarioErrors> {
    let file = path.display().to_string();
    let bytes = read_bounded(path).map_err(|message| ScenarioErrors::whole_file(&file, message))?;
    match String::from_utf8(bytes) {
        Ok(source) => parse_with(&source, &file, opts),
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
    parse_with(source, file_name, &LoadOptions::default())
}

/// [`parse`] with the command line's additions.
pub fn parse_with(
    source: &str,
    file_name: &str,
    opts: &LoadOptions,
) -> Result<Scenario, ScenarioErrors> {
    let mut scenario = parse_text(source, file_name, opts)?;
    if let Some(path) = &opts.cost_table {
        scenario.e2ee.cost_table = cost_table::load_file(path)?;
    }
    Ok(scenario)
}

fn parse_text(
    source: &str,
    file_name: &str,
    opts: &LoadOptions,
) -> Result<Scenario, ScenarioErrors> {
    let cost_table_given = opts.cost_table.is_some();
    let mut ctx = Ctx::new(source, file_name).with_cost_table_given(cost_table_given);
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
    let name = sections::name_from_stem(&stem);
    let scenario = walk(&mut ctx, doc.get_ref(), &name, opts.design);
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
        let explained = syntax::explain(ctx.source(), span.clone(), message);
        let rest =
            (errors.len() > 1).then_some("the rest of the file is checked once this is fixed");
        let help = match (explained.help, rest) {
            (Some(h), Some(r)) => Some(format!("{h}; {r}")),
            (h, r) => h.or(r.map(str::to_string)),
        };
        ctx.problem(span, &explained.key_path, explained.message, help);
    }
}

/// `design`: the command line's `--design`, which replaces the file's before anything that
/// depends on it is checked (a `provider_provider` link, the crypto MIMI needs, fault links).
fn walk(ctx: &mut Ctx, doc: &DeTable<'_>, default_name: &str, design: Option<Design>) -> Scenario {
    check_keys(ctx, doc, "", &TOP_KEYS);
    let problems_before_run = ctx.problem_count();
    let run = match section(ctx, doc, "run") {
        Some((t, _)) => sections::run(ctx, t, default_name),
        None => sections::run(ctx, &DeTable::new(), default_name),
    };
    let (providers, names_written) = sections::providers(ctx, get(doc, "provider"));
    let topology_table = section(ctx, doc, "topology").map(|(t, _)| t);
    let mut topology = sections::topology(ctx, topology_table);
    let network_table = section(ctx, doc, "network").map(|(t, _)| t);
    // A link the file's own design has no use for is an error; one a `--design` override has
    // no use for is left out (one file runs both).
    let as_written = if design.is_some() {
        Design::Mimi
    } else {
        topology.design
    };
    let mut network = sections::network(ctx, network_table, as_written);
    if let Some(d) = design {
        topology.design = d;
    }
    if topology.design == Design::Hub {
        network.provider_provider = None;
    }
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
        run: (ctx.problem_count() == problems_before_run).then_some(&run),
        design: topology.design,
    };
    let faults = faults::faults(ctx, get(doc, "fault"), &refs);
    let expect_table = section(ctx, doc, "expect").map(|(t, _)| t);
    let expect = expect::expect(ctx, expect_table);
    let swarm = section(ctx, doc, "swarm").and_then(|(t, _)| swarm::swarm(ctx, t));
    let mut scenario = Scenario {
        run,
        providers,
        network,
        workload,
        capacity,
        e2ee,
        devices,
        faults,
        expect,
        topology,
        swarm,
        sweep: None,
        plan: None,
    };
    if scenario.topology.design == Design::Mimi && scenario.e2ee.crypto == CryptoMode::Real {
        let help = Some(MIMI_REAL_HELP.to_string());
        match (design, topology_table.and_then(|t| get(t, "design"))) {
            (None, Some(value)) => {
                ctx.problem(value.span(), "topology.design", MIMI_REAL.into(), help)
            }
            _ => ctx.problem(0..0, "", format!("--design mimi: {MIMI_REAL}"), help),
        }
    }
    if let Some((t, span)) = section(ctx, doc, "sweep") {
        let problems_before = ctx.problem_count();
        let parsed = sweep::sweep(ctx, t, span.clone(), &scenario);
        if let Some(sw) = parsed {
            if ctx.problem_count() == problems_before && problems_before == 0 {
                sweep::check_points(ctx, span, &scenario, &sw);
            }
            scenario.sweep = Some(sw);
        }
    }
    if let Some((t, span)) = section(ctx, doc, "plan") {
        scenario.plan = plan::plan(ctx, t, span, &scenario);
    }
    scenario
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

/// For unit tests elsewhere in the crate: `tests/data/scenarios/<name>` with each `(from, to)`
/// text edit applied, parsed.
#[cfg(test)]
pub(crate) fn test_file_with(name: &str, edits: &[(&str, &str)]) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/scenarios")
        .join(name);
    let mut text = std::fs::read_to_string(&path).expect("a test scenario file");
    for (from, to) in edits {
        assert!(text.contains(from), "{name} has no {from:?}");
        text = text.replace(from, to);
    }
    parse(&text, name).expect("a valid test scenario")
}

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod tests;
