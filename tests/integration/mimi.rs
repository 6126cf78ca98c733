//! The MIMI design (issue 22) in whole runs: one scenario file under both designs, a MIMI run
//! byte for byte twice, the checker failing a MIMI network that cannot deliver and passing it
//! once healed, and the scenario errors a MIMI key gives under the hub.

use crate::{files_under, root};
use interop_sim::scenario::{self, Design, LoadOptions};
use interop_sim::sim::run_scenario;

/// `scenarios/mimi-vs-hub.toml` cut to a minute and a fifth of its users, for test time.
fn small(design: Design, edits: &[(&str, &str)]) -> interop_sim::scenario::Scenario {
    let mut text = std::fs::read_to_string(root().join("scenarios/mimi-vs-hub.toml"))
        .expect("scenarios/mimi-vs-hub.toml");
    for (from, to) in [
        ("duration = \"5m\"", "duration = \"60s\""),
        ("users = 1600", "users = 320"),
        ("users = 240", "users = 48"),
        ("users = 160", "users = 32"),
    ]
    .iter()
    .chain(edits)
    {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    let opts = LoadOptions {
        design: Some(design),
        ..LoadOptions::default()
    };
    scenario::parse_with(&text, "mimi-vs-hub.toml", &opts).unwrap_or_else(|e| panic!("{e}"))
}

fn counter(s: &interop_sim::metrics::Summary, key: &str) -> u64 {
    s.work.get(key).copied().unwrap_or(0)
}

#[test]
fn one_file_runs_under_both_designs_with_nothing_lost() {
    let mut figures = Vec::new();
    for design in Design::ALL {
        let s = small(design, &[]);
        let r = run_scenario(&s, "t").summary;
        assert!(r.passed, "{design:?}: {:?}", r.expect);
        assert_eq!(r.counters.lost, 0, "{design:?}");
        let group_sends = counter(&r, "group_sends");
        assert!(group_sends > 20, "{design:?}: {group_sends} group messages");
        figures.push((design, r));
    }
    let (hub, mimi) = (&figures[0].1, &figures[1].1);
    // The hub design's interop traffic crosses the gateway; MIMI's crosses between providers.
    assert!(counter(hub, "bytes_gateway_partner") > 0);
    assert_eq!(counter(hub, "bytes_provider_provider"), 0);
    assert!(counter(mimi, "bytes_provider_provider") > 0);
    assert_eq!(counter(mimi, "bytes_gateway_partner"), 0);
    // MLS under MIMI, Signal under the hub: the crypto counters say which ran.
    let crypto = |s: &interop_sim::metrics::Summary, op: &str| {
        s.crypto
            .iter()
            .filter(|(k, _)| k.ends_with(&format!("_device.{op}")))
            .map(|(_, v)| *v)
            .sum::<u64>()
    };
    assert!(crypto(mimi, "mls_encrypt") > 0 && crypto(mimi, "ratchet_encrypt") == 0);
    assert!(
        crypto(mimi, "mls_commit") > 0,
        "rooms are made and re-keyed by commits"
    );
    assert!(crypto(hub, "ratchet_encrypt") > 0 && crypto(hub, "mls_encrypt") == 0);
}

#[test]
fn a_mimi_run_gives_the_same_result_files_twice() {
    let run = |out: &std::path::Path| {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_interop-sim"))
            .args(["run", "scenarios/mimi-vs-hub.toml", "--out"])
            .arg(out)
            .current_dir(root())
            .output()
            .expect("spawn interop-sim");
        assert_eq!(status.status.code(), Some(0), "{status:?}");
        files_under(out)
            .into_iter()
            .filter(|p| !p.ends_with("perf.json"))
            .map(|p| {
                (
                    p.strip_prefix(out).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (
        crate::scratch("mimi-twice-a"),
        crate::scratch("mimi-twice-b"),
    );
    let (first, second) = (run(&a), run(&b));
    assert!(first.len() > 5, "{} files", first.len());
    assert!(first == second, "a MIMI run differs from itself");
}

/// A follower provider cut off from the hub for good: its members' copies never arrive and the
/// verdict fails; the same cut healed before the drain: everything arrives.
#[test]
fn the_checker_fails_a_cut_off_follower_and_passes_it_healed() {
    let cut = |until: &str| {
        let fault = format!(
            "[[fault]]\nkind = \"partition\"\nbetween = [\"whatsapp\", \"birdychat\"]\nat = \"10s\"\n{until}\n[expect]\n"
        );
        let s = small(Design::Mimi, &[("[expect]\n", fault.as_str())]);
        run_scenario(&s, "t").summary
    };
    let forever = cut("");
    assert!(
        !forever.passed,
        "a follower never reached must fail the run"
    );
    let healed = cut("for = \"20s\"");
    assert!(healed.passed, "{:?}", healed.expect);
    assert!(
        counter(&healed, "dropped_partition") > 0,
        "the cut dropped frames"
    );
}

#[test]
fn mimi_keys_under_the_hub_and_unknown_designs_are_errors_with_their_place() {
    let base = "[[provider]]\nname = \"a\"\nrole = \"gatekeeper\"\nusers = 10\n\n[[provider]]\nname = \"b\"\nrole = \"partner\"\nusers = 10\n";
    let unknown = format!("{base}\n[topology]\ndesign = \"mimmi\"\n");
    let e = scenario::parse(&unknown, "t.toml")
        .expect_err("an unknown design")
        .to_string();
    assert!(
        e.contains("t.toml:12:") && e.contains("did you mean 'mimi'?"),
        "{e}"
    );
    let link = format!(
        "{base}\n[network]\nprovider_provider = {{ latency = {{ dist = \"constant\", value = \"5ms\" }} }}\n"
    );
    let e = scenario::parse(&link, "t.toml")
        .expect_err("a MIMI link under the hub")
        .to_string();
    assert!(
        e.contains("t.toml:12:") && e.contains("did you mean") && e.contains("design = \"mimi\""),
        "{e}"
    );
    let real = format!("{base}\n[topology]\ndesign = \"mimi\"\n");
    let e = scenario::parse(&real, "t.toml")
        .expect_err("real MLS is not built")
        .to_string();
    assert!(e.contains("crypto = \"modeled\""), "{e}");
}

/// `scenarios/group-size.toml` cut down (three sizes, a fifth of the users): the sweep report
/// plots both designs against group size and says where they cross, or that they do not.
#[test]
fn a_design_sweep_over_group_size_draws_both_designs_and_states_the_crossover() {
    let mut text = std::fs::read_to_string(root().join("scenarios/group-size.toml"))
        .expect("scenarios/group-size.toml");
    for (from, to) in [
        ("users = 1200", "users = 240"),
        ("users = 400", "users = 80"),
        ("users = 400", "users = 80"),
        ("[2, 8, 32, 128, 512, 1024]", "[2, 16, 128]"),
    ] {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    let dir = crate::scratch("group-size-sweep");
    let file = dir.join("group-size.toml");
    std::fs::write(&file, text).expect("write the scenario");
    let out = dir.join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_interop-sim"))
        .args(["sweep"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("spawn interop-sim");
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(
        html.contains("The interop designs compared"),
        "no design section"
    );
    // The refused-commit figure is drawn when some commit was refused; its sentence always.
    for name in ["design_crypto_per_copy", "design_bytes_per_copy"] {
        for ext in ["png", "svg"] {
            let f = out.join(format!("plots/{name}.{ext}"));
            assert!(std::fs::metadata(&f).is_ok_and(|m| m.len() > 1000), "{f:?}");
        }
    }
    let stated = [
        "the lines cross at",
        "no crossover",
        "ran under both designs",
    ]
    .iter()
    .map(|s| html.matches(s).count())
    .sum::<usize>();
    assert_eq!(
        stated, 2,
        "the two cost figures say whether the designs cross"
    );
    assert!(
        html.contains("MLS commits the hub refused"),
        "the conflicts figure"
    );
}

/// The gatekeeper, hub of most rooms, crashes for 15 s (its queues on durable storage): its
/// rooms stall, its fan-outs and the relays to it are dropped and retried, and once it is back
/// nothing is lost.
#[test]
fn a_crashed_hub_stalls_its_rooms_and_they_resume() {
    let fault =
        "[[fault]]\nkind = \"crash\"\nnode = \"whatsapp\"\nat = \"10s\"\nfor = \"15s\"\n\n[expect]\n";
    let r = run_scenario(&small(Design::Mimi, &[("[expect]\n", fault)]), "t").summary;
    assert!(r.passed, "{:?} {:?}", r.expect, r.liveness);
    assert!(
        counter(&r, "dropped_node_down") > 0,
        "the crash dropped frames"
    );
    assert!(
        counter(&r, "mimi_fanouts_again") > 0,
        "fan-outs were retried"
    );
}

/// A partner leaves mid-run (every one of its users switches third-party chats off, and back on
/// a little later): messages to them meanwhile are refused by policy, none is lost, under both
/// designs.
#[test]
fn a_provider_leaving_and_coming_back_loses_nothing_under_either_design() {
    let fault = "[[fault]]\nkind = \"toggle\"\nprovider = \"haiket\"\nusers = 1.0\nat = \"20s\"\nfor = \"20s\"\n\n[expect]\n";
    for design in Design::ALL {
        let r = run_scenario(&small(design, &[("[expect]\n", fault)]), "t").summary;
        assert!(r.passed, "{design:?}: {:?} {:?}", r.expect, r.liveness);
        assert!(r.counters.unreachable > 0, "{design:?}: nobody was refused");
    }
}
