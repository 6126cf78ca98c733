//! Watching a run without changing it: the `--trace` log, the metadata-isolation tap, the
//! `work` counters, the time series sampled every interval, and at the end the summary with
//! the checker's verdicts. What is gathered along the way is this file's part, [`Observer`].

use super::{Event, RunResult, Sim};
use crate::engine::{self, Scheduler, SimTime};
use crate::metrics::checker::{self, FaultWindow};
use crate::metrics::summary::{RunFacts, Utilization};
use crate::metrics::{IntervalLatency, LedgerEvent, Sample, Summary, TimeSeries};
use crate::nodes::mailbox::Sends;
use crate::nodes::Addr;
use crate::scenario::{Endpoint, FaultKind, HopClass};
use crate::sim::cpu::Cpu;
use crate::sim::media::MediaWorld;
use crate::wire::{Ciphertext, Frame, MediaFrame, MsgId, UserId};
use std::collections::BTreeMap;

/// Which frames `--trace` logs: all of them, or those of one message.
#[derive(Clone, Copy, Debug)]
pub enum TraceFilter {
    All,
    Msg(MsgId),
}

impl TraceFilter {
    fn matches(&self, f: &Frame) -> bool {
        match self {
            TraceFilter::All => true,
            TraceFilter::Msg(m) => f.msg() == Some(*m),
        }
    }
    fn matches_ledger(&self, e: &LedgerEvent) -> bool {
        match self {
            TraceFilter::All => true,
            TraceFilter::Msg(m) => format!("{e:?}").contains(&format!("msg: MsgId({})", m.0)),
        }
    }
}

/// Counters bumped for every frame sent, kept out of the `work` map (a string-keyed lookup per
/// frame was a few percent of a run).
#[derive(Default)]
struct FrameCounts {
    bytes: [u64; 5],
    hop_used: [bool; 5],
    frames_sent: u64,
}

/// What a run gathers about itself as it goes.
pub(super) struct Observer {
    /// `--trace`: which frames to log, and the log (JSON lines).
    pub(super) trace: Option<TraceFilter>,
    trace_lines: Vec<String>,
    /// Whether to keep what the infrastructure nodes handle (`RunOptions::tap`), and the copies.
    pub(super) tap: bool,
    tapped: Vec<Vec<u8>>,
    series: TimeSeries,
    work: BTreeMap<&'static str, u64>,
    frame_counts: FrameCounts,
    /// Messages written in the current interval (the ledger counts what was delivered).
    pub(super) interval_sent: u64,
    pub(super) replay_rejected: u64,
    /// Who talks to whom, as each provider's servers see it (see `metadata`).
    pub(super) metadata: super::metadata::MetadataSeen,
}

impl Observer {
    pub(super) fn new(interval_ns: u64) -> Self {
        Observer {
            trace: None,
            trace_lines: Vec::new(),
            tap: false,
            tapped: Vec::new(),
            series: TimeSeries::new(interval_ns as f64 / 1e9),
            work: BTreeMap::new(),
            frame_counts: FrameCounts::default(),
            interval_sent: 0,
            replay_rejected: 0,
            metadata: Default::default(),
        }
    }

    pub(super) fn trace_frame(
        &mut self,
        now: SimTime,
        what: &str,
        from: Addr,
        to: Addr,
        frame: &Frame,
    ) {
        if self.trace.is_some_and(|t| t.matches(frame)) {
            let line = format!(
                "{{\"t_ns\":{},\"event\":\"{}\",\"from\":\"{:?}\",\"to\":\"{:?}\",\"frame\":{:?}}}",
                now.as_nanos(),
                what,
                from,
                to,
                format!("{frame:?}")
            );
            self.trace_lines.push(line);
        }
    }

    pub(super) fn trace_ledger(&mut self, now: SimTime, ev: &LedgerEvent) {
        if let Some(t) = &self.trace {
            if t.matches_ledger(ev) {
                self.trace_lines.push(format!(
                    "{{\"t_ns\":{},\"ledger\":\"{:?}\"}}",
                    now.as_nanos(),
                    ev
                ));
            }
        }
    }

    /// With the tap on, keeps a copy of a frame an infrastructure node handles (for an upload,
    /// with the first bytes of the blob it stores).
    pub(super) fn tap(&mut self, to: Addr, frame: &Frame, media: &MediaWorld) {
        if self.tap
            && matches!(
                to,
                Addr::Gateway
                    | Addr::Adapter(_)
                    | Addr::PartnerServer(_)
                    | Addr::MediaStore(_)
                    | Addr::MediaProxy
            )
        {
            let mut tapped = tap_bytes(frame);
            if let Frame::Media(MediaFrame::Upload { blob, .. }) = *frame {
                tapped.extend_from_slice(media.tap_blob(blob).unwrap_or(&[]));
            }
            self.tapped.push(tapped);
        }
    }

