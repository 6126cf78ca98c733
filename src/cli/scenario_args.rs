//! Options shared by the commands that load one scenario and run it (`run`, `check`, `sweep`):
//! what the command line adds to the file.

use interop_sim::scenario::LoadOptions;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct ScenarioArgs {
    /// Crypto cost table file (what `calibrate` writes) replacing the scenario's
    /// `[e2ee] cost_table`; any path (a path written in a scenario must stay in its folder).
    #[arg(long, value_name = "FILE")]
    pub cost_table: Option<PathBuf>,
}

impl ScenarioArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            cost_table: self.cost_table.clone(),
        }
    }
}
