//! The validated scenario: every value checked, every default filled in, every cross-reference
//! resolved. The simulator only ever sees these types, so a wrong state (a probability of 1.5, a
//! fault on a node that does not exist) cannot reach it.

use serde::Serialize;

pub use super::topology::{Design, HopClass, Topology};
pub use super::values::DurationNs;
pub use crate::net::latency::Latency;
pub use crate::net::link::LinkSpec;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    pub run: RunSpec,
    /// Exactly one gatekeeper, always at index 0; partners follow in file order.
    pub providers: Vec<Provider>,
    pub network: Network,
    pub workload: Workload,
    pub capacity: Capacity,
    pub e2ee: E2ee,
    pub devices: Devices,
    pub faults: Vec<Fault>,
    pub expect: Vec<Expectation>,
    /// `[topology]`: how providers reach each other. Left out of the hash under the hub
    /// design (the default), so that adding the table moved no existing scenario's hash.
    #[serde(skip_serializing_if = "Topology::is_hub")]
    pub topology: Topology,
    /// `[sweep]`, for `interop-sim sweep`; left out of the hash when absent, so that adding
    /// the table changed no existing scenario's hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
    /// `[swarm]`: faults drawn from the seed, on top of `faults`.
    pub swarm: Option<Swarm>,
    /// `[plan]`, for `interop-sim plan`; left out of the hash when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<CapacityPlan>,
}

/// `[plan]`: the smallest capacity that meets service levels with a confidence, at a load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapacityPlan {
    /// The knobs to solve for, in file order.
    pub solve: Vec<PlanKnob>,
    /// The service levels, as `[expect]` writes them.
    pub slo: Vec<Expectation>,
    /// Multipliers on every provider's users and on the message rate.
    pub load_users: f64,
    pub load_rate: f64,
    /// Runs per point, each with its own seed.
    pub seeds: u32,
    /// An SLO holds at a point when the one-sided bound of its metric at this confidence over
    /// the seeds (Student's t) is within it.
    pub confidence: f64,
    /// Run 1/`slice` of the population against 1/`slice` of the capacity (cores, queue bounds,
    /// rate limits; latencies unchanged), and answer for the whole: a 450 M-user question on
    /// one machine. 1: the whole.
    pub slice: u32,
}

/// A capacity knob (cores, a queue bound, the rate limit per partner) and its range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanKnob {
    /// The key as written (a `[sweep]` key).
    pub key: String,
    pub target: SweepTarget,
    pub min: f64,
    pub max: f64,
}

/// A fault mix drawn from the seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Swarm {
    /// 0 to 1: how many faults, how long, how strong.
    pub intensity: f64,
    /// Fault kinds to draw from.
    pub kinds: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSpec {
    pub name: String,
    pub seed: u64,
    /// Simulated time during which the workload sends.
    pub duration_ns: DurationNs,
    /// Extra simulated time to deliver what is still in flight.
    pub drain_ns: DurationNs,
    /// Width of one row of timeseries.csv.
    pub interval_ns: DurationNs,
    /// Devices online at the start connect at instants drawn uniformly over `[0, ramp)`, as a
    /// population does after a deploy, not all in the same nanosecond (0: all at time zero).
    pub ramp_ns: DurationNs,
    /// Messages composed before this instant are left out of the latency percentiles, and
    /// sampling intervals ending by then out of utilization: the cold start is not the steady
    /// state a planner sizes for. Counters and the verdict's liveness still count every message.
    pub warmup_ns: DurationNs,
    /// Bound on processed events: a runaway scenario stops instead of running forever.
    pub events_max: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Gatekeeper,
    Partner,
}

