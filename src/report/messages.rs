//! messages.csv (`run --ledger`): one row per message from the ledger's records, for a planner
//! who wants to slice the run another way (by content kind, by sender, by hour).

use crate::metrics::ledger::{MsgRecord, Records};
use std::fmt::Write as _;

/// The final outcome of one message, classified as `metrics::summary` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Unreachable,
    Unsent,
    Lost,
    /// Still on its way when the drain ended (late, not lost).
    QueuedAtEnd,
    Expired,
}

impl Outcome {
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Unreachable => "unreachable",
            Outcome::Unsent => "unsent",
            Outcome::Lost => "lost",
            Outcome::QueuedAtEnd => "queued_at_end",
            Outcome::Expired => "expired",
        }
    }
}

/// Same rules as `summary::classify`: shown on every expected device is delivered; a device not
/// accounted for is lost; otherwise expired before unreachable.
pub fn outcome(r: &MsgRecord) -> Outcome {
    if r.refused() && !r.accepted() {
        return Outcome::Unreachable;
    }
    if !r.accepted() && r.queued_at_end.is_some() {
        return Outcome::QueuedAtEnd;
    }
    if !r.accepted() {
        return Outcome::Unsent;
    }
    let expected = r.expected_mask;
    let missing = expected & !(r.shown_mask | r.expired_mask | r.unreachable_mask);
    if r.shown_mask & expected == expected {
        Outcome::Delivered
    } else if missing != 0 && r.queued_at_end.is_some() {
        Outcome::QueuedAtEnd
    } else if missing != 0 {
        Outcome::Lost
    } else if r.expired_mask != 0 {
        Outcome::Expired
    } else {
        Outcome::Unreachable
    }
}

pub const HEADER: &str = "msg_id,created_s,path,content,bytes,from_user,from_device,to_user,outcome,expected_devices,shown_devices,expired_devices,unreachable_devices,stored_offline,crossed_gateway,read,duplicates_shown,duplicates_suppressed,last_shown_s,latency_ms,unreachable_reason";

/// Why an unreachable message was not delivered: `refused` at submission (third-party chats off
/// at either end; the sender was told), or `switched_off` (accepted, then a copy queued for a
/// partner device was dropped when a side switched third-party chats off).
fn unreachable_reason(r: &MsgRecord, o: Outcome) -> &'static str {
    match o {
        Outcome::Unreachable if r.refused() && !r.accepted() => "refused",
        Outcome::Unreachable => "switched_off",
        _ => "",
    }
}

/// The CSV text. Times are simulated seconds; `latency_ms` is created -> shown on the last
/// device, empty unless delivered.
pub fn messages_csv(records: &Records) -> String {
    let mut out = String::with_capacity(records.len() * 96 + HEADER.len() + 1);
    out.push_str(HEADER);
    out.push('\n');
    for (i, r) in records.iter().enumerate() {
        let o = outcome(r);
        let (last_shown, latency) = if r.shown_mask != 0 {
            let ms = r.last_shown.since(r.created) as f64 / 1e6;
            (format!("{:.6}", r.last_shown.as_secs_f64()), {
                if o == Outcome::Delivered {
                    format!("{ms:.3}")
                } else {
                    String::new()
                }
            })
        } else {
            (String::new(), String::new())
        };
        let _ = writeln!(
            out,
            "{i},{:.6},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.created.as_secs_f64(),
            r.path.key(),
            r.content.key(),
            r.bytes,
            r.from_user.0,
            r.from_device.0,
            r.to_user.0,
            o.key(),
            r.expected_devices(),
            r.shown_mask.count_ones(),
            r.expired_mask.count_ones(),
            r.unreachable_mask.count_ones(),
            r.stored_offline,
            u8::from(r.crossed_gateway()),
            u8::from(r.read()),
            r.duplicates_shown,
            r.duplicates_suppressed,
            last_shown,
            latency,
            unreachable_reason(r, o)
        );
    }
    out
}
