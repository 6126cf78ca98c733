//! The key reference of docs/SCENARIOS.md against what the parser accepts: every key a table
//! accepts is documented there, and every documented key is accepted.

use super::values::accepted;
use std::collections::BTreeSet;
use std::path::Path;

/// Scenario text that walks the tables no shipped scenario has.
const EXTRA: &str = r#"
[run]
duration = "10s"

[[provider]]
name = "a"
role = "gatekeeper"
users = 10
devices_per_user = { min = 1, max = 2 }

[[provider]]
name = "b"
role = "partner"
users = 10

[network.client_server]
latency = { dist = "pareto", min = "1ms", alpha = 2.0 }

[workload]
messages_per_user_hour = 1
groups = { share = 0.1, size = { min = 3, max = 4 } }

[capacity]
host = { cores = 1, per_frame = "1us", per_wake = "1us" }
generator = { cores = 1, per_frame = "1us", per_wake = "1us" }

[e2ee]
cost_table = { ratchet_encrypt = { fixed_ns = 1, per_kib_ns = 1 } }

[expect]
p99_ms = { max = 10 }

[swarm]
intensity = 1.0

[sweep]
repeats = 1

[plan]
solve = { "capacity.gateway.cores" = { min = 1, max = 4 } }
slo = { lost = 0 }
load = { users = 1.0, rate = 1.0 }
seeds = 2
confidence = 0.9
slice = 1
"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every key the parser accepts, walking every shipped scenario and [`EXTRA`].
fn accepted_keys() -> BTreeSet<String> {
    let mut files: Vec<_> = std::fs::read_dir(repo().join("scenarios"))
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for f in files {
        let _ = super::load(&f);
    }
    let _ = super::parse(EXTRA, "extra.toml");
    accepted::seen()
}

/// The keys of the reference table in docs/SCENARIOS.md (its first column).
fn documented_keys() -> Vec<String> {
    let doc = std::fs::read_to_string(repo().join("docs/SCENARIOS.md")).expect("docs/SCENARIOS.md");
    let start = doc
        .find("## Key reference")
        .expect("a Key reference section");
    let section = &doc[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(k, _)| k.to_string()))
        .collect()
}

#[test]
fn the_key_reference_lists_every_key_the_parser_accepts_and_no_other() {
    let accepted = accepted_keys();
    let documented = documented_keys();
    let mut twice: Vec<&String> = documented
        .iter()
        .filter(|k| documented.iter().filter(|d| d == k).count() > 1)
        .collect();
    twice.dedup();
    assert!(twice.is_empty(), "documented twice: {twice:?}");
    let documented: BTreeSet<String> = documented.iter().cloned().collect();
    let missing: Vec<&String> = accepted.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&accepted).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/SCENARIOS.md, Key reference: accepted by the parser but not documented: {missing:?}; documented but not accepted: {unknown:?}"
    );
    // A table the walk never reached would hide its keys from both sides.
    assert!(accepted.len() > 100, "only {} keys walked", accepted.len());
    eprintln!(
        "docs/SCENARIOS.md: {} keys checked against the parser",
        accepted.len()
    );
}