/// How a partner's clients reach the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterMode {
    /// Through the partner's adapter, which translates its native frames to stanzas.
    Proxied,
    /// Straight to the gateway, speaking the gatekeeper's client protocol.
    Direct,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Provider {
    pub name: String,
    pub role: Role,
    pub users: u32,
    pub devices_min: u8,
    pub devices_max: u8,
    /// Share of users who enabled third-party chats. A user who has not is unreachable across
    /// providers (the sender is told so), but still reachable by their own provider's users.
    pub opt_in: f64,
    /// Share of the users who keep chats with other apps' users in a separate third-party
    /// inbox (the rest have one combined inbox). `None`: not named, inboxes not tracked (and
    /// left out of the hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separate_inbox: Option<f64>,
    /// Partners only; the gatekeeper ignores it.
    pub adapter: AdapterMode,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Network {
    /// Indexed by [`HopClass::index`], the hub's four classes.
    pub links: [LinkSpec; 4],
    /// The link between two providers' servers, under the MIMI design only (left out of the
    /// hash otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_provider: Option<LinkSpec>,
}

impl Network {
    /// The link spec of `hop`; `provider_provider`, when the design has none, is the
    /// gateway-partner link's (both cross the public internet between two companies).
    pub fn link(&self, hop: HopClass) -> &LinkSpec {
        match hop {
            HopClass::ProviderProvider => self
                .provider_provider
                .as_ref()
                .unwrap_or(&self.links[HopClass::GatewayPartner.index()]),
            _ => &self.links[hop.index()],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    Text,
    Image,
    Voice,
    Video,
    File,
}

impl ContentKind {
    pub const ALL: [ContentKind; 5] = [
        ContentKind::Text,
        ContentKind::Image,
        ContentKind::Voice,
        ContentKind::Video,
        ContentKind::File,
    ];
    pub fn key(self) -> &'static str {
        match self {
            ContentKind::Text => "text",
            ContentKind::Image => "image",
            ContentKind::Voice => "voice",
            ContentKind::Video => "video",
            ContentKind::File => "file",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    pub messages_per_user_hour: f64,
    pub cross_provider: f64,
    /// Weights per [`ContentKind`] in `ContentKind::ALL` order, summing to 1.
    pub content: [f64; 5],
    pub groups_share: f64,
    pub group_size_min: u32,
    pub group_size_max: u32,
    /// Probability, per group message, that a member leaves the group just before it (and a
    /// newcomer joins, so sizes hold): every sender then re-keys (a new Sender Key).
    pub group_leave: f64,
    /// Bound on a media blob's drawn size, bytes (`[workload] media_bytes_max`; default the
    /// 2 GiB cap of the media pointer). `validate` sets it to the live run's bound. Left out of
    /// the scenario hash at its default, so that every hash from before the key stays.
    #[serde(skip_serializing_if = "is_default_media_bytes_max")]
    pub media_bytes_max: u64,
    /// Conversations per user (contact graph degree).
    pub contacts_per_user: u32,
    /// Probability that a received message is answered.
    pub reply_probability: f64,
    /// Mean delay before an answer.
    pub reply_delay_mean_ns: DurationNs,
    /// Probability that a delivered message is read (a read receipt follows).
    pub read_probability: f64,
    /// Mean time (exponential) before a user with a separate third-party inbox opens it after
    /// a message shows there: their read and answer come that much later. Left out of the
    /// hash at its default.
    #[serde(skip_serializing_if = "is_default_inbox_delay")]
    pub separate_inbox_delay_ns: DurationNs,
}

/// `separate_inbox_delay`'s default: 10 minutes.
pub const SEPARATE_INBOX_DELAY_NS: DurationNs = 600_000_000_000;

/// The media pointer's cap on a file (2 GiB), the default and the largest `media_bytes_max`.
pub const MEDIA_BYTES_MAX: u64 = (2 << 30) - 1;

fn is_default_media_bytes_max(bytes: &u64) -> bool {
    *bytes == MEDIA_BYTES_MAX
}

fn is_default_inbox_delay(ns: &DurationNs) -> bool {
    *ns == SEPARATE_INBOX_DELAY_NS
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NodeCapacity {
    pub cores: u32,
    pub per_message_ns: DurationNs,
    pub queue_max: u64,
    /// Gateway only: messages per second admitted per partner.
    pub rate_limit_per_partner: Option<f64>,
    /// Where control frames (acks, receipts, connects) wait for a core. Left out of the
    /// scenario hash at its default.
    #[serde(skip_serializing_if = "ControlQueue::is_default")]
    pub control_queue: ControlQueue,
}

/// Where a node serves its control frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlQueue {
    /// In the one FIFO of the node's cores, behind and ahead of message frames: what a server
    /// with one worker pool does. An ack a round trip after each message then shares the
    /// cores with the messages.
    #[default]
    Shared,
    /// On cores of their own (as many as the node's), so that message frames queue only
    /// behind message frames: a server with a separate pool for acks, and the isolated queue
    /// that queueing formulas describe. Utilization then counts the message cores only.
    Separate,
}

impl ControlQueue {
    pub fn is_default(&self) -> bool {
        *self == ControlQueue::Shared
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Capacity {
    pub gateway: NodeCapacity,
    pub chat_server: NodeCapacity,
    pub adapter: NodeCapacity,
    /// Server nodes on one machine's cores, devices on a load generator's (out of the hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostCapacity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<HostCapacity>,
}

/// Cores shared by nodes (or devices): a frame waits for one whatever node it is for and holds
/// it for its node's logic plus `per_frame_ns`; a frame that finds a core idle first pays
/// `per_wake_ns`, so frames that find it busy share its wake-up, which is why a live server's
/// work per frame falls as its load rises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct HostCapacity {
    pub cores: u32,
    pub per_frame_ns: DurationNs,
    pub per_wake_ns: DurationNs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    X3dh,
    Pqxdh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CryptoMode {
    Real,
    Modeled,
}

/// When a conversation's pairwise Signal session comes to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionSetup {
    /// At its first message, on the measured path: keys made on first use, the bundle fetched,
    /// X3DH (or PQXDH) at both ends, prekey headers until the first reply. What a fresh
    /// deployment sees.
    #[default]
    FirstMessage,
    /// Before the clock starts: every device has its keys and a confirmed session with each
    /// peer it writes to, set up off the books (not charged, not counted). Steady-state chat,
    /// and what a live load run does before it measures. A session that is renewed later (a
    /// reinstall, a retry receipt) is set up on the measured path as usual.
    Established,
}

impl SessionSetup {
    pub fn is_default(&self) -> bool {
        *self == SessionSetup::FirstMessage
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct E2ee {
    pub protocol: Protocol,
    pub crypto: CryptoMode,
    /// `sessions`: left out of the hash at its default.
    #[serde(skip_serializing_if = "SessionSetup::is_default")]
    pub sessions: SessionSetup,
    pub one_time_prekeys: u32,
    pub prekey_refill_below: u32,
    /// `cost_table`: prices replacing the defaults for the operations named. Left out of the
    /// hash when empty (and so are the limits below at their defaults), so that scenarios
    /// written before these keys keep their hash.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub cost_table: super::cost_table::CostOverrides,
    /// The key directory's limit on bundle fetches; `None`: unlimited.
    #[serde(skip_serializing_if = "BundleFetchLimit::is_default")]
    pub bundle_fetch_limit: Option<BundleFetchLimit>,
}

/// A token bucket per (requesting device, fetched device), as Signal's server keys its
/// `prekeys` limiter (`<account>.<device>__<target>.<device>`, 6 permits, one more every 10
/// minutes): an honest device fetches a peer device's bundle once per session, so only repeated
/// fetches of the same device (a prekey-drain adversary) meet the limit. Enforced on the
/// adversary; honest fetches over it are counted only (`nodes::key_directory` says why).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BundleFetchLimit {
    /// Fetches allowed at once (the bucket's size), at least 1.
    pub burst: u32,
    /// Permits added per hour; 0: the burst is all a pair ever gets.
    pub per_hour: f64,
}

impl BundleFetchLimit {
    pub const SIGNAL: BundleFetchLimit = BundleFetchLimit {
        burst: 6,
        per_hour: 6.0,
    };

    fn is_default(limit: &Option<BundleFetchLimit>) -> bool {
        *limit == Some(BundleFetchLimit::SIGNAL)
    }
}

/// Device behaviour: connectivity churn and the delivery machinery's bounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Devices {
    /// Share of time a device is online (connected), in steady state.
    pub online_share: f64,
    /// Mean length of an online session.
    pub online_mean_ns: DurationNs,
    /// Offline queue TTL on the servers (30 days by default).
    pub offline_ttl_ns: DurationNs,
    /// First outbox retry delay; doubles per attempt up to `retry_max_ns`.
    pub retry_initial_ns: DurationNs,
    pub retry_max_ns: DurationNs,
    /// Bound on unacked messages in a device's outbox.
    pub outbox_max: u32,
    /// Sent plaintexts a device keeps for retry receipts (an evicted one cannot be re-sent).
    pub plaintext_cache: u32,
}

/// A fault endpoint: a provider (its servers), the gateway, or a provider's clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Gateway,
    /// Index into `Scenario::providers`.
    Provider(usize),
    Clients(usize),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// `one_way`: only `from -> to` is cut ("the connection looks healthy but nothing arrives").
    Partition {
        a: Endpoint,
        b: Endpoint,
        one_way: bool,
    },
    Crash {
        node: Endpoint,
        durable: bool,
    },
    Slow {
        node: Endpoint,
        factor: f64,
    },
    Loss {
        link: HopClass,
        rate: f64,
    },
    Duplicate {
        link: HopClass,
        rate: f64,
    },
    Reorder {
        link: HopClass,
        rate: f64,
    },
    Tamper {
        link: HopClass,
        rate: f64,
    },
    Replay {
        link: HopClass,
        rate: f64,
    },
    IdentityReset {
        provider: usize,
        users: f64,
    },
    /// The workload sends `factor` times its rate (a flash crowd, new year's eve).
    Surge {
        factor: f64,
    },
    /// A node's clock runs `offset_ns` ahead (or behind): the timestamps it writes are off.
    ClockSkew {
        node: Endpoint,
        offset_ns: DurationNs,
        behind: bool,
    },
    /// Push notifications to the provider's devices are lost with probability `rate`.
    PushLoss {
        provider: usize,
        rate: f64,
    },
    /// An adversarial client fetches prekey bundles of a `users` share of the provider's
    /// users, `rate` fetches per second per victim, to empty their one-time prekey pools.
    PrekeyDrain {
        provider: usize,
        users: f64,
        rate: f64,
    },
    Toggle {
        provider: usize,
        users: f64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fault {
    pub at_ns: DurationNs,
    /// `None`: until the end of the run.
    pub for_ns: Option<DurationNs>,
    pub kind: FaultKind,
}

impl Fault {
    pub fn end_ns(&self) -> Option<DurationNs> {
        self.for_ns.map(|d| self.at_ns.saturating_add(d))
    }
}

/// One `[expect]` line: a counter or latency held to a bound.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expectation {
    /// The summary key, as written (`lost`, `delivered_p99`, `interop.delivered_p99`, ...).
    pub key: String,
    pub bound: Bound,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The measured value must be at most this (bad-thing counters, latencies in ns).
    AtMost(f64),
    /// The measured value must be at least this (sent, delivered, throughput).
    AtLeast(f64),
}

/// `[sweep]`: a grid of values for scenario keys (parsed in `sweep`, the keys in `sweep_keys`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sweep {
    /// In file order; the last axis varies fastest.
    pub axes: Vec<SweepAxis>,
    /// Runs per grid point, each with its own seed.
    pub repeats: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepAxis {
    /// The key as written (after flattening nested tables).
    pub key: String,
    pub target: SweepTarget,
    pub values: Vec<SweepValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepValue {
    Number(f64),
    /// Nanoseconds.
    Duration(DurationNs),
    /// `topology.design`.
    Design(Design),
}

impl SweepValue {
    /// The value as a number: durations in ms (what plots and CSV columns show).
    pub fn as_f64(self) -> f64 {
        match self {
            SweepValue::Number(x) => x,
            SweepValue::Duration(ns) => ns as f64 / 1e6,
            SweepValue::Design(d) => Design::ALL.iter().position(|x| *x == d).unwrap_or(0) as f64,
        }
    }
    /// As written in a scenario: `40`, `0.02`, `"250ms"`.
    pub fn label(self) -> String {
        match self {
            // Display prints the shortest form that reads back exactly: 0.02, 160, 1e-5.
            SweepValue::Number(x) => format!("{x}"),
            SweepValue::Duration(ns) => crate::engine::time::format_duration_ns(ns),
            SweepValue::Design(d) => d.key().to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Gateway,
    ChatServer,
    Adapter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyParam {
    Value,
    Min,
    Max,
    Mean,
    Stddev,
    Median,
    P99,
    Alpha,
}

/// What a sweep key sets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepTarget {
    MessagesPerUserHour,
    CrossProvider,
    GroupsShare,
    /// `workload.groups.size`: every group this size (min = max).
    GroupsSize,
    GroupsLeave,
    /// `topology.design`: the same workload under each interop design.
    Design,
    ContactsPerUser,
    ReplyProbability,
    ReplyDelay,
    ReadProbability,
    SeparateInboxDelay,
    ProviderUsers(usize),
    ProviderOptIn(usize),
    ProviderSeparateInbox(usize),
    LinkLoss(HopClass),
    LinkDuplicate(HopClass),
    LinkReorder(HopClass),
    LinkBandwidth(HopClass),
    LinkLatency(HopClass, LatencyParam),
    Cores(NodeKind),
    PerMessage(NodeKind),
    QueueMax(NodeKind),
    RateLimitPerPartner,
    OnlineShare,
    OnlineMean,
    RetryInitial,
    RetryMax,
}
