//! Options shared by the commands that load one scenario and run it (`run`, `check`, `sweep`):
//! what the command line adds to the file, and the memory budget a run is held to before it
//! starts (`scenario::budget`).

use super::Outcome;
use interop_sim::scenario::budget::{self, Estimate};
use interop_sim::scenario::{Design, LoadOptions, Scenario};
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct ScenarioArgs {
    /// Crypto cost table file (what `calibrate` writes) replacing the scenario's
    /// `[e2ee] cost_table`; any path (a path written in a scenario must stay in its folder).
    #[arg(long, value_name = "FILE")]
    pub cost_table: Option<PathBuf>,
    /// Refuse (exit 2) a scenario whose estimated peak memory is above this: bytes, or with a
    /// unit (512MiB, 4GiB, 2GB). Default: 75 % of this machine's memory.
    #[arg(long, value_name = "BYTES", value_parser = parse_memory)]
    pub memory_max: Option<u64>,
    /// Run the file under this interop design instead of its `[topology] design`: "hub" (the
    /// gatekeeper's gateway) or "mimi" (MLS rooms between providers). One file runs both.
    #[arg(long, value_name = "DESIGN", value_parser = parse_design)]
    pub design: Option<Design>,
}

fn parse_design(text: &str) -> Result<Design, String> {
    let keys = Design::ALL.map(Design::key);
    Design::ALL
        .into_iter()
        .find(|d| d.key() == text)
        .ok_or_else(|| format!("expected one of {}", keys.join(", ")))
}

fn parse_memory(text: &str) -> Result<u64, String> {
    budget::parse_bytes(text).map_err(|e| e.to_string())
}

impl ScenarioArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            cost_table: self.cost_table.clone(),
            design: self.design,
        }
    }

    pub fn memory_max(&self) -> u64 {
        self.memory_max.unwrap_or_else(budget::default_memory_max)
    }

    /// The estimate of one run of `s`, or exit 2 (reported here) if it is over the budget.
    pub fn within_budget(&self, s: &Scenario, file: &str) -> Result<Estimate, Outcome> {
        let est = budget::estimate(s);
        match budget::check(&est, self.memory_max(), file) {
            Ok(()) => Ok(est),
            Err(e) => {
                eprintln!("interop-sim: {e}");
                Err(Outcome::Invalid)
            }
        }
    }
}
