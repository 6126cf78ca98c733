//! Engine throughput: events per second of the run loop under the classic "hold" model, for the
//! wheel (`EventQueue`) and the binary heap it replaced (`HeapQueue`), with 1 k and 10 M events
//! pending. See benches/README.md.
//!
//! Each event, when handled, schedules exactly one new event at `now + delay`, the delay read
//! from a precomputed table of exponential draws (mean 1 ms), so the pending count stays
//! constant and the measured cost is one pop, one push and the loop's own bookkeeping (bound
//! checks, fingerprint). A queue is built and warmed up once per benchmark, lazily, so that a
//! filtered run does not pay for the 10 M setups it skips; each iteration then advances the same
//! queue by `BATCH` events.

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use interop_sim::engine::{
    run, EventQueue, HeapQueue, Limits, PendingEvents, RngTree, Scheduler, SimTime, World,
};
use rand::Rng;
use std::hint::black_box;
use std::time::Duration;

/// Events processed per measured iteration.
const BATCH: u64 = 20_000;
/// Entries in the delay table (a power of two, indexed with a mask).
const DELAYS_LEN: usize = 1 << 14;
const DELAY_MEAN_NS: f64 = 1_000_000.0;

/// Exponential delays, drawn once from the seeded ChaCha stream (no draw cost in the loop).
fn delay_table() -> Vec<u64> {
    let mut rng = RngTree::new(7).stream("bench/engine/delays", 0);
    (0..DELAYS_LEN)
        .map(|_| {
            // 53 random bits in (0, 1]: never ln(0).
            let u = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
            (-DELAY_MEAN_NS * libm::log(u)) as u64
        })
        .collect()
}

/// The hold model: every event reschedules itself after the next delay of the table.
struct Hold {
    delays_ns: Vec<u64>,
    next: usize,
}

impl World for Hold {
    type Event = u64;
    #[inline]
    fn handle(&mut self, _now: SimTime, id: u64, sched: &mut Scheduler<'_, u64>) {
        let delay_ns = self.delays_ns[self.next & (DELAYS_LEN - 1)];
        self.next = self.next.wrapping_add(1);
        sched.after(delay_ns, id);
    }
    #[inline]
    fn fingerprint_word(&self, id: &u64) -> u64 {
        *id
    }
}

const NO_TIME_MAX: SimTime = SimTime::MAX;

/// A world and a queue holding `pending` events, run through `2 * pending` (at least 100 k)
/// events so that the times are spread as in the steady state, not all within one delay of 0.
fn warmed_up<Q: PendingEvents<u64>>(mut queue: Q, pending: usize) -> (Hold, Q) {
    let mut world = Hold {
        delays_ns: delay_table(),
        next: 0,
    };
    for id in 0..pending as u64 {
        queue.push(
            SimTime::from_nanos(world.delays_ns[id as usize % DELAYS_LEN]),
            id,
        );
        world.next += 1;
    }
    let warm_up_events = (2 * pending as u64).max(100_000);
    run(
        &mut world,
        &mut queue,
        Limits {
            events_max: warm_up_events,
            time_max: NO_TIME_MAX,
        },
    );
    assert_eq!(queue.len(), pending);
    (world, queue)
}

/// Benchmarks the run loop on one queue kind; `make` builds the empty queue.
fn bench_run_loop<Q: PendingEvents<u64>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pending: usize,
    make: impl Fn() -> Q,
) {
    let mut state: Option<(Hold, Q)> = None;
    group.bench_function(BenchmarkId::new(name, pending), |b| {
        let (world, queue) = state.get_or_insert_with(|| warmed_up(make(), pending));
        let limits = Limits {
            events_max: BATCH,
            time_max: NO_TIME_MAX,
        };
        b.iter(|| black_box(run(world, queue, limits).fingerprint));
    });
}

/// Benchmarks pop + push alone (static dispatch, no loop bookkeeping): the queue's own share.
fn bench_queue_only<Q: PendingEvents<u64>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pending: usize,
    make: impl Fn() -> Q,
) {
    let mut state: Option<(Hold, Q)> = None;
    group.bench_function(BenchmarkId::new(name, pending), |b| {
        let (world, queue) = state.get_or_insert_with(|| warmed_up(make(), pending));
        b.iter(|| {
            for _ in 0..BATCH {
                let (now, id) = queue.pop().expect("hold keeps the queue non-empty");
                let delay_ns = world.delays_ns[world.next & (DELAYS_LEN - 1)];
                world.next = world.next.wrapping_add(1);
                queue.push(now.plus(delay_ns), black_box(id));
            }
        });
    });
}

fn engine(c: &mut Criterion) {
    for pending in [1_000, 10_000_000] {
        let mut group = c.benchmark_group("run_loop_hold");
        group
            .throughput(Throughput::Elements(BATCH))
            .sampling_mode(SamplingMode::Flat);
        bench_run_loop(&mut group, "EventQueue", pending, || {
            EventQueue::with_capacity(pending + 1)
        });
        bench_run_loop(&mut group, "HeapQueue", pending, || {
            HeapQueue::with_capacity(pending + 1)
        });
        group.finish();

        let mut group = c.benchmark_group("queue_only_hold");
        group
            .throughput(Throughput::Elements(BATCH))
            .sampling_mode(SamplingMode::Flat);
        bench_queue_only(&mut group, "EventQueue", pending, || {
            EventQueue::with_capacity(pending + 1)
        });
        bench_queue_only(&mut group, "HeapQueue", pending, || {
            HeapQueue::with_capacity(pending + 1)
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // Short by default (two shared cores); the command line overrides these.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = engine
}
criterion_main!(benches);
