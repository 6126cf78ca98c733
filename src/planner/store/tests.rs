use super::*;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("interop-sim-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A record of run `run` on seed 1 by `build`, with one figure `lost` written as `bits`.
fn record(build: &str, run: &str, bits: &str) -> String {
    format!(
        r#"{{"format":"{FORMAT}","build":"{build}","run":"{run}","seed":1,"figures":{{"lost":"{bits}"}}}}"#
    )
}

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

#[test]
fn figures_come_back_bit_for_bit_and_other_keys_are_kept() {
    let dir = scratch("bits");
    let store = RunStore::open(&dir).unwrap();
    let mut f = Figures::new();
    f.insert("interop.delivered_p99".into(), Some(0.1 + 0.2));
    f.insert("lost".into(), Some(0.0));
    f.insert("native.delivered_p50".into(), None);
    f.insert("odd".into(), Some(f64::MIN_POSITIVE / 3.0));
    assert_eq!(store.load("abc", 7, &keys(&["lost"])).unwrap(), None);
    store.save("abc", 7, &f).unwrap();
    let all: Vec<String> = f.keys().cloned().collect();
    let back = store.load("abc", 7, &all).unwrap().unwrap();
    for (k, v) in &f {
        assert_eq!(back[k].map(f64::to_bits), v.map(f64::to_bits), "{k}");
    }
    // A plan with another SLO runs the run again; its record keeps the first plan's keys.
    assert_eq!(
        store
            .load("abc", 7, &keys(&["lost", "duplicates"]))
            .unwrap(),
        None
    );
    let mut g = Figures::new();
    g.insert("duplicates".into(), Some(2.0));
    store.save("abc", 7, &g).unwrap();
    assert!(
        store.load("abc", 7, &all).unwrap().is_some(),
        "first plan's keys kept"
    );
    assert!(store
        .load("abc", 7, &keys(&["duplicates"]))
        .unwrap()
        .is_some());
    // A record of another seed under this run's name is not this run's.
    let e = store
        .load("abc", 8, &keys(&["lost"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("seed 7"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_record_of_another_build_is_run_again() {
    let dir = scratch("build");
    let store = RunStore::open(&dir).unwrap();
    let other = record("0123456789abcdef", "r9", "0000000000000000");
    std::fs::write(dir.join("r9.json"), other).unwrap();
    assert_eq!(store.load("r9", 1, &keys(&["lost"])).unwrap(), None);
    assert_eq!(store.other_build_count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_claim_is_exclusive_until_dropped_or_quiet_too_long() {
    let dir = scratch("claim");
    let store = RunStore::open(&dir).unwrap();
    let held = store.claim("r1").unwrap().expect("free");
    assert!(store.claim("r1").unwrap().is_none(), "held");
    let mut watch = ClaimWatch::default();
    assert!(matches!(watch.look(&store, "r1"), Claimed::Alive(_)));
    drop(held);
    assert_eq!(watch.look(&store, "r1"), Claimed::Free);
    // A claim of another machine that stops moving is taken over once it has been quiet for
    // the stale time by the waiter's own clock.
    std::fs::write(
        dir.join("r2.claim"),
        "host elsewhere\nboot x\npidns y\npid 7\n",
    )
    .unwrap();
    let quick = RunStore::open(&dir)
        .unwrap()
        .with_stale(Duration::from_millis(50));
    let mut watch = ClaimWatch::default();
    assert_eq!(
        watch.look(&quick, "r2"),
        Claimed::Alive("pid 7 on elsewhere".into())
    );
    std::thread::sleep(Duration::from_millis(120));
    assert!(matches!(watch.look(&quick, "r2"), Claimed::TakenOver(_)));
    assert!(quick.claim("r2").unwrap().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_claim_of_a_process_of_this_machine_that_is_gone_is_taken_over_at_once() {
    let dir = scratch("gone");
    let store = RunStore::open(&dir).unwrap();
    if identity().boot.is_empty() || identity().pid_ns.is_empty() {
        return; // not Linux: only the quiet time applies
    }
    // Process ids stay below 2^22 on Linux: this one runs nowhere.
    std::fs::write(dir.join("r3.claim"), owner_lines(4_194_304 + 17)).unwrap();
    assert!(matches!(
        ClaimWatch::default().look(&store, "r3"),
        Claimed::TakenOver(_)
    ));
    std::fs::write(dir.join("r4.claim"), owner_lines(std::process::id())).unwrap();
    assert!(
        matches!(ClaimWatch::default().look(&store, "r4"), Claimed::Alive(_)),
        "alive"
    );
    // Another boot of a machine of the same name: not judged by its process id.
    let other_boot = owner_lines(4_194_304 + 17).replace(&identity().boot, "another-boot");
    std::fs::write(dir.join("r5.claim"), other_boot).unwrap();
    assert!(matches!(
        ClaimWatch::default().look(&store, "r5"),
        Claimed::Alive(_)
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_record_is_named_not_trusted() {
    let dir = scratch("corrupt");
    let store = RunStore::open(&dir).unwrap();
    std::fs::write(dir.join("r6.json"), b"{ half a rec").unwrap();
    let e = store
        .load("r6", 1, &keys(&["lost"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("r6.json") && e.contains("not a plan run record"),
        "{e}"
    );
    std::fs::write(dir.join("r7.json"), record(build_id(), "r7", "+1")).unwrap();
    let e = store
        .load("r7", 1, &keys(&["lost"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("16 hex digits"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_where_the_folder_should_be_is_named() {
    let dir = scratch("file");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("runs");
    std::fs::write(&file, b"x").unwrap();
    let e = RunStore::open(&file).unwrap_err().to_string();
    assert!(e.contains("not a folder"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