    pub(super) fn count(&mut self, key: &'static str, n: u64) {
        *self.work.entry(key).or_insert(0) += n;
    }

    /// Every frame: plain adds here, folded into `work` at the end (`flush_frame_counts`).
    pub(super) fn count_frame(&mut self, hop: HopClass, bytes: u32) {
        self.frame_counts.bytes[hop.index()] += bytes as u64;
        self.frame_counts.hop_used[hop.index()] = true;
        self.frame_counts.frames_sent += 1;
    }

    /// Folds the per-frame counters into `work`, as if each frame had been counted there.
    fn flush_frame_counts(&mut self) {
        let c = std::mem::take(&mut self.frame_counts);
        for hop in HopClass::EVERY {
            if c.hop_used[hop.index()] {
                let key = match hop {
                    HopClass::ClientServer => "bytes_client_server",
                    HopClass::ServerGateway => "bytes_server_gateway",
                    HopClass::GatewayPartner => "bytes_gateway_partner",
                    HopClass::AdapterServer => "bytes_adapter_server",
                    HopClass::ProviderProvider => "bytes_provider_provider",
                };
                self.count(key, c.bytes[hop.index()]);
            }
        }
        if c.frames_sent > 0 {
            self.count("frames_sent", c.frames_sent);
        }
    }
}

/// The ledger's ids of the copies a submission carries: one per member of a group message,
/// else the one copy.
fn submission_copies(
    sub: &crate::wire::Submission,
) -> impl Iterator<Item = crate::wire::MsgId> + '_ {
    use crate::wire::{CopyId, Payload};
    let members = match &sub.payload {
        Payload::Group(g) => g.members.len() as u32,
        Payload::Direct(_) | Payload::Resend(_) => 0,
    };
    let one = (members == 0).then(|| sub.copy_id().ledger_id());
    let group = (0..members).map(move |k| {
        CopyId {
            msg: sub.msg,
            member: k,
        }
        .ledger_id()
    });
    one.into_iter().chain(group)
}

/// A frame as an infrastructure node sees it: its debug text and every ciphertext byte.
fn tap_bytes(frame: &Frame) -> Vec<u8> {
    let mut out = format!("{frame:?}").into_bytes();
    let ciphertexts: Vec<&Ciphertext> = match frame {
        Frame::Submit(s) => s.ciphertexts().collect(),
        Frame::Deliver(d) => d.ciphertexts().collect(),
        _ => Vec::new(),
    };
    for c in ciphertexts {
        out.extend_from_slice(c.bytes.as_deref().unwrap_or(&[]));
    }
    out
}

