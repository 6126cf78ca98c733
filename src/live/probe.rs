//! What one hop between two live tasks costs on this machine, measured rather than guessed:
//! records bounced between two tasks over a loopback connection of the live transport (the
//! same reader, writer, batching and inbox as every live link). `validate` models the
//! simulated copy's links with it, so that the model's network is the one live has.

use super::codec::Record;
use super::conn::{self, ConnOpts, ConnStats, Inbound};
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

/// Bounces a small record `rounds` times (after a few to warm up) and halves the round trips.
/// Each round starts `gap_ns` after the last began (at once if the round took longer): a
/// message of a run at 500 msg/s finds the tasks on its path parked and pays their wake-ups,
/// which back-to-back rounds would not see.
pub async fn loopback_hop(rounds: usize, gap_ns: u64) -> Result<Hop, LiveError> {
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
    let (echo_in_tx, mut echo_in) = mpsc::channel(64);
    let echo_tx = conn::spawn(server, conn::Cipher::Plain, 1, echo_in_tx, opts());
    let (in_tx, mut inbox) = mpsc::channel(64);
    let tx = conn::spawn(client, conn::Cipher::Plain, 2, in_tx, opts());
    let echo = tokio::spawn(async move {
        while let Some(m) = echo_in.recv().await {
            if let Inbound::Records(_, recs) = m {
                for r in recs {
                    if echo_tx.send(r).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
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
        let hop = rt.block_on(loopback_hop(300, 0)).unwrap();
        eprintln!("loopback hop: {hop:?}");
        assert_eq!(hop.round_trips, 300);
        assert!(hop.median_ns > 0 && hop.median_ns <= hop.p99_ns);
        assert!(
            hop.median_ns < 5_000_000,
            "a loopback hop under 5 ms: {hop:?}"
        );
    }
}
