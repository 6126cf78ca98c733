//! What a run produced, as its readers see it: the simulator (`sim`) and the live driver
//! (`live`) fill it in; `report` and `sweep` read it. It lives with the metrics so that the
//! report, which sees metrics only, needs nothing from the simulator.

use super::media::MediaLatency;
use super::{Ledger, Summary, TimeSeries};
use crate::engine::StopReason;

/// What a run produced.
pub struct RunResult {
    pub summary: Summary,
    pub timeseries: TimeSeries,
    pub ledger: Ledger,
    pub stop: StopReason,
    /// `--trace` output: one JSON object per line.
    pub trace: Vec<String>,
    /// Deliveries whose decrypted plaintext matched what the sender wrote (real crypto only;
    /// kept out of summary.json, which is the same in real and modeled mode).
    pub verified_plaintexts: u64,
    /// Simulated CPU time charged for crypto, from the cost table.
    pub crypto_charged_ns: u64,
    /// The random word every plaintext of the run carries.
    pub canary: u64,
    /// With `RunOptions::tap`: each frame the gateway, adapters, partner servers, media stores
    /// and the media proxy handled, as its debug text followed by the raw ciphertext bytes it
    /// carried (for an upload: the first bytes of the stored blob).
    pub tapped: Vec<Vec<u8>>,
    /// Media blobs whose pointer (parsed from the decrypted plaintext) and bytes verified and
    /// decrypted on the recipient device (real crypto only; kept out of summary.json).
    pub media_verified: u64,
    /// Blobs really decrypted: the first verifying device of each; the other devices' pointers
    /// are compared with the secret that opened it (sim/media.rs).
    pub media_blobs_opened: u64,
    /// Real crypto disagreeing with the model about a media pointer or blob (a bug if not 0).
    pub media_disagreed: u64,
    /// Media download latencies (ns, from the message shown to its blob decrypted), 1:1 and
    /// group messages apart; empty without media.
    pub media_latency: MediaLatency,
    /// Where the traced messages' latency went, step by step (with `RunOptions::hops`; empty
    /// otherwise).
    pub hops: Vec<super::hops::Step>,
}
