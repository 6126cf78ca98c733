//! The rounds of one core's event loop (`[capacity] host` and `generator` of one core): a live
//! runtime thread wakes, takes every frame that came while it slept or worked, runs each one's
//! task, and its connections' writer tasks, woken by that work, run at the end of the round,
//! after the frames taken with it. So a frame's outputs leave when its round ends, not when
//! its own work is done: at load, rounds grow long and everything in them waits for the last.
//!
//! The items' completions are those of a FIFO (a gated round serves the frames that came during
//! the round before it, in order); what the rounds add is when outputs leave
//! ([`Rounds::end_of`]). Kept as the ends of the rounds begun (membership closed) and the end
//! of the one gathering (the frames coming during the current round).

use crate::engine::SimTime;
use std::collections::VecDeque;

#[derive(Clone, Debug, Default)]
pub struct Rounds {
    /// Ends of the rounds begun and not over before the latest instant asked about, in order.
    begun: VecDeque<SimTime>,
    /// End of the round the frames coming now join; it begins when the last begun one ends.
    gathering: Option<SimTime>,
    /// The connections the gathering round reads (each once, whatever it holds).
    reads: Vec<u64>,
    /// The connections the round begun last reads: a frame coming over one of them while
    /// that round runs is taken by its read (a live reader takes what the socket holds when
    /// it runs, not what it held when the round began), and pays no read of its own.
    reading: Vec<u64>,
}

impl Rounds {
    /// Whether an item coming at `now` from connection `from` is its round's first from there
    /// (its round reads the connection for it). `idle`: it begins a round of its own.
    pub fn reads(&mut self, now: SimTime, idle: bool, from: u64) -> bool {
        self.roll(now, false);
        if idle {
            self.reading.clear();
            self.reading.push(from);
            return true;
        }
        if !self.begun.is_empty() && self.reading.contains(&from) {
            return false;
        }
        if self.gathering.is_none() {
            self.reads.clear();
        }
        if self.reads.contains(&from) {
            return false;
        }
        self.reads.push(from);
        true
    }

    /// An item came at `now` and completes at `done`; `idle`: it found the core idle, so it
    /// begins a round of its own (one that comes later joins the next).
    pub fn admit(&mut self, now: SimTime, done: SimTime, idle: bool) {
        self.roll(now, false);
        if idle {
            debug_assert!(self.gathering.is_none(), "an idle core gathers nothing");
            self.begun.push_back(done);
        } else {
            self.gathering = Some(done.max(self.gathering.unwrap_or(done)));
        }
    }

    /// When the round of an item at `t` ends (`t` itself when none is known): its outputs
    /// leave then. `taken`: the item is taken at `t` (a round ending at `t` is not its own, it
    /// begins the next); else it completes at `t` (a round ending at `t` is its own). Instants
    /// asked about never go back.
    pub fn end_of(&mut self, t: SimTime, taken: bool) -> SimTime {
        self.roll(t, taken);
        self.begun.front().copied().filter(|&e| e >= t).unwrap_or(t)
    }

    /// Forgets the rounds over before `t` (by `t` with `over_at_t`), and begins the gathering
    /// one once the last begun round ended by `t`.
    fn roll(&mut self, t: SimTime, over_at_t: bool) {
        loop {
            while (self.begun.front()).is_some_and(|&e| e < t || (over_at_t && e == t)) {
                self.begun.pop_front();
            }
            let last_over = self.begun.back().is_none_or(|&e| e <= t);
            match (last_over, self.gathering) {
                (true, Some(g)) => {
                    self.begun.push_back(g);
                    self.gathering = None;
                    std::mem::swap(&mut self.reading, &mut self.reads);
                    self.reads.clear();
                }
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(us: u64) -> SimTime {
        SimTime::from_nanos(us * 1_000)
    }

    /// A core idle at 0 takes a frame (done at 10); frames at 2 and 5 join the next round
    /// (done at 15 and 20), which begins at 10; a frame at 12 joins the round after (done at
    /// 25). Each frame's outputs leave when its round ends.
    #[test]
    fn frames_coming_during_a_round_leave_together_at_the_end_of_the_next() {
        let mut r = Rounds::default();
        r.admit(at(0), at(10), true);
        r.admit(at(2), at(15), false);
        r.admit(at(5), at(20), false);
        assert_eq!(
            r.end_of(at(10), false),
            at(10),
            "the first round: the frame alone"
        );
        assert_eq!(
            r.end_of(at(10), true),
            at(20),
            "taken at 10: the first of the second round"
        );
        r.admit(at(12), at(25), false);
        assert_eq!(
            r.end_of(at(15), false),
            at(20),
            "the second round ends with its last"
        );
        assert_eq!(r.end_of(at(20), false), at(20));
        assert_eq!(
            r.end_of(at(25), false),
            at(25),
            "the third round: the frame of 12"
        );
        // Idle again: a frame at 40 begins a round of its own.
        r.admit(at(40), at(48), true);
        assert_eq!(r.end_of(at(41), true), at(48), "taken after its wake");
        assert_eq!(r.end_of(at(48), false), at(48));
    }

    /// A frame coming just as a round ends joins the round that begins then; one coming a
    /// moment later, when that round has begun, the round after.
    #[test]
    fn a_frame_at_a_rounds_end_joins_the_next() {
        let mut r = Rounds::default();
        r.admit(at(0), at(10), true);
        r.admit(at(10), at(14), false);
        r.admit(at(11), at(18), false);
        assert_eq!(r.end_of(at(14), false), at(14));
        assert_eq!(r.end_of(at(18), false), at(18));
    }
}
