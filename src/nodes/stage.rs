//! The stages of a message's way that both drivers mark for their step-by-step latency
//! ([`crate::metrics::hops`]), named the same in live.json and the simulated copy.

use super::Addr;

/// A stage of a message's way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The sender took the message (live: the generator took the arrival, before encrypting
    /// it; simulated: the message was composed).
    Send,
    /// Its frame went to the sender's connection (encrypted, composed).
    Queued,
    /// A server node took the frame from its inbox (live: the node's task; simulated: a core
    /// of the node's, free and awake, took it).
    Node(Addr),
    /// The recipient read the delivery (live: its frames came in one socket read of the
    /// generator; simulated: the device, or the generator's core, free and awake, when the
    /// scenario has one, took the frame).
    Delivered,
}

impl Stage {
    pub fn name(self) -> String {
        match self {
            Stage::Send => "send".into(),
            Stage::Queued => "queued".into(),
            Stage::Node(a) => node_name(a),
            Stage::Delivered => "delivered".into(),
        }
    }
}

/// A server node's name in live.json (its node costs and its steps): the summary's node keys,
/// with the partner's index.
pub fn node_name(a: Addr) -> String {
    match a {
        Addr::ChatServer => "chat_server".into(),
        Addr::Gateway => "gateway".into(),
        Addr::Adapter(p) => format!("adapter.{}", p.0),
        Addr::PartnerServer(p) => format!("partner_server.{}", p.0),
        other => format!("{other:?}"),
    }
}
