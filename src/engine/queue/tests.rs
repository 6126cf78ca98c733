//! Unit and property tests of [`EventQueue`], with [`HeapQueue`] as the oracle.

use super::*;
use proptest::prelude::*;

fn t(ns: u64) -> SimTime {
    SimTime::from_nanos(ns)
}

fn drain<E>(q: &mut EventQueue<E>) -> Vec<(u64, E)> {
    std::iter::from_fn(|| q.pop().map(|(at, e)| (at.as_nanos(), e))).collect()
}

#[test]
fn empty_queue_pops_nothing() {
    let mut q = EventQueue::<u32>::new();
    assert!(q.is_empty());
    assert_eq!(q.len(), 0);
    assert_eq!(q.peek_time(), None);
    assert_eq!(q.pop(), None);
    q.push(t(5), 1);
    assert_eq!(q.pop(), Some((t(5), 1)));
    assert_eq!(q.pop(), None);
    assert!(q.is_empty());
}

#[test]
fn pops_in_time_order() {
    let mut q = EventQueue::new();
    for (i, ns) in [900, 3, 1 << 40, 64, 63, 65, 0, u64::MAX, 4096]
        .into_iter()
        .enumerate()
    {
        q.push(t(ns), i);
    }
    assert_eq!(q.len(), 9);
    let times: Vec<u64> = drain(&mut q).into_iter().map(|(ns, _)| ns).collect();
    assert_eq!(times, [0, 3, 63, 64, 65, 900, 4096, 1 << 40, u64::MAX]);
}

