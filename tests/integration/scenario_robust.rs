//! Inputs that are not scenarios at all (empty, binary, unreadable, mutated, deeply nested,
//! random) are rejected cleanly: an error with a place, never a panic.

use std::path::Path;

use interop_sim::scenario;

use crate::scenario_errors::data;

#[test]
fn empty_and_blank_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in [("empty.toml", ""), ("blank.toml", "\n  \n\t\n")] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write temp file");
        let e = scenario::load(&path).expect_err("empty file is rejected");
        assert_eq!(e.len(), 1, "{e}");
        assert!(e.to_string().contains("empty"), "{e}");
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
    }
}

#[test]
fn binary_garbage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("garbage.toml");
    let bytes: Vec<u8> = b"[run]\nseed = 1\n"
        .iter()
        .copied()
        .chain([0xff, 0xfe, 0x00, 0x81, 0xc3, 0x28])
        .collect();
    std::fs::write(&path, bytes).expect("write temp file");
    let e = scenario::load(&path).expect_err("binary is rejected");
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!((e.problems[0].line, e.problems[0].col), (3, 1));
    assert!(e.to_string().contains("invalid UTF-8 at byte 15"), "{e}");
    // Valid UTF-8 full of control characters is a syntax error, not a panic.
    std::fs::write(&path, "\u{0}\u{1}\u{7f}[[[\u{0}").expect("write temp file");
    assert!(scenario::load(&path).is_err());
}

#[test]
fn unreadable_file() {
    let e =
        scenario::load(Path::new("/nonexistent/dir/x.toml")).expect_err("missing file is rejected");
    assert_eq!(e.len(), 1);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/dir/x.toml: cannot read the file"),
        "{e}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(
        scenario::load(dir.path()).is_err(),
        "a directory is not a scenario"
    );
}

/// No input makes the parser panic: every broken and valid file, cut and corrupted byte by byte.
#[test]
fn mutated_inputs_never_panic() {
    let mut sources = Vec::new();
    for dir in ["valid", "broken"] {
        for entry in std::fs::read_dir(data(dir)).expect("data dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                sources.push(std::fs::read_to_string(path).expect("text"));
            }
        }
    }
    let replacements = [
        "",
        "\"",
        "[",
        "]",
        "=",
        "-",
        "1e999",
        "\u{0}",
        "é",
        "{",
        "}",
        ".",
        "\n",
        "0",
        "99999999999999999999",
    ];
    let mut runs = 0u64;
    for src in &sources {
        let bytes = src.as_bytes();
        let step = (bytes.len() / 40).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            for r in replacements {
                let mut mutated = bytes[..cut].to_vec();
                mutated.extend_from_slice(r.as_bytes());
                mutated.extend_from_slice(&bytes[(cut + 1).min(bytes.len())..]);
                let text = String::from_utf8_lossy(&mutated);
                let _ = scenario::parse(&text, "mutated.toml");
                runs += 1;
            }
            let _ = scenario::parse(&src[..src.floor_char_boundary_compat(cut)], "cut.toml");
        }
    }
    assert!(runs > 1000);
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while i > 0 && !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    for depth in [1_000, 100_000] {
        let arrays = format!("a = {}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(scenario::parse(&arrays, "deep.toml").is_err());
        let tables = format!("a = {}{}", "{ b = ".repeat(depth), "}".repeat(depth));
        assert!(scenario::parse(&tables, "deep.toml").is_err());
        let dotted = format!("[expect]\n{} = 1", vec!["native"; depth].join("."));
        assert!(scenario::parse(&dotted, "deep.toml").is_err());
    }
}

#[test]
#[ignore = "prints every broken file's problems, for eyeballing"]
fn show_all() {
    let mut paths: Vec<_> = std::fs::read_dir(data("broken"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for p in paths {
        println!("{}", scenario::load(&p).unwrap_err());
    }
}

mod fuzz {
    use interop_sim::scenario;
    use proptest::prelude::*;

    const KEYS: [&str; 24] = [
        "name",
        "role",
        "users",
        "devices_per_user",
        "min",
        "max",
        "dist",
        "latency",
        "loss",
        "at",
        "for",
        "kind",
        "between",
        "node",
        "link",
        "rate",
        "provider",
        "content",
        "text",
        "groups",
        "size",
        "lost",
        "interop.delivered_p99",
        "gateway.utilization_peak",
    ];
    const VALUES: [&str; 24] = [
        "1",
        "0",
        "-1",
        "1.5",
        "0.5",
        "nan",
        "inf",
        "9223372036854775807",
        "\"gatekeeper\"",
        "\"partner\"",
        "\"gateway\"",
        "\"a\"",
        "\"b-clients\"",
        "\"1.5s\"",
        "\"-1s\"",
        "\"99999999d\"",
        "\"partition\"",
        "\"crash\"",
        "\"lognormal\"",
        "true",
        "[\"a\", \"gateway\"]",
        "[]",
        "{ min = 2, max = 1 }",
        "{ dist = \"pareto\", min = \"0s\", alpha = 0 }",
    ];
    const HEADERS: [&str; 10] = [
        "[run]",
        "[[provider]]",
        "[network]",
        "[network.client_server]",
        "[workload]",
        "[capacity.gateway]",
        "[e2ee]",
        "[devices]",
        "[[fault]]",
        "[expect]",
    ];

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            (0..HEADERS.len()).prop_map(|h| HEADERS[h].to_string()),
            (0..KEYS.len(), 0..VALUES.len())
                .prop_map(|(k, v)| format!("{} = {}", KEYS[k], VALUES[v])),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Scenario-shaped text: known headers, keys and edge values in any order.
        #[test]
        fn scenario_shaped_text_never_panics(lines in proptest::collection::vec(line(), 0..40)) {
            let text = lines.join("\n");
            if let Err(e) = scenario::parse(&text, "fuzz.toml") {
                prop_assert!(!e.is_empty());
                prop_assert!(e.iter().all(|p| p.line >= 1 && p.col >= 1), "{}", e);
            }
        }

        #[test]
        fn any_text_never_panics(text in "\\PC{0,300}") {
            let _ = scenario::parse(&text, "fuzz.toml");
        }
    }
}
