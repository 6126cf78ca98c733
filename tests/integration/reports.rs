//! Results a capacity planner reads: a run's folder holds every file (plots in PNG and SVG,
//! report.html with the plots inline, messages.csv with --ledger); a sweep gives the same
//! sweep.csv and histograms on 1 or 2 threads, and in 3 shards merged; compare writes its page.

use crate::{root, scratch};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

fn interop_sim(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_interop-sim"))
        .args(args)
        .output()
        .expect("spawn interop-sim");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    out
}

fn path(p: &Path) -> &str {
    p.to_str().expect("scratch paths are UTF-8")
}

fn read(dir: &Path, f: &str) -> Vec<u8> {
    std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{} missing: {e}", dir.join(f).display()))
}

const PLOTS: [&str; 6] = [
    "latency_spectrum",
    "latency_over_time",
    "throughput",
    "queues",
    "outcomes",
    "crypto",
];

/// The plot a run with media downloads adds to [`PLOTS`].
const MEDIA_PLOT: &str = "media_download_spectrum";

/// The plots a run's folder should have: [`PLOTS`], and the media one when blobs were fetched.
fn plots_of(dir: &Path) -> usize {
    let summary: serde_json::Value =
        serde_json::from_slice(&read(dir, "summary.json")).expect("summary.json is JSON");
    let media = summary["media_downloads"].as_u64().unwrap_or(0) > 0;
    let png = dir.join(format!("plots/{MEDIA_PLOT}.png"));
    assert_eq!(
        png.exists(),
        media,
        "{}: the media plot iff media",
        dir.display()
    );
    PLOTS.len() + media as usize
}

