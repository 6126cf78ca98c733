//! The fault schedule: each `[[fault]]` becomes a start edge and, if it has a `for`, an end
//! edge. This module orders the edges, picks the users a user-level fault (toggle, identity
//! reset) affects, from the fault's own RNG stream, and decides what each edge does
//! ([`act`]); the simulator lends the mechanisms ([`FaultTarget`]) and schedules the edges.

pub mod act;
pub mod swarm;

pub use act::{apply, ActiveFaults, FaultTarget};

use crate::engine::{RngTree, SimTime};
use crate::net::latency::chance;
use crate::net::Side;
use crate::scenario::{Endpoint, Fault};
use crate::wire::UserId;

/// A fault starting or healing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Start,
    End,
}

/// Every edge of every fault, in time order (ties: file order, start before end).
pub fn edges(faults: &[Fault]) -> Vec<(SimTime, usize, Edge)> {
    let mut v = Vec::with_capacity(faults.len() * 2);
    for (i, f) in faults.iter().enumerate() {
        v.push((SimTime::from_nanos(f.at_ns), i, Edge::Start));
        if let Some(end) = f.end_ns() {
            v.push((SimTime::from_nanos(end), i, Edge::End));
        }
    }
    v.sort_by_key(|&(t, i, e)| (t, e == Edge::End, i));
    v
}

/// The partition side of a fault endpoint.
pub fn side(e: &Endpoint) -> Side {
    match *e {
        Endpoint::Gateway => Side::Gateway,
        Endpoint::Provider(p) => Side::Servers(p),
        Endpoint::Clients(p) => Side::Clients(p),
    }
}

/// The users of `range` a user-level fault hits: each with probability `share`, drawn from the
/// fault's own stream so that other streams are untouched.
pub fn pick_users(
    tree: &RngTree,
    fault_index: usize,
    range: std::ops::Range<u32>,
    share: f64,
) -> Vec<UserId> {
    let mut rng = tree.stream("faults/users", fault_index as u64);
    range
        .filter(|_| chance(&mut rng, share))
        .map(UserId)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{FaultKind, HopClass};

    #[test]
    fn edges_are_time_ordered_and_open_faults_never_end() {
        let f = |at, dur| Fault {
            at_ns: at,
            for_ns: dur,
            kind: FaultKind::Loss {
                link: HopClass::ClientServer,
                rate: 0.1,
            },
        };
        let e = edges(&[f(50, Some(10)), f(10, None), f(60, Some(5))]);
        let got: Vec<_> = e.iter().map(|&(t, i, ed)| (t.as_nanos(), i, ed)).collect();
        assert_eq!(
            got,
            vec![
                (10, 1, Edge::Start),
                (50, 0, Edge::Start),
                (60, 2, Edge::Start),
                (60, 0, Edge::End),
                (65, 2, Edge::End)
            ]
        );
    }
}