impl Sim {
    pub(super) fn sample(&mut self, now: SimTime, sched: &mut Scheduler<'_, Event>) {
        let interval = self.s.run.interval_ns;
        let offline_queue = self.nodes.chat.queued()
            + self
                .nodes
                .partner_servers
                .iter()
                .flatten()
                .map(|p| p.queued())
                .sum::<u64>();
        let adapters_util = {
            let n = self.servers.adapters.len().max(1);
            let mut acc = 0.0;
            for c in self.servers.adapters.iter_mut() {
                acc += c.take_interval_utilization();
            }
            acc / n as f64
        };
        for c in self.servers.partner_servers.iter_mut() {
            c.take_interval_utilization();
        }
        let row = Sample {
            t_s: now.as_secs_f64(),
            sent: std::mem::take(&mut self.obs.interval_sent),
            // The ledger fills these in (`LedgerFeed::sample`).
            messages_delivered: 0,
            device_deliveries: 0,
            in_flight: 0,
            offline_queue,
            gateway_queue: self.servers.gateway.in_system(),
            gateway_utilization: self.servers.gateway.take_interval_utilization(),
            chat_server_utilization: self.servers.chat.take_interval_utilization(),
            adapter_utilization: adapters_util,
            latency: IntervalLatency::default(),
        };
        self.obs.series.rows.push(row);
        self.ledger.sample();
        let next = now.plus(interval);
        if next.as_nanos() <= self.s.run.duration_ns + self.s.run.drain_ns {
            sched.at(next, Event::Sample);
        }
    }
    /// Every fault's window with a readable label, for the checker's evidence.
    fn fault_windows(&self) -> Vec<FaultWindow> {
        use crate::engine::time::format_duration_ns as d;
        let name = |e: &Endpoint| match e {
            Endpoint::Gateway => "gateway".to_string(),
            Endpoint::Provider(p) => self.s.providers[*p].name.clone(),
            Endpoint::Clients(p) => format!("{}-clients", self.s.providers[*p].name),
        };
        let pname = |p: &usize| self.s.providers[*p].name.clone();
        self.s
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let what = match &f.kind {
                    FaultKind::Partition { a, b, one_way } => {
                        format!(
                            "partition {} {} {}",
                            name(a),
                            if *one_way { "->" } else { "<->" },
                            name(b)
                        )
                    }
                    FaultKind::Crash { node, durable } => {
                        format!(
                            "crash {} ({})",
                            name(node),
                            if *durable { "durable" } else { "volatile" }
                        )
                    }
                    FaultKind::Slow { node, factor } => format!("slow {} x{factor}", name(node)),
                    FaultKind::Loss { link, rate } => format!("loss {} {rate}", link.key()),
                    FaultKind::Duplicate { link, rate } => {
                        format!("duplicate {} {rate}", link.key())
                    }
                    FaultKind::Reorder { link, rate } => format!("reorder {} {rate}", link.key()),
                    FaultKind::Tamper { link, rate } => format!("tamper {} {rate}", link.key()),
                    FaultKind::Replay { link, rate } => format!("replay {} {rate}", link.key()),
                    FaultKind::IdentityReset { provider, users } => {
                        format!("identity_reset {} {users}", pname(provider))
                    }
                    FaultKind::Toggle { provider, users } => {
                        format!("toggle {} {users}", pname(provider))
                    }
                    FaultKind::Surge { factor } => format!("surge x{factor}"),
                    FaultKind::ClockSkew {
                        node,
                        offset_ns,
                        behind,
                    } => {
                        format!(
                            "clock_skew {} {}{}",
                            name(node),
                            if *behind { "-" } else { "+" },
                            d(*offset_ns)
                        )
                    }
                    FaultKind::PushLoss { provider, rate } => {
                        format!("push_loss {} {rate}", pname(provider))
                    }
                    FaultKind::PrekeyDrain { provider, .. } => {
                        format!("prekey_drain {}", pname(provider))
                    }
                };
                let window = match f.end_ns() {
                    Some(end) => format!("{}..{}", d(f.at_ns), d(end)),
                    None => format!("{}..end", d(f.at_ns)),
                };
                // A reinstall is one instant: it has healed once it happened.
                let one_shot = matches!(f.kind, FaultKind::IdentityReset { .. });
                FaultWindow {
                    label: format!("fault[{i}] {what} at {window}"),
                    at_ns: f.at_ns,
                    end_ns: f.end_ns().or(one_shot.then_some(f.at_ns)),
                }
            })
            .collect()
    }

    /// Tells the ledger which messages still had a frame on its way when the drain ended (on
    /// a link, in a CPU queue, or held back by shaping): those were late, not lost. Once, at
    /// the end; the attacker's replayed copies are not the message's own.
    fn record_queued_at_end(&mut self, end: SimTime) {
        use crate::metrics::ledger::QueuedAt;
        use crate::wire::{Frame, MimiFrame};
        let mut queued = Vec::new();
        for f in self.net.frames.iter().filter(|f| !f.replay) {
            let at = match f.to {
                Addr::Gateway => QueuedAt::Gateway,
                Addr::ChatServer => QueuedAt::ChatServer,
                Addr::Adapter(_) => QueuedAt::Adapter,
                Addr::PartnerServer(_) => QueuedAt::PartnerServer,
                Addr::Device(_) => QueuedAt::Device,
                Addr::MediaStore(_) | Addr::MediaProxy => continue,
            };
            match &f.frame {
                Frame::Submit(sub)
                | Frame::Mimi(MimiFrame::Fanout {
                    submission: sub, ..
                }) => {
                    queued.extend(submission_copies(sub).map(|m| (m, at)));
                }
                Frame::Deliver(d) => queued.push((d.copy.ledger_id(), at)),
                _ => {}
            }
        }
        // Under MIMI: what the hubs are still handing to their followers.
        let chat = self.nodes.chat.mimi().map(|m| (m, QueuedAt::ChatServer));
        let partners = self.nodes.partner_servers.iter().flatten();
        let partners = partners.filter_map(|p| p.mimi().map(|m| (m, QueuedAt::PartnerServer)));
        for (endpoint, at) in chat.into_iter().chain(partners) {
            for sub in endpoint.unacked_submissions() {
                queued.extend(submission_copies(sub).map(|m| (m, at)));
            }
        }
        // Copies the servers' mailboxes still hold for their devices.
        let held = self
            .nodes
            .chat
            .queued_copies()
            .map(|c| (c, QueuedAt::ChatServer));
        let partners = self.nodes.partner_servers.iter().flatten();
        let held = held
            .chain(partners.flat_map(|p| p.queued_copies().map(|c| (c, QueuedAt::PartnerServer))));
        queued.extend(held.map(|(c, at)| (c.ledger_id(), at)));
        for (msg, at) in queued {
            self.ledger.apply(end, LedgerEvent::QueuedAtEnd { msg, at });
        }
    }

    /// The run's results. Takes what they need out of the simulation and leaves the rest of
    /// its state for the caller to drop.
    pub(super) fn finish(
        &mut self,
        outcome: engine::RunOutcome,
        scenario_hash: String,
    ) -> RunResult {
        self.record_queued_at_end(outcome.end_time);
        let kept = self.ledger.finish();
        for (row, take) in self.obs.series.rows.iter_mut().zip(kept.samples) {
            row.in_flight = take.in_flight;
            row.messages_delivered = take.deliveries.messages;
            row.device_deliveries = take.deliveries.devices;
            row.latency = take.latency;
        }
        let ledger = kept.ledger;
        let util = |c: &Cpu| Utilization {
            utilization_mean: c.mean_utilization(),
            utilization_peak: c.peak_utilization,
            message_wait_mean_us: c.message_waits.mean_us(),
            control_wait_mean_us: c.control_waits.mean_us(),
        };
        let mut nodes = BTreeMap::new();
        nodes.insert("gateway".to_string(), util(&self.servers.gateway));
        nodes.insert("chat_server".to_string(), util(&self.servers.chat));
        let adapters: Vec<&Cpu> = self
            .servers
            .adapters
            .iter()
            .enumerate()
            .filter(|(p, _)| self.nodes.adapters[*p].is_some())
            .map(|(_, c)| c)
            .collect();
        if !adapters.is_empty() {
            let n = adapters.len() as f64;
            nodes.insert(
                "adapter".to_string(),
                Utilization {
                    utilization_mean: adapters.iter().map(|c| c.mean_utilization()).sum::<f64>()
                        / n,
                    utilization_peak: adapters
                        .iter()
                        .map(|c| c.peak_utilization)
                        .fold(0.0, f64::max),
                    message_wait_mean_us: merged(&adapters, |c| &c.message_waits).mean_us(),
                    control_wait_mean_us: merged(&adapters, |c| &c.control_waits).mean_us(),
                },
            );
        }
        self.obs.flush_frame_counts();
        let rejected = self.servers.gateway.rejected;
        self.obs.count("gateway_queue_rejected", rejected);
        let rl = self.nodes.gateway.rate_limited;
        self.obs.count("gateway_rate_limited", rl);
        let shaped = self.nodes.gateway.shaped;
        self.obs.count("gateway_shaped", shaped);
        let refused = self.nodes.gateway.refused;
        self.obs.count("gateway_refused", refused);
        let pushes: u64 = self
            .nodes
            .partner_servers
            .iter()
            .flatten()
            .map(|p| p.pushes_sent())
            .sum();
        self.obs.count("partner_pushes", pushes);
        let chat = self.nodes.chat.sends();
        self.obs.count("chat_server_first_deliveries", chat.first);
        self.obs.count("chat_server_redeliveries", chat.again);
        let mut partners = Sends::default();
        for p in self.nodes.partner_servers.iter().flatten() {
            partners += p.sends();
        }
        if partners.first > 0 {
            self.obs
                .count("partner_server_first_deliveries", partners.first);
            self.obs
                .count("partner_server_redeliveries", partners.again);
        }
        self.count_mimi();
        let (sync, synced) = ledger.records().iter().fold((0, 0), |(a, b), r| {
            (
                a + r.sync_mask.count_ones() as u64,
                b + (r.synced_mask & r.sync_mask).count_ones() as u64,
            )
        });
        if sync > 0 {
            self.obs.count("sync_copies", sync);
            self.obs.count("sync_copies_shown", synced);
        }
        if self.traffic.workload.group_leaves > 0 {
            let leaves = self.traffic.workload.group_leaves;
            self.obs.count("group_leaves", leaves);
        }
        self.obs.count("events_processed", outcome.events_processed);
        let upstream = self.media.proxy_upstream_failures();
        if upstream > 0 {
            self.obs.count("media_proxy_upstream_failures", upstream);
        }
        let windows = self.fault_windows();
        let dir = &self.dir;
        let names: Vec<String> = self.s.providers.iter().map(|p| p.name.clone()).collect();
        let user = |u: UserId| format!("user {} ({})", u.0, names[dir.provider_of_user(u).index()]);
        let end_ns = outcome.end_time.as_nanos();
        let violations = checker::violations(&ledger, &windows, &user, end_ns);
        let liveness = checker::liveness(&ledger, &windows, end_ns);
        let mut crypto = self.keys.counts.flatten();
        crypto.insert(
            "security_code_changed".to_string(),
            self.keys.security_code_changed,
        );
        crypto.insert(
            "decrypt_failed_events".to_string(),
            ledger.counts.decrypt_failed_events,
        );
        let window_s = self.s.run.duration_ns as f64 / 1e9;
        let metadata = self.metadata_counters();
        let series = &self.obs.series;
        let facts = RunFacts {
            crypto,
            media: self.media.summary(),
            inbox: self.traffic.inbox.as_ref().map(|i| i.inboxes.summary()),
            violations,
            liveness,
            scenario: self.s.run.name.clone(),
            scenario_hash,
            seed: self.s.run.seed,
            fingerprint: outcome.fingerprint.hex(),
            events_processed: outcome.events_processed,
            end_time_s: outcome.end_time.as_secs_f64(),
            send_window_s: window_s,
            messages_delivered_per_s_peak: series.messages_delivered_per_s_peak(window_s),
            device_deliveries_per_s_peak: series.device_deliveries_per_s_peak(window_s),
            replay_rejected: self.obs.replay_rejected,
            nodes,
            work: self
                .obs
                .work
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .chain(metadata)
                .collect(),
        };
        let summary = Summary::build(&ledger, facts, &self.s.expect);
        RunResult {
            verified_plaintexts: ledger.counts.verified,
            media_verified: self.media.verified,
            media_blobs_opened: self.media.blobs_opened,
            media_disagreed: self.media.disagreed,
            media_latency: self.media.stats.latencies(),
            canary: self.traffic.canary,
            tapped: std::mem::take(&mut self.obs.tapped),
            crypto_charged_ns: self.keys.counts.by_node().values().map(|(_, ns)| ns).sum(),
            summary,
            timeseries: std::mem::take(&mut self.obs.series),
            ledger,
            stop: outcome.stop,
            trace: std::mem::take(&mut self.obs.trace_lines),
            hops: self.hop_steps(),
        }
    }
}