#[test]
fn a_run_writes_every_file_and_a_self_contained_page() {
    let dir = scratch("report-run");
    let file = root().join("tests/data/scenarios/small.toml");
    let out = interop_sim(&["run", path(&file), "--out", path(&dir), "--ledger"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for f in [
        "summary.json",
        "timeseries.csv",
        "latency.hgrm",
        "messages.csv",
        "perf.json",
    ] {
        assert!(!read(&dir, f).is_empty(), "{f} is empty");
    }
    for p in PLOTS {
        let png = read(&dir, &format!("plots/{p}.png"));
        assert!(png.starts_with(b"\x89PNG"), "{p}.png is not a PNG");
        let svg = String::from_utf8(read(&dir, &format!("plots/{p}.svg"))).expect("SVG is text");
        assert!(svg.contains("<svg"), "{p}.svg is not an SVG");
    }
    let html = String::from_utf8(read(&dir, "report.html")).expect("HTML is text");
    assert_eq!(
        html.matches("data:image/png;base64,").count(),
        plots_of(&dir)
    );
    for needle in [
        "Verdict",
        "p99.9",
        "timeseries.csv",
        "messages.csv",
        "Crypto cost",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
    interactive_figures_carry_the_files_lines(&dir, &html);
    // messages.csv: one row per message, outcomes adding up to summary.json's counters.
    let csv = String::from_utf8(read(&dir, "messages.csv")).expect("CSV is text");
    let summary: serde_json::Value =
        serde_json::from_slice(&read(&dir, "summary.json")).expect("summary.json");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len() as u64, summary["sent"].as_u64().expect("sent"));
    for outcome in ["delivered", "unreachable", "lost", "expired", "unsent"] {
        let n = rows
            .iter()
            .filter(|r| r.split(',').nth(8) == Some(outcome))
            .count() as u64;
        assert_eq!(n, summary[outcome].as_u64().expect("counter"), "{outcome}");
    }
}

/// The interactive view's data (`data-plot`, issue 19 item 5) is the run's own numbers: the
/// latency-over-time lines are timeseries.csv's columns, the script comes once, and every
/// figure keeps its static PNG for pages opened without scripts.
fn interactive_figures_carry_the_files_lines(dir: &Path, html: &str) {
    let mut plots = BTreeMap::new();
    for chunk in html.split("<figure id=\"").skip(1) {
        let chunk = chunk.split("</figure>").next().expect("a figure");
        let id = chunk.split('"').next().expect("an id");
        let Some(rest) = chunk.split_once(" data-plot=\"") else {
            continue;
        };
        let attr = rest.1.split('"').next().expect("a closing quote");
        let json = attr
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        let v: serde_json::Value = serde_json::from_str(&json).expect("data-plot is JSON");
        plots.insert(id.to_string(), v);
    }
    for id in [
        "latency_spectrum",
        "latency_over_time",
        "throughput",
        "queues",
    ] {
        assert!(
            plots.contains_key(id),
            "{id} is interactive: {:?}",
            plots.keys()
        );
    }
    assert_eq!(html.matches("<script>").count(), 1, "one script");
    let csv = String::from_utf8(read(dir, "timeseries.csv")).expect("CSV is text");
    let header: Vec<&str> = csv.lines().next().expect("a header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("a column");
    let lines = plots["latency_over_time"]["lines"]
        .as_array()
        .expect("lines");
    let p99 = lines
        .iter()
        .find(|l| l["name"] == "p99")
        .expect("a p99 line")["points"]
        .as_array()
        .expect("points");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(p99.len(), rows.len(), "a point per interval");
    for (point, row) in p99.iter().zip(&rows) {
        let t: f64 = row[col("t_s")].parse().expect("t_s");
        assert!((point[0].as_f64().expect("x") - t).abs() < 1e-9);
        let cell = row[col("delivered_p99_ms")];
        match point[1].as_f64() {
            Some(ms) => assert!((ms - cell.parse::<f64>().expect("p99")).abs() < 1e-3),
            None => assert!(cell.is_empty(), "a gap where the row has no p99: {cell}"),
        }
    }
}

#[test]
fn three_shards_merged_equal_the_unsharded_sweep_on_any_thread_count() {
    let file = root().join("tests/data/scenarios/small-sweep.toml");
    let (one, two) = (scratch("sweep-t1"), scratch("sweep-t2"));
    for (dir, threads) in [(&one, "1"), (&two, "2")] {
        let out = interop_sim(&[
            "sweep",
            path(&file),
            "--out",
            path(dir),
            "--threads",
            threads,
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut shard_dirs = Vec::new();
    for k in 0..3 {
        let dir = scratch(&format!("sweep-shard-{k}"));
        let shard = format!("{k}/3");
        let out = interop_sim(&["sweep", path(&file), "--shard", &shard, "--out", path(&dir)]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        shard_dirs.push(dir);
    }
    let merged = scratch("sweep-merged");
    let mut args = vec!["merge"];
    args.extend(shard_dirs.iter().map(|d| path(d)));
    args.extend(["--out", path(&merged)]);
    let out = interop_sim(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // runs.json holds every run's histograms (V2, base64): equal files, equal histograms.
    for f in ["sweep.csv", "runs.json", "report.html"] {
        assert!(
            read(&one, f) == read(&two, f),
            "{f}: 1 thread and 2 threads differ"
        );
        assert!(
            read(&one, f) == read(&merged, f),
            "{f}: 3 shards merged differ"
        );
    }
    let csv = String::from_utf8(read(&one, "sweep.csv")).expect("CSV is text");
    assert_eq!(csv.lines().count(), 1 + 12, "12 runs and a header");
    let html = String::from_utf8(read(&one, "report.html")).expect("HTML is text");
    assert_eq!(html.matches("data:image/png;base64,").count(), 4);
    // A shard missing, or one given twice, is bad input.
    let out = interop_sim(&[
        "merge",
        path(&shard_dirs[0]),
        path(&shard_dirs[1]),
        "--out",
        path(&merged),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let twice = [
        path(&shard_dirs[0]),
        path(&shard_dirs[0]),
        path(&shard_dirs[2]),
    ];
    let out = interop_sim(&[
        "merge",
        twice[0],
        twice[1],
        twice[2],
        "--out",
        path(&merged),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn compare_two_runs() {
    let file = root().join("tests/data/scenarios/small.toml");
    let (a, b, c) = (scratch("cmp-a"), scratch("cmp-b"), scratch("cmp-out"));
    interop_sim(&["run", path(&file), "--out", path(&a)]);
    interop_sim(&["run", path(&file), "--out", path(&b), "--seed", "12"]);
    let out = interop_sim(&[
        "compare",
        path(&a),
        path(&b),
        "--out",
        path(&c),
        "--tolerance",
        "100",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = String::from_utf8(read(&c, "report.html")).expect("HTML is text");
    assert!(html.contains("delivered_p99") && html.contains("data:image/png;base64,"));
    assert!(html.contains("Service-level figures, the largest change first"));

    // A run against itself: nothing changed. Against a copy whose p99 doubled: a regression,
    // named on screen, exit 1.
    let same = interop_sim(&["compare", path(&a), path(&a), "--out", path(&c)]);
    assert_eq!(same.status.code(), Some(0));
    let worse = scratch("cmp-worse");
    for f in ["summary.json", "latency.hgrm"] {
        std::fs::copy(a.join(f), worse.join(f)).expect("copy");
    }
    let mut v: serde_json::Value =
        serde_json::from_slice(&read(&a, "summary.json")).expect("summary.json");
    let p99 = v["delivered_p99"].as_f64().expect("a p99");
    v["delivered_p99"] = serde_json::json!(p99 * 2.0 + 1.0);
    std::fs::write(worse.join("summary.json"), v.to_string()).expect("write");
    let out = interop_sim(&["compare", path(&a), path(&worse), "--out", path(&c)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let first = text.lines().nth(1).unwrap_or("");
    assert!(
        first.starts_with("delivered_p99") && first.ends_with("REGRESSION"),
        "the largest change first: {text}"
    );
    assert!(
        text.contains("compare: REGRESSION beyond 10 % in 1: delivered_p99"),
        "{text}"
    );
    let out = interop_sim(&[
        "compare",
        path(&a),
        path(&root().join("nowhere")),
        "--out",
        path(&c),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Users above which a scenario is a scale test (scale-1m), not run here.
const USERS_MAX_IN_TESTS: u64 = 100_000;

#[test]
fn every_scenario_writes_every_file() {
    use interop_sim::{report, scenario, sim};
    let mut dirs: Vec<_> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    dirs.sort();
    let mut ran = 0;
    let mut fields = BTreeSet::new();
    for file in dirs {
        let mut s = scenario::load(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // Modeled crypto gives the same summary as real crypto (tests/integration/e2ee.rs), in
        // a fraction of the time; the report is what is under test here.
        s.e2ee.crypto = scenario::CryptoMode::Modeled;
        let users: u64 = s.providers.iter().map(|p| p.users as u64).sum();
        if users > USERS_MAX_IN_TESTS {
            continue;
        }
        let dir = scratch(&format!("scenario-{}", s.run.name));
        let r = sim::run_scenario(&s, &scenario::hash(&s));
        let opts = report::RunOptions { ledger: true };
        report::write_run(&dir, &s, &r, opts).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for f in [
            "summary.json",
            "timeseries.csv",
            "latency.hgrm",
            "messages.csv",
            "report.html",
        ] {
            assert!(
                !read(&dir, f).is_empty(),
                "{}: {f} is empty",
                file.display()
            );
        }
        let html = String::from_utf8(read(&dir, "report.html")).expect("HTML is text");
        assert_eq!(
            html.matches("data:image/png;base64,").count(),
            plots_of(&dir),
            "{}: a plot is missing",
            file.display()
        );
        fields.extend(summary_fields(&read(&dir, "summary.json")));
        for f in ["timeseries.csv", "messages.csv"] {
            let text = String::from_utf8(read(&dir, f)).expect("CSV is text");
            let header = text.lines().next().unwrap_or("");
            fields.extend(header.split(',').map(|c| format!("{f}:{c}")));
        }
        ran += 1;
    }
    assert!(ran >= 1, "no scenario ran");
    // docs/RESULTS.md names every field these runs wrote (summary.json generically: a path
    // kind, node kind, runner, content kind or operation stands as <path>, <node>, <runner>,
    // <kind>, <op>).
    let doc = std::fs::read_to_string(root().join("docs/RESULTS.md")).expect("docs/RESULTS.md");
    let documented: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l[3..].split_once('`').map(|(k, _)| k.to_string()))
        .collect();
    let section_of = |field: &str| -> String {
        match field.split_once(':') {
            Some((file, col)) => format!("{file} column {col}"),
            None => format!("summary.json {field}"),
        }
    };
    let missing: Vec<String> = fields
        .iter()
        .filter(|f| !documented.contains(f.split_once(':').map_or(f.as_str(), |(_, c)| c)))
        .map(|f| section_of(f))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/RESULTS.md does not describe: {missing:#?}"
    );
    eprintln!(
        "docs/RESULTS.md: {} fields of {ran} scenarios' results checked",
        fields.len()
    );
}

/// summary.json's fields as generic dotted paths (`paths.<path>.sent`, `expect[].key`).
fn summary_fields(json: &[u8]) -> BTreeSet<String> {
    /// `path.k`, with an instance of a generic name replaced by the name.
    fn join_at(path: &str, k: &str) -> String {
        let parent = path.rsplit('.').next().unwrap_or("");
        let k = match (path, parent) {
            ("paths", _) => "<path>",
            ("nodes", _) => "<node>",
            ("inbox", _) if k == "main" || k == "third_party" => "<inbox>",
            ("crypto.by_message", _) => "<kind>",
            ("work.metadata", _) => "<provider>",
            ("crypto", _) if ["gatekeeper_device", "partner_device", "gateway"].contains(&k) => {
                "<runner>"
            }
            (_, "<runner>" | "<kind>") => {
                if k.ends_with("_ns") {
                    "<op>_ns"
                } else {
                    "<op>"
                }
            }
            _ => k,
        };
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    }
    fn walk(v: &serde_json::Value, path: &str, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    // The crypto section's keys are flat (`by_message.text.ratchet_encrypt`).
                    let mut p = path.to_string();
                    for seg in k.split('.') {
                        p = join_at(&p, seg);
                    }
                    walk(x, &p, out);
                }
            }
            serde_json::Value::Array(a) => {
                let p = format!("{path}[]");
                out.insert(p.clone());
                for x in a.iter().filter(|x| x.is_object()) {
                    walk(x, &p, out);
                }
            }
            _ => {
                out.insert(path.to_string());
            }
        }
    }
    let v: serde_json::Value = serde_json::from_slice(json).expect("summary.json parses");
    let mut out = BTreeSet::new();
    walk(&v, "", &mut out);
    out
}

/// A swarm's faults are drawn from the seed: the report lists them beside the scenario's own
/// (marked with the seed), as the run applied them.
#[test]
fn a_swarms_drawn_faults_are_listed_with_their_seed() {
    let file = root().join("tests/data/scenarios/group-recovery-swarm.toml");
    let mut s = interop_sim::scenario::load(&file).expect("valid");
    s.run.seed = 5;
    let drawn = interop_sim::faults::swarm::materialize(&s).faults.len() - s.faults.len();
    assert!(drawn > 0, "the swarm draws faults at seed 5");
    let out = scratch("swarm-report");
    let run = interop_sim(&["run", path(&file), "--seed", "5", "--out", path(&out)]);
    assert!(run.status.code().is_some_and(|c| c <= 1));
    let html = String::from_utf8(read(&out, "report.html")).expect("HTML is text");
    assert_eq!(html.matches("<td>swarm (seed 5)</td>").count(), drawn);
}
