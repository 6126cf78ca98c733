//! The retry-storm flag of a run: servers whose redeliveries exceed a share of their first
//! deliveries, and the sentence the screen and the report print for each.

use super::summary::{Summary, REDELIVERY_FLAG};

impl Summary {
    /// Servers whose mailbox redelivered more than [`REDELIVERY_FLAG`] of its first deliveries,
    /// as (node kind, first deliveries, redeliveries): acks came back later than the redelivery
    /// timer, and the retries add to the load that delays them (a retry storm).
    pub fn redelivery_flags(&self) -> Vec<(&'static str, u64, u64)> {
        ["chat_server", "partner_server"]
            .into_iter()
            .filter_map(|node| {
                let first = *self.work.get(&format!("{node}_first_deliveries"))?;
                let again = *self.work.get(&format!("{node}_redeliveries"))?;
                (again as f64 > REDELIVERY_FLAG * first as f64).then_some((node, first, again))
            })
            .collect()
    }

    /// One sentence per flagged server (see [`Summary::redelivery_flags`]), for the screen and
    /// the report alike.
    pub fn retry_storm_notes(&self) -> Vec<String> {
        self.redelivery_flags()
            .into_iter()
            .map(|(node, first, again)| {
                format!(
                    "the {node} redelivered {again} frames for {first} first deliveries ({:.0} %, flagged above {:.0} %): acks come back later than its redelivery timer, and the retries add to the load that delays them",
                    again as f64 * 100.0 / first.max(1) as f64,
                    REDELIVERY_FLAG * 100.0
                )
            })
            .collect()
    }
}