#[test]
fn equal_times_pop_in_insertion_order() {
    let mut q = EventQueue::new();
    // Interleave two instants on different levels so that both cascade before popping.
    for i in 0..10 {
        q.push(t(1_000_000), i);
        q.push(t(70), 100 + i);
    }
    let got = drain(&mut q);
    let want: Vec<(u64, i32)> = (0..10)
        .map(|i| (70, 100 + i))
        .chain((0..10).map(|i| (1_000_000, i)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn equal_times_pushed_across_pops_stay_fifo() {
    // `a` is pushed while `now` is far below 5000 (an upper level); `b` and `c` after `now` has
    // moved close (a lower level). They must still pop a, b, c.
    let mut q = EventQueue::new();
    q.push(t(5_000), 'a');
    q.push(t(4_990), 'x');
    assert_eq!(q.pop(), Some((t(4_990), 'x')));
    q.push(t(5_000), 'b');
    q.push(t(4_995), 'y');
    q.push(t(5_000), 'c');
    assert_eq!(
        drain(&mut q),
        [(4_995, 'y'), (5_000, 'a'), (5_000, 'b'), (5_000, 'c')]
    );
}

#[test]
fn push_at_exactly_last_popped_time_is_allowed() {
    let mut q = EventQueue::new();
    q.push(t(10), 1);
    q.push(t(20), 2);
    assert_eq!(q.pop(), Some((t(10), 1)));
    q.push(t(10), 3);
    assert_eq!(q.peek_time(), Some(t(10)));
    assert_eq!(q.pop(), Some((t(10), 3)));
    assert_eq!(q.pop(), Some((t(20), 2)));
}

#[test]
#[should_panic(expected = "event scheduled in the past")]
fn push_in_the_past_panics() {
    let mut q = EventQueue::new();
    q.push(t(10), ());
    q.pop();
    q.push(t(9), ());
}

#[test]
#[should_panic(expected = "event scheduled in the past")]
fn heap_queue_push_in_the_past_panics() {
    let mut q = HeapQueue::new();
    q.push(t(10), ());
    q.pop();
    q.push(t(9), ());
}

#[test]
fn interleaved_push_and_pop() {
    let mut q = EventQueue::new();
    q.push(t(100), 0);
    q.push(t(50), 1);
    assert_eq!(q.pop(), Some((t(50), 1)));
    q.push(t(75), 2);
    q.push(t(50), 3);
    q.push(t(1 << 33), 4);
    assert_eq!(q.peek_time(), Some(t(50)));
    assert_eq!(q.pop(), Some((t(50), 3)));
    assert_eq!(q.pop(), Some((t(75), 2)));
    q.push(t(99), 5);
    assert_eq!(q.len(), 3);
    assert_eq!(drain(&mut q), [(99, 5), (100, 0), (1 << 33, 4)]);
}

#[test]
fn extreme_times() {
    let mut q = EventQueue::new();
    q.push(SimTime::MAX, 1);
    q.push(SimTime::MAX, 2);
    q.push(SimTime::ZERO, 0);
    assert_eq!(q.pop(), Some((SimTime::ZERO, 0)));
    assert_eq!(q.peek_time(), Some(SimTime::MAX));
    assert_eq!(q.pop(), Some((SimTime::MAX, 1)));
    q.push(SimTime::MAX, 3);
    assert_eq!(drain(&mut q), [(u64::MAX, 2), (u64::MAX, 3)]);
}

/// A deterministic stream of delays for the larger tests below (SplitMix64).
fn delays_ns(seed: u64, max_ns: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % max_ns
    }
}

/// Pops `q` empty, checking each event against the reference heap.
fn drains_like(q: &mut EventQueue<u64>, reference: &mut HeapQueue<u64>) {
    while let Some(popped) = reference.pop() {
        assert_eq!(q.pop(), Some(popped));
    }
    assert!(q.is_empty());
}

#[test]
fn matches_heap_queue_when_slots_overflow_their_first_block() {
    // Thousands of events per slot and per instant: every slot spills into pooled blocks, and
    // equal times span several blocks.
    let mut q = EventQueue::new();
    let mut reference = HeapQueue::new();
    let mut delay = delays_ns(1, 1 << 20);
    let mut now = SimTime::ZERO;
    for seq in 0..60_000u64 {
        let at = match seq % 3 {
            0 => now.plus(1 << 19), // one far instant shared by many events
            1 => now,
            _ => now.plus(delay()),
        };
        q.push(at, seq);
        reference.push(at, seq);
        if seq % 4 == 3 {
            let popped = q.pop();
            assert_eq!(popped, reference.pop());
            now = popped.expect("non-empty").0;
        }
    }
    drains_like(&mut q, &mut reference);
}

#[test]
fn matches_heap_queue_when_pushes_land_inside_the_run() {
    // A small slot becomes the run; then many pushes fall between the last popped time and
    // the run's last event, in no order and with repeats, until the run grows past its cap
    // and goes back into the wheel, and again on later slots.
    let mut q = EventQueue::new();
    let mut reference = HeapQueue::new();
    let mut jitter = delays_ns(7, 64);
    let mut seq = 0u64;
    let mut push = |q: &mut EventQueue<u64>, r: &mut HeapQueue<u64>, at: SimTime| {
        q.push(at, seq);
        r.push(at, seq);
        seq += 1;
    };
    let mut now = SimTime::ZERO;
    for round in 0..20u64 {
        let base = now.plus(10_000 + round * 7);
        for i in 0..10 {
            push(&mut q, &mut reference, base.plus(i * 3));
        }
        let popped = q.pop();
        assert_eq!(popped, reference.pop());
        now = popped.expect("non-empty").0;
        for i in 0..(100 + 40 * round) {
            push(&mut q, &mut reference, now.plus(jitter() % 28));
            if i % 7 == 0 {
                let popped = q.pop();
                assert_eq!(popped, reference.pop());
                now = popped.expect("non-empty").0;
            }
        }
    }
    drains_like(&mut q, &mut reference);
}

#[test]
fn steady_state_allocates_no_new_blocks() {
    // The hold model: each pop pushes one event, so the pending count stays at 50 000.
    let mut q = EventQueue::new();
    let mut delay = delays_ns(2, 2_000_000);
    for id in 0..50_000u64 {
        q.push(SimTime::from_nanos(delay()), id);
    }
    let mut hold = |q: &mut EventQueue<u64>, events: u32| {
        for _ in 0..events {
            let (now, id) = q.pop().expect("hold keeps events pending");
            q.push(now.plus(delay()), id);
        }
    };
    // The high-water mark creeps up for a while (slot occupancy varies with the phase of `now`
    // against the digit boundaries; measured: 46 blocks after 0.5 M events, 48 from 1 M on).
    hold(&mut q, 2_000_000);
    let high_water = q.pool.blocks_allocated();
    hold(&mut q, 3_000_000);
    assert_eq!(q.pool.blocks_allocated(), high_water);
    // And it is about the pending events' worth, not a multiple of it.
    assert!(
        high_water * blocks::block_len::<Timed<u64>>() < 2 * 50_000,
        "{high_water} blocks"
    );
    assert_eq!(q.len(), 50_000);
}

/// One step of a random schedule: push at `last popped + delay`, or pop.
#[derive(Clone, Debug)]
enum Op {
    Push(u64),
    Pop,
}

/// Delays of every magnitude, with many ties: 0 (same instant), within one digit, across a
/// few digits, and anywhere in `u64` (saturating at `SimTime::MAX`).
fn delay_ns() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => Just(0u64),
        3 => 0u64..64,
        3 => 0u64..5_000,
        2 => 0u64..(1 << 24),
        1 => (0u32..64).prop_flat_map(|bits| 0u64..=(u64::MAX >> bits)),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![3 => delay_ns().prop_map(Op::Push), 2 => Just(Op::Pop)],
        0..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any schedule gives exactly the sequence of the reference heap, and pops come out in
    /// (time, insertion sequence) order (the payload is the insertion sequence number).
    #[test]
    fn matches_heap_queue_and_pops_in_time_seq_order(ops in ops()) {
        let mut q = EventQueue::new();
        let mut reference = HeapQueue::new();
        let mut now = SimTime::ZERO;
        let mut seq = 0u64;
        let mut last: Option<(SimTime, u64)> = None;
        let mut step = |q: &mut EventQueue<u64>, reference: &mut HeapQueue<u64>, op: Op| {
            match op {
                Op::Push(delay) => {
                    q.push(now.plus(delay), seq);
                    reference.push(now.plus(delay), seq);
                    seq += 1;
                }
                Op::Pop => {
                    // The prefetch hint, when given, names exactly the event that pops next.
                    let hinted = PendingEvents::peek_next(q).copied();
                    let got = q.pop();
                    if let Some(h) = hinted {
                        prop_assert_eq!(Some(h), got.map(|(_, e)| e));
                    }
                    prop_assert_eq!(got, reference.pop());
                    if let Some(popped) = got {
                        let in_order = last.is_none_or(|l| l < popped);
                        prop_assert!(in_order, "{:?} after {:?}", popped, last);
                        last = Some(popped);
                        now = popped.0;
                    }
                }
            }
            prop_assert_eq!(q.len(), reference.len());
            prop_assert_eq!(q.peek_time(), reference.peek_time());
            Ok(())
        };
        for op in ops {
            step(&mut q, &mut reference, op)?;
        }
        while !reference.is_empty() {
            step(&mut q, &mut reference, Op::Pop)?;
        }
        prop_assert!(q.is_empty());
    }
}
