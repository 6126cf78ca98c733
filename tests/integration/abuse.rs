//! A live server under abuse on loopback (issue 24): a `serve` process meets garbage on every
//! port, truncated handshakes, oversize length prefixes, 2,000 idle connections on the chat
//! port and 2,000 on the gateway port, connections past its limit, 10,000 connect/close cycles
//! and replayed frames of another load run, while two load runs go through it. It stays up,
//! its peak memory stays under 200 MB and falls back when connections close, it counts every
//! kind of abuse in its log, and both load runs lose nothing and show nothing twice. Bounded:
//! about 20 s.
#![allow(clippy::disallowed_methods)] // a real server on real sockets: wall-clock waits

use interop_sim::live::codec::{self, Record};
use interop_sim::live::session::RunId;
use interop_sim::live::topology::Layout;
use interop_sim::live::{run_live, LiveOptions};
use interop_sim::nodes::Addr;
use interop_sim::scenario;
use interop_sim::wire::{CopyId, DeviceId, Frame, MsgId, UserId};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Peak resident memory the server may reach through all of it.
const PEAK_RSS_MAX_KIB: u64 = 200 * 1024;
const IDLE_CONNECTIONS: usize = 2_000;
const IDLE_TIMEOUT_S: u64 = 12;

/// The `serve` child: its stdout lines as they come, killed when dropped.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(base: SocketAddr) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_interop-sim"))
            .args([
                "serve",
                "scenarios/live-bench.toml",
                "--role",
                "all",
                "--listen",
            ])
            .arg(base.to_string())
            .args(["--idle-timeout", &IDLE_TIMEOUT_S.to_string()])
            .args(["--max-connections", "2100", "--log", "--for", "120"])
            .current_dir(crate::root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let out = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Server { child, lines }
    }

    /// Whether the lines satisfy `f` within `within`.
    fn wait_until(&self, within: Duration, f: impl Fn(&[String]) -> bool) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if f(&self.lines.lock().unwrap()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Waits until the lines satisfy `f`.
    fn wait_for(&self, what: &str, within: Duration, f: impl Fn(&[String]) -> bool) {
        if self.wait_until(within, f) {
            return;
        }
        panic!(
            "serve: no {what} within {within:?}; its output:\n{}",
            self.lines.lock().unwrap().join("\n")
        );
    }

    fn totals(&self) -> BTreeMap<String, u64> {
        totals(&self.lines.lock().unwrap())
    }

    fn status_kib(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server is running");
        s.lines()
            .find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .expect("VmRSS and VmHWM in /proc/PID/status")
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The running total of each kind of abuse in `serve --log` lines
/// (`serve:  12.0 s  garbage 3 (total 5)`).
fn totals(lines: &[String]) -> BTreeMap<String, u64> {
    let mut t = BTreeMap::new();
    for l in lines {
        let Some((head, total)) = l.rsplit_once("(total ") else {
            continue;
        };
        let kind = head
            .split_whitespace()
            .rev()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let n: u64 = total.trim_end_matches(')').parse().unwrap_or(0);
        let e = t.entry(kind).or_insert(0);
        *e = n.max(*e);
    }
    t
}

fn connect(at: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(at).expect("loopback connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Whether the server closed `s` (reads end) within its read timeout.
fn closed_by_server(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // keepalives
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// One plaintext transport message holding `recs`.
fn transport(recs: &[Record]) -> Vec<u8> {
    let mut body = Vec::new();
    for r in recs {
        codec::encode(r, &mut body);
    }
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn load_run(s: &scenario::Scenario, base: SocketAddr) -> interop_sim::live::LiveOutcome {
    let opts = LiveOptions {
        rate_per_s: Some(1_000.0),
        duration_ns: Some(1_000_000_000),
        drain_max_ns: 3_000_000_000,
        remote: Some(interop_sim::live::options::Remote {
            layout: Layout { base },
            k: 0,
            n: 1,
        }),
        ..LiveOptions::default()
    };
    let o = run_live(s, "test", &opts).expect("the load run starts");
    let c = &o.result.summary.counters;
    assert_eq!((c.lost, c.duplicates), (0, 0), "{c:?}");
    assert!(
        c.sent > 900 && c.delivered + c.unreachable == c.sent,
        "{c:?}"
    );
    o
}

#[test]
fn a_live_server_under_abuse_stays_up_bounded_counts_it_and_loses_nothing() {
    let started = Instant::now();
    let mut s = scenario::parse(
        include_str!("../../scenarios/live-bench.toml"),
        "live-bench.toml",
    )
    .expect("valid");
    // Text only: the memory checks below measure what connections hold, and blobs a load run
    // stores stay in the server's media stores (bounded, oldest out) across the checks.
    s.workload.content = [1.0, 0.0, 0.0, 0.0, 0.0];
    let base = crate::free_base(8);
    let mut server = Server::start(base);
    server.wait_for("listeners", Duration::from_secs(20), |l| {
        l.iter().any(|x| x.starts_with("serving"))
    });
    let ports: Vec<SocketAddr> = server
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.rsplit_once(" on ")?.1.parse().ok())
        .collect();
    let layout = Layout { base };
    let (chat, gateway) = (
        layout.addr_of(Addr::ChatServer),
        layout.addr_of(Addr::Gateway),
    );
    assert!(
        ports.contains(&chat) && ports.contains(&gateway),
        "{ports:?}"
    );

    // Garbage on every port (4 KiB of seeded noise), oversize and truncated prefixes.
    let mut noise = vec![0u8; 4096];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut must_close = Vec::new();
    for at in &ports {
        let mut c = connect(*at);
        c.write_all(&noise).unwrap();
        must_close.push(c);
    }
    let sends: [(SocketAddr, &[u8]); 5] = [
        (chat, &[0xFF, 0xFF, 0xFF, 0xFF]), // a 65,535-byte message: over the bound
        (chat, &[0x00, 0x04, 0xFF, 0xFF, 0xFF, 0xFF]), // a 4 GiB record inside a message
        (chat, &[0xFF; 102]),              // announces 65,535, sends 100
        (gateway, &[0xFF; 102]),           // a 65,535-byte handshake message
        (gateway, &[0x00, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), // a truncated handshake
    ];
    for (at, bytes) in sends {
        let mut c = connect(at);
        c.write_all(bytes).unwrap();
        must_close.push(c);
    }
    let closer = std::thread::spawn(move || must_close.into_iter().all(closed_by_server));

    // 2,000 idle connections on the chat port and 2,000 on the gateway port, and a normal
    // load run while they sit there.
    let rss_before = server.status_kib("VmRSS:");
    let idle: Vec<TcpStream> = (0..IDLE_CONNECTIONS)
        .flat_map(|_| [connect(chat), connect(gateway)])
        .collect();
    let opened_idle = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle = server.status_kib("VmRSS:");

    // Past the listener's limit (2,100): 50 or more of these (or of the idle ones, if the
    // server had not accepted them all yet) are closed at once, and counted.
    let extra: Vec<TcpStream> = (0..150).map(|_| connect(chat)).collect();
    std::thread::sleep(Duration::from_millis(300));
    drop(extra);

    let first = load_run(&s, base);
    assert!(
        opened_idle.elapsed() < Duration::from_secs(IDLE_TIMEOUT_S),
        "the load run finished while the idle connections were still open"
    );

    // 10,000 connect/close cycles.
    for _ in 0..10_000 {
        drop(TcpStream::connect(chat).expect("connect"));
    }

    // Replays of another run's frames: on a connection of an earlier run, and a message id of
    // an earlier run on a connection of the current one.
    let (old, current) = (RunId(1), RunId(first.report.run_id));
    let d = DeviceId(0);
    let hello = |run| codec::hello(Addr::Device(codec::HELLO_DEVICE), Addr::ChatServer, run);
    let connect_frame = Record {
        from: Addr::Device(d),
        to: Addr::ChatServer,
        frame: Frame::Connect {
            device: d,
            epoch: 9,
        },
    };
    let stale_ack = Record {
        from: Addr::Device(d),
        to: Addr::ChatServer,
        frame: Frame::DeliverAck {
            copy: CopyId::direct(old.tag(MsgId(3))),
            device: d,
            from_user: UserId(1),
            to_user: UserId(0),
        },
    };
    // The cycles above may still hold the listener at its limit (the server notices a close
    // when it next reads), so a replay may be refused instead of read: send both again until
    // the server's log has counted two.
    let replays = [
        transport(&[hello(old), connect_frame]),
        transport(&[hello(current), stale_ack]),
    ];
    let mut replayed = Vec::new();
    let counted = (0..5).any(|_| {
        for bytes in &replays {
            let mut c = connect(chat);
            c.write_all(bytes).unwrap();
            replayed.push(c);
        }
        server.wait_until(Duration::from_millis(2_500), |lines| {
            totals(lines).get("stale_run_frames").copied().unwrap_or(0) >= 2
        })
    });
    assert!(
        counted,
        "the server counted both replays: {:?}",
        server.totals()
    );

    // The server closes what it must, and times the idle connections out.
    assert!(
        closer.join().unwrap(),
        "every abusive connection was closed"
    );
    let idle_until = opened_idle + Duration::from_secs(IDLE_TIMEOUT_S + 3);
    server.wait_for(
        "idle and handshake timeouts",
        idle_until.saturating_duration_since(Instant::now()) + Duration::from_secs(5),
        |lines| {
            let t = totals(lines);
            t.get("idle_timeouts").copied().unwrap_or(0) >= IDLE_CONNECTIONS as u64
                && t.get("handshake_timeouts").copied().unwrap_or(0) >= IDLE_CONNECTIONS as u64
        },
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = server.status_kib("VmRSS:");

    // A normal load run after all of it.
    let second = load_run(&s, base);
    assert!(second.report.run_id > first.report.run_id);

    // Memory returns when connections close: 2,000 more on each port, each with a byte sent
    // (its read buffer allocated), then closed by their clients.
    let rss_settled = server.status_kib("VmRSS:");
    let busy: Vec<TcpStream> = (0..IDLE_CONNECTIONS)
        .flat_map(|_| [connect(chat), connect(gateway)])
        .map(|mut c| {
            c.write_all(&[0]).unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let rss_busy = server.status_kib("VmRSS:");
    drop(busy);
    let returned_to = rss_settled + (rss_busy.saturating_sub(rss_settled)) / 4;
    let closed = Instant::now();
    let mut rss_closed = rss_busy;
    while closed.elapsed() < Duration::from_secs(5) && rss_closed > returned_to {
        std::thread::sleep(Duration::from_millis(100));
        rss_closed = server.status_kib("VmRSS:");
    }
    let took = closed.elapsed();
    assert!(
        rss_closed <= returned_to,
        "memory returned after connections closed: {rss_settled} KiB before, {rss_busy} KiB with {} connections, {rss_closed} KiB 5 s after they closed",
        2 * IDLE_CONNECTIONS
    );

    std::thread::sleep(Duration::from_millis(1_200)); // one more log line
    assert!(server.alive(), "the server stayed up");
    let peak = server.status_kib("VmHWM:");
    let t = server.totals();
    for kind in [
        "refused_connections",
        "handshakes_failed",
        "handshake_timeouts",
        "oversize_frames",
        "garbage",
        "idle_timeouts",
        "stale_run_frames",
    ] {
        assert!(
            t.get(kind).copied().unwrap_or(0) > 0,
            "{kind} counted: {t:?}; serve said:\n{}",
            server.lines.lock().unwrap().join("\n")
        );
    }
    assert!(t["stale_run_frames"] >= 2, "both replays refused: {t:?}");
    assert!(
        peak <= PEAK_RSS_MAX_KIB,
        "server peak RSS {peak} KiB (idle connections open: {rss_idle} KiB, after: {rss_after} KiB)"
    );
    eprintln!(
        "abuse test: server RSS before {rss_before} KiB, with {} idle connections {rss_idle} KiB, after they closed {rss_after} KiB; before the return check {rss_settled} KiB, with its connections {rss_busy} KiB, {rss_closed} KiB {:.1} s after they closed; peak {peak} KiB; {t:?}; {:.1} s",
        2 * IDLE_CONNECTIONS,
        took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded in time"
    );
}
