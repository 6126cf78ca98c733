//! The scenario front end against broken and valid files: every problem is found, each with its
//! line and key path, and no input makes the parser panic.

use std::path::{Path, PathBuf};

use interop_sim::scenario::{self, Scenario, ScenarioErrors};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel)
}

fn valid(name: &str) -> Scenario {
    match scenario::load(&data(&format!("valid/{name}"))) {
        Ok(s) => s,
        Err(e) => panic!("{name} should parse:\n{e}"),
    }
}

fn broken(name: &str) -> ScenarioErrors {
    match scenario::load(&data(&format!("broken/{name}"))) {
        Ok(s) => panic!("{name} should be rejected, parsed as {s:#?}"),
        Err(e) => {
            eprintln!("{e}");
            e
        }
    }
}

#[test]
fn debug_print() {
    for name in ["minimal.toml", "contract.toml", "full.toml"] {
        let s = valid(name);
        println!("{}", scenario::to_toml(&s));
        println!("{:?}", scenario::hash(&s));
    }
}
