//! Protocol tests on the two-node harness ([`super::pair`]): each drives a few nodes by hand
//! and asserts what they sent, armed and recorded. One file per mechanism.

mod connection;
mod device;
mod mailbox;
mod opt_in;
mod reorder;
mod retry;
mod servers;
mod throttle;

use super::pair::{Pair, Setup};
use super::Addr;
use crate::engine::SimTime;
use crate::wire::{DeviceId, UserId};

/// Gatekeeper users and their devices, in the order the setups below number them.
pub const A: DeviceId = DeviceId(0);
pub const B: DeviceId = DeviceId(1);
pub const C: DeviceId = DeviceId(2);
pub const UA: UserId = UserId(0);
pub const UB: UserId = UserId(1);
pub const UC: UserId = UserId(2);
pub const HUB: Addr = Addr::ChatServer;

pub fn dev(d: DeviceId) -> Addr {
    Addr::Device(d)
}

pub fn secs(s: u64) -> SimTime {
    SimTime::from_secs(s)
}

/// Users `UA` and `UB` of the gatekeeper, a device each (`A`, `B`), and the hub.
pub fn two_users(s: Setup) -> Pair {
    s.build(&[dev(A), dev(B), HUB])
}

/// [`two_users`] with the default setup and both devices connected.
pub fn connected() -> Pair {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[A, B]);
    p
}