/// The waits of several nodes together (every frame counts once).
fn merged(
    cpus: &[&Cpu],
    waits: impl Fn(&Cpu) -> &crate::sim::cpu::Waits,
) -> crate::sim::cpu::Waits {
    let mut all = crate::sim::cpu::Waits::default();
    for c in cpus {
        all.merge(waits(c));
    }
    all
}

impl Sim {
    /// `metadata.<provider>.pairs`, `.third_party_pairs`, `.foreign_users` (see `metadata`).
    fn metadata_counters(&mut self) -> Vec<(String, u64)> {
        let seen = std::mem::take(&mut self.obs.metadata).finish(&self.dir);
        let mut out = Vec::new();
        for (p, (pairs, third, users)) in self.s.providers.iter().zip(seen) {
            let key = |what: &str| format!("metadata.{}.{what}", p.name);
            out.extend([
                (key("pairs"), pairs),
                (key("third_party_pairs"), third),
                (key("foreign_users"), users),
            ]);
        }
        out
    }

    /// Under the MIMI design, what the providers' endpoints did: fan-outs from hubs to
    /// followers (first and again) and submissions relayed to another provider's hub. Nothing
    /// under the hub design, whose files stay as they were.
    fn count_mimi(&mut self) {
        let chat = self.nodes.chat.mimi();
        let partners = self.nodes.partner_servers.iter().flatten();
        let endpoints: Vec<_> = chat
            .into_iter()
            .chain(partners.filter_map(|p| p.mimi()))
            .collect();
        if endpoints.is_empty() {
            return;
        }
        let (mut first, mut again, mut relayed, mut unacked) = (0, 0, 0, 0);
        for e in endpoints {
            first += e.sends().first;
            again += e.sends().again;
            relayed += e.relayed();
            unacked += e.unacked() as u64;
        }
        self.obs.count("mimi_fanouts", first);
        self.obs.count("mimi_fanouts_again", again);
        self.obs.count("mimi_relayed_to_hub", relayed);
        self.obs.count("mimi_fanouts_unacked_at_end", unacked);
    }
}
