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
//!   `bandwidth` (bytes/s, default unlimited), `queue_max_bytes` (67108864).
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

const TOP_KEYS: [&str; 12] = [
    "run", "provider", "network", "workload", "capacity", "e2ee", "devices", "fault", "expect",
    "swarm", "sweep", "plan",
];

/// What the command line adds to a scenario file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--cost-table FILE`: replaces the scenario's `[e2ee] cost_table` (which is then not
    /// read). Any path: the user named it, unlike a path written in a scenario file.
    pub cost_table: Option<PathBuf>,
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
    let mut scenario = parse_text(source, file_name, opts.cost_table.is_some())?;
    if let Some(path) = &opts.cost_table {
        scenario.e2ee.cost_table = cost_table::load_file(path)?;
    }
    Ok(scenario)
}

fn parse_text(
    source: &str,
    file_name: &str,
    cost_table_given: bool,
) -> Result<Scenario, ScenarioErrors> {
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

fn walk(ctx: &mut Ctx, doc: &DeTable<'_>, default_name: &str) -> Scenario {
    check_keys(ctx, doc, "", &TOP_KEYS);
    let problems_before_run = ctx.problem_count();
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
        run: (ctx.problem_count() == problems_before_run).then_some(&run),
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
        swarm,
        sweep: None,
        plan: None,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[[provider]]\nname = \"g\"\nrole = \"gatekeeper\"\nusers = 10\n\n\
                        [[provider]]\nname = \"p\"\nrole = \"partner\"\nusers = 5\n";

    fn with(extra: &str) -> Result<Scenario, ScenarioErrors> {
        parse(&format!("{BASE}\n{extra}"), "t.toml")
    }

    fn problems(extra: &str) -> Vec<String> {
        match with(extra) {
            Ok(_) => panic!("should be rejected: {extra}"),
            Err(e) => e
                .iter()
                .map(|p| format!("{}: {}", p.key_path, p.message))
                .collect(),
        }
    }

    #[test]
    fn client_endpoints_only_in_partitions() {
        let ok =
            with("[[fault]]\nat = \"1s\"\nkind = \"partition\"\nbetween = [\"p-clients\", \"g\"]")
                .expect("valid");
        assert_eq!(
            ok.faults[0].kind,
            FaultKind::Partition {
                a: Endpoint::Clients(1),
                b: Endpoint::Provider(0),
                one_way: false
            }
        );
        let p = problems("[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"p-clients\"");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("fault[0].node: no provider or node named \"p-clients\""),
            "{p:?}"
        );
        let p = problems(
            "[[fault]]\nat = \"1s\"\nkind = \"toggle\"\nprovider = \"gateway\"\nusers = 0.5",
        );
        assert_eq!(
            p,
            ["fault[0].provider: expected a provider name, found \"gateway\""]
        );
    }

    #[test]
    fn a_provider_with_problems_is_not_reported_again_by_its_references() {
        let text = "[[provider]]\nname = \"g\"\nrole = \"gatekeeper\"\nusers = 10\n\
                    [[provider]]\nname = \"p\"\nrole = \"partner\"\nusers = -5\n\
                    [[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"p\"\n";
        let e = parse(text, "t.toml").expect_err("users = -5");
        assert_eq!(e.len(), 1, "{e}");
        assert_eq!(e.problems[0].key_path, "provider[1].users");
    }

    #[test]
    fn expectations_dotted_quoted_or_nested_are_the_same_key() {
        let s = with(
            "[expect]\n\"interop.lost\" = 1\nnative = { sent = 2 }\ngroup.delivered_p50 = \"1ms\"",
        )
        .expect("valid");
        let keys: Vec<(&str, Bound)> = s.expect.iter().map(|e| (e.key.as_str(), e.bound)).collect();
        assert_eq!(
            keys,
            [
                ("interop.lost", Bound::AtMost(1.0)),
                ("native.sent", Bound::AtLeast(2.0)),
                ("group.delivered_p50", Bound::AtMost(1e6))
            ]
        );
        let p = problems("[expect]\n\"native.lost\" = 1\nnative.lost = 2");
        assert_eq!(
            p,
            ["expect.native.lost: expectation 'native.lost' is given twice"]
        );
        let p = problems("[expect]\ndelivered_p99 = \"1s\"\noverall.delivered_p99 = \"2s\"");
        assert_eq!(
            p,
            ["expect.overall.delivered_p99: expectation 'overall.delivered_p99' bounds the same value as 'delivered_p99': give one (`overall.` leaves out the per-path-kind lines)"]
        );
        let s = with("[expect]\noverall.delivered_p99 = \"2s\"").expect("valid");
        assert_eq!(s.expect[0].key, "overall.delivered_p99");
        // Two levels under `inbox`, quoted, dotted or nested alike.
        let s = with(
            "[expect]\n\"inbox.main.read\" = 1\ninbox.third_party.first_read_p50 = \"1s\"\ninbox.main = { unread_max = 3 }",
        )
        .expect("valid");
        let keys: Vec<(&str, Bound)> = s.expect.iter().map(|e| (e.key.as_str(), e.bound)).collect();
        assert_eq!(
            keys,
            [
                ("inbox.main.read", Bound::AtLeast(1.0)),
                ("inbox.third_party.first_read_p50", Bound::AtMost(1e9)),
                ("inbox.main.unread_max", Bound::AtMost(3.0))
            ]
        );
        let p = problems("[expect]\ninbox.other.read = 1");
        assert_eq!(p.len(), 1, "{p:?}");
        let p = problems("[expect]\nlost = { min = 1, max = 2 }\ngateway.lost = 1\nsent = \"5s\"");
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn the_older_throughput_name_still_parses_as_device_deliveries() {
        let s = with("[expect]\ndelivered_per_s_mean = 10\ninterop.delivered_per_s_peak = 2")
            .expect("an older key is still accepted");
        let keys: Vec<(&str, Bound)> = s.expect.iter().map(|e| (e.key.as_str(), e.bound)).collect();
        assert_eq!(
            keys,
            [
                ("device_deliveries_per_s_mean", Bound::AtLeast(10.0)),
                ("interop.device_deliveries_per_s_peak", Bound::AtLeast(2.0))
            ]
        );
        let p = problems("[expect]\ndelivered_per_s_mean = 1\ndevice_deliveries_per_s_mean = 2");
        assert_eq!(
            p,
            ["expect.device_deliveries_per_s_mean: expectation 'device_deliveries_per_s_mean' is given twice"]
        );
    }

    #[test]
    fn sections_of_the_wrong_type() {
        // After a [[provider]] header, `run = 5` is a key of that provider.
        assert_eq!(problems("run = 5"), ["provider[1].run: unknown key 'run'"]);
        let e = parse(&format!("run = 5\n{BASE}"), "t.toml").expect_err("run is not a table");
        assert_eq!(
            e.to_string(),
            "t.toml:1:7: run: expected a table ([run]), found 5\n 1 | run = 5\n   |       ^"
        );
        let p = problems("[[fault]]\nat = \"1s\"\nkind = \"slow\"\nnode = \"g\"\nfactor = 2\n[[expect]]\nlost = 1");
        assert_eq!(p, ["expect: expected a table ([expect]), found an array"]);
    }

    #[test]
    fn fault_window_is_checked_even_when_the_target_is_wrong() {
        let p =
            problems("[[fault]]\nat = \"2m\"\nfor = \"5m\"\nkind = \"crash\"\nnode = \"nobody\"");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("fault[0].at: the fault starts at 2m"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("fault[0].for: the fault ends at 7m"),
            "{p:?}"
        );
        assert!(
            p[2].starts_with("fault[0].node: no provider or node named \"nobody\""),
            "{p:?}"
        );
    }

    #[test]
    fn a_bad_run_duration_does_not_make_faults_look_late() {
        let text = format!("[run]\nduration = \"10x\"\n{BASE}\n[[fault]]\nat = \"3m\"\nkind = \"crash\"\nnode = \"g\"");
        let e = parse(&text, "t.toml").expect_err("bad unit");
        assert_eq!(e.len(), 1, "{e}");
        assert_eq!(e.problems[0].key_path, "run.duration");
    }

    #[test]
    fn fault_keys_are_checked_even_without_a_kind() {
        let p = problems("[[fault]]\nat = \"1s\"\nnod = \"g\"");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p.iter()
                .any(|m| m == "fault[0].kind: missing required key 'kind'"),
            "{p:?}"
        );
        assert!(
            p.iter().any(|m| m == "fault[0].nod: unknown key 'nod'"),
            "{p:?}"
        );
    }

    #[test]
    fn sessions_default_to_the_first_message_and_keep_the_hash() {
        let s = with("").expect("valid");
        assert_eq!(s.e2ee.sessions, SessionSetup::FirstMessage);
        let e = with("[e2ee]\nsessions = \"established\"").expect("valid");
        assert_eq!(e.e2ee.sessions, SessionSetup::Established);
        assert_ne!(hash(&s), hash(&e), "the setting is in the hash");
        let explicit = with("[e2ee]\nsessions = \"first_message\"").expect("valid");
        assert_eq!(
            hash(&s),
            hash(&explicit),
            "the default leaves the hash alone"
        );
        let again = parse(&to_toml(&e), "again.toml").expect("to_toml parses");
        assert_eq!(again.e2ee.sessions, SessionSetup::Established);
        let p = problems("[e2ee]\nsessions = \"warm\"");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("e2ee.sessions: expected one of"), "{p:?}");
    }

    #[test]
    fn bundle_fetch_limit_defaults_to_signal_and_can_be_switched_off() {
        let s = with("").expect("valid");
        assert_eq!(s.e2ee.bundle_fetch_limit, Some(BundleFetchLimit::SIGNAL));
        let s = with("[e2ee]\nbundle_fetch_burst = 2\nbundle_fetch_per_hour = 0.5").expect("valid");
        assert_eq!(
            s.e2ee.bundle_fetch_limit,
            Some(BundleFetchLimit {
                burst: 2,
                per_hour: 0.5
            })
        );
        let s = with("[e2ee]\nbundle_fetch_per_hour = \"unlimited\"").expect("valid");
        assert_eq!(s.e2ee.bundle_fetch_limit, None);
        let p = problems("[e2ee]\nbundle_fetch_burst = 0\nbundle_fetch_per_hour = -1");
        assert_eq!(
            p,
            [
                "e2ee.bundle_fetch_burst: expected an integer >= 1, found 0",
                "e2ee.bundle_fetch_per_hour: expected a number >= 0 or \"unlimited\", found -1"
            ]
        );
    }

    #[test]
    fn new_e2ee_keys_at_their_defaults_keep_the_hash_and_round_trip() {
        let plain = with("").expect("valid");
        let explicit =
            with("[e2ee]\nbundle_fetch_burst = 6\nbundle_fetch_per_hour = 6\ncost_table = {}");
        // An empty inline table is a table naming no operation: accepted, nothing replaced.
        let explicit = explicit.expect("valid");
        assert_eq!(hash(&plain), hash(&explicit));
        let custom = with(
            "[e2ee]\nbundle_fetch_per_hour = \"unlimited\"\n\
             cost_table = { ratchet_encrypt = { fixed_ns = 5, per_kib_ns = 6 } }",
        )
        .expect("valid");
        assert_ne!(hash(&plain), hash(&custom));
        for s in [plain, custom] {
            let text = to_toml(&s);
            let back = parse(&text, "back.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, s, "{text}");
        }
    }

    #[test]
    fn an_inline_cost_table_is_checked_where_it_is_written() {
        let p = problems("[e2ee]\ncost_table = { ratchet = { fixed_ns = 1, per_kib_ns = 1 } }");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("e2ee.cost_table.ratchet: unknown operation 'ratchet'"),
            "{p:?}"
        );
        let p = problems("[e2ee]\ncost_table = 3");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("a path to a cost table file"), "{p:?}");
    }

    #[test]
    fn timers_have_a_floor_of_a_millisecond() {
        let p = problems(
            "[devices]\nretry_initial = \"1ns\"\nretry_max = \"1ns\"\nonline_mean = \"999us\"",
        );
        assert_eq!(p.len(), 3, "{p:?}");
        for (m, key) in p.iter().zip(["retry_initial", "retry_max", "online_mean"]) {
            assert!(
                m.starts_with(&format!("devices.{key}: expected at least 1ms")),
                "{m}"
            );
            assert!(m.contains("repeating timer"), "{m}");
        }
        let p = problems("[run]\ninterval = \"100us\"");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("run.interval: expected at least 1ms"),
            "{p:?}"
        );
        with("[devices]\nretry_initial = \"1ms\"\nretry_max = \"1ms\"\n[run]\ninterval = \"1ms\"")
            .expect("1ms is allowed");
    }

    #[test]
    fn slow_factors_and_fault_counts_are_bounded() {
        let slow = "[[fault]]\nat = \"1s\"\nkind = \"slow\"\nnode = \"g\"\nfactor = ";
        let p = problems(&format!("{slow}1e300"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("fault[0].factor: expected a factor between 1 and 1000"),
            "{p:?}"
        );
        with(&format!("{slow}1000")).expect("1000 is allowed");
        let one = "[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"g\"\n";
        with(&one.repeat(faults::FAULTS_MAX)).expect("10,000 faults are allowed");
        let p = problems(&one.repeat(faults::FAULTS_MAX + 1));
        assert_eq!(
            p,
            [
                "fault[10000]: 10001 [[fault]] tables, more than 10000: each one is validated, \
              scheduled and tracked for the whole run; merge faults with longer windows or use \
              [swarm]"
            ]
        );
    }

    #[test]
    fn run_defaults_and_limits() {
        let s = with("").expect("valid");
        assert_eq!(s.run.name, "t");
        let p = problems("[run]\nname = \"../x\"\nseed = -1\nduration = \"0s\"\nevents_max = 0");
        assert_eq!(p.len(), 4, "{p:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        /// Any text: problems or a scenario that `to_toml` gives back (`fuzzing::scenario`).
        #[test]
        fn any_text_is_refused_or_round_trips(bytes in crate::fuzzing::inputs("scenario")) {
            crate::fuzzing::scenario(&bytes);
        }
    }
}
#[cfg(test)]
mod reference_tests;
