//! Link models: how long a frame takes from one node to the next, and whether it arrives at
//! all. One [`LinkModel`] per hop class; each directed link instance keeps only two numbers of
//! state (when its transmitter is free, when its last frame lands), so a million device links
//! cost a few tens of megabytes.

pub mod latency;
pub mod link;
pub mod partition;

pub use latency::LatencySampler;
pub use link::{LinkEffect, LinkModel, LinkState, Transit};
pub use partition::{Partitions, Side};
