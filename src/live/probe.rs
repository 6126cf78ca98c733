//! What one hop between two live tasks costs on this machine, measured rather than guessed:
//! records bounced between two tasks over a loopback connection of the live transport (the
//! same reader, writer, batching and inbox as every live link). `validate` models the
//! simulated copy's links with it, so that the model's network is the one live has.

use super::codec::Record;
use super::conn::{self, ConnOpts, ConnStats, Inbound};
use super::options::LiveOptions;
use super::LiveError;
use crate::nodes::Addr;
use crate::wire::{DeviceId, Frame};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One-way hop latency over loopback, from round trips.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hop {
    pub median_ns: u64,
    pub p99_ns: u64,
    pub round_trips: usize,
}

/// The loopback hops measured on this machine, on threads laid out as the live run's: back to
/// back between two tasks on the servers' threads (a frame from one server node to the next)
/// and spaced as the run's messages are between a task on the generator's threads and one on
/// the servers' (a device's frame: the first task on its path parked).
#[derive(Clone, Copy, Debug)]
pub struct Hops {
    pub warm: Hop,
    pub idle: Hop,
}

impl Hops {
    /// Both probes, the idle one's rounds `gap_ns` apart, on runtimes of `opts`'s threads
    /// (pinned as the run pins them). Each probe is a task of its runtime, as the live nodes
    /// and clients are: a `block_on` future would run on the calling thread instead.
    pub fn measure(gap_ns: u64, opts: &LiveOptions) -> Result<Hops, LiveError> {
        let (server_cores, generator_cores) = super::run::pinned_cores(opts);
        let servers = probe_runtime(opts.threads, server_cores)?;
        let generator = match opts.generator_threads {
            0 => None,
            n => Some(probe_runtime(n, generator_cores)?),
        };
        let on = |rt: &tokio::runtime::Runtime, gap_ns: u64, echo_on| {
            rt.block_on(rt.spawn(loopback_hop(500, gap_ns, echo_on)))
                .map_err(|e| LiveError::Invalid(format!("the loopback probe failed: {e}")))?
        };
        let warm = on(&servers, 0, None)?;
        // With no runtime of their own, the clients are the servers' threads' tasks too.
        let idle = match &generator {
            Some(g) => on(g, gap_ns, Some(servers.handle().clone()))?,
            None => on(&servers, gap_ns, None)?,
        };
        Ok(Hops { warm, idle })
    }
}

/// A runtime of `threads` workers, each pinned to one of `cores` in turn (none: unpinned).
fn probe_runtime(
    threads: usize,
    cores: Vec<core_affinity::CoreId>,
) -> Result<tokio::runtime::Runtime, LiveError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .on_thread_start(move || {
            if !cores.is_empty() {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                core_affinity::set_for_current(cores[i % cores.len()]);
            }
        })
        .build()
        .map_err(LiveError::io("tokio runtime"))
}

/// Bounces a small record `rounds` times (after a few to warm up) and halves the round trips.
/// Each round starts `gap_ns` after the last began (at once if the round took longer): a
/// message of a run at 500 msg/s finds the tasks on its path parked and pays their wake-ups,
/// which back-to-back rounds would not see. The echoing end's tasks run on `echo_on` (another
/// runtime's threads, as a server's are to a client's), or beside the caller's.
pub async fn loopback_hop(
    rounds: usize,
    gap_ns: u64,
    echo_on: Option<tokio::runtime::Handle>,
) -> Result<Hop, LiveError> {
    let rounds = rounds.max(1);
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(LiveError::io("bind the probe listener"))?;
    let at = l.local_addr().map_err(LiveError::io("local_addr"))?;
    let stats = Arc::new(ConnStats::default());
    let opts = || ConnOpts {
        inspector: None,
        stats: stats.clone(),
        permit: None,
    };
    let (client, accepted) = tokio::join!(TcpStream::connect(at), l.accept());
    let client = client.map_err(LiveError::io("probe connect"))?;
    let (server, _) = accepted.map_err(LiveError::io("probe accept"))?;
    let echo = spawn_echo(server, echo_on.as_ref(), opts())?;
    let (in_tx, mut inbox) = mpsc::channel(64);
    let tx = conn::spawn(client, conn::Cipher::Plain, 2, in_tx, opts());
    let ping = Record {
        from: Addr::Device(DeviceId(0)),
        to: Addr::ChatServer,
        frame: Frame::Connect {
            device: DeviceId(0),
            epoch: 1,
        },
    };
    let clock = super::clock::Clock::start();
    let warm = 50;
    let mut rtts = Vec::with_capacity(rounds);
    for i in 0..warm + rounds {
        let t0 = clock.now();
        tx.send(ping.clone())
            .await
            .map_err(|_| LiveError::Invalid("the probe connection closed".into()))?;
        loop {
            match inbox.recv().await {
                Some(Inbound::Records(..)) => break,
                Some(_) => continue,
                None => return Err(LiveError::Invalid("the probe connection closed".into())),
            }
        }
        if i >= warm {
            rtts.push(clock.now().since(t0));
        }
        let next = t0.plus(gap_ns);
        if clock.now() < next {
            tokio::time::sleep_until(clock.instant(next)).await;
        }
    }
    drop(tx);
    echo.abort();
    rtts.sort_unstable();
    let at = |q: f64| rtts[((rtts.len() - 1) as f64 * q) as usize] / 2;
    Ok(Hop {
        median_ns: at(0.5),
        p99_ns: at(0.99),
        round_trips: rtts.len(),
    })
}

/// The echoing end: its connection's tasks and the task that sends every record back, on
/// `on`'s runtime (its socket registered with that runtime's reactor, as a server node's
/// connection is with the servers') or the caller's.
fn spawn_echo(
    server: TcpStream,
    on: Option<&tokio::runtime::Handle>,
    opts: ConnOpts,
) -> Result<tokio::task::JoinHandle<()>, LiveError> {
    let _entered = on.map(|h| h.enter());
    let server = match on {
        None => server,
        Some(_) => {
            let std = (server.into_std()).map_err(LiveError::io("probe socket"))?;
            TcpStream::from_std(std).map_err(LiveError::io("probe socket"))?
        }
    };
    let (echo_in_tx, mut echo_in) = mpsc::channel(64);
    let echo_tx = conn::spawn(server, conn::Cipher::Plain, 1, echo_in_tx, opts);
    Ok(tokio::spawn(async move {
        while let Some(m) = echo_in.recv().await {
            if let Inbound::Records(_, recs) = m {
                for r in recs {
                    if echo_tx.send(r).await.is_err() {
                        return;
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_hop_takes_microseconds_not_milliseconds() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let hop = rt.block_on(loopback_hop(300, 0, None)).unwrap();
        eprintln!("loopback hop: {hop:?}");
        assert_eq!(hop.round_trips, 300);
        assert!(hop.median_ns > 0 && hop.median_ns <= hop.p99_ns);
        assert!(
            hop.median_ns < 5_000_000,
            "a loopback hop under 5 ms: {hop:?}"
        );
    }
}
