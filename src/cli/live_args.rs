//! The arguments the live subcommands share (how to drive a live run, a server's role), apart
//! from the commands so that each command's file imports them without importing the others.

/// How to drive a live run (`live`).
#[derive(clap::Args, Clone, Debug)]
pub struct LiveArgs {
    /// Scale the scenario down (or up) to this many users in all.
    #[arg(long)]
    pub users: Option<u32>,
    /// Target messages per second (default: users x messages_per_user_hour / 3600).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Sending window in seconds (default: the scenario's duration).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Arrival process (default: constant for `live` and `load`, poisson for `validate`, as
    /// the simulator's).
    #[arg(long, value_enum)]
    pub arrivals: Option<ArrivalsArg>,
    /// Ramp from zero to the target rate over this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub ramp: f64,
    /// Load-generator shards (client tasks).
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Run the load generator's clients on worker threads of their own, this many (0: they
    /// share the servers' --threads). Keeps the clients' Signal work and sockets off the
    /// servers' threads: on a 2-core VM, `--threads 1 --generator-threads 1` made live p50 at
    /// 2,800 msg/s repeat within 3 % over three runs (within 6 % over five, shared).
    #[arg(long, default_value_t = 0)]
    pub generator_threads: usize,
    /// With --generator-threads: pin the servers' threads to the first --threads cores and the
    /// load generator's (and the threads it starts) to the cores after them, so
    /// that neither preempts the other. Ignored where the machine has too few cores.
    #[arg(long, requires = "generator_threads")]
    pub pin: bool,
    /// Bound on the drain after the sending window, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Encrypt every message before the run (senders' Signal work off the measured path;
    /// recipients still decrypt live).
    #[arg(long)]
    pub precrypt: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    All,
    Chat,
    Gateway,
    Adapter,
    Partner,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ArrivalsArg {
    Constant,
    Poisson,
}

impl LiveArgs {
    pub fn options(&self) -> Result<interop_sim::live::LiveOptions, String> {
        let secs = |x: f64, what: &str| {
            if (0.0..1e7).contains(&x) {
                Ok((x * 1e9) as u64)
            } else {
                Err(format!("--{what} must be a number of seconds >= 0"))
            }
        };
        Ok(interop_sim::live::LiveOptions {
            users: self.users,
            rate_per_s: self.rate,
            duration_ns: self.duration.map(|d| secs(d, "duration")).transpose()?,
            arrivals: match self.arrivals {
                None | Some(ArrivalsArg::Constant) => interop_sim::live::Arrivals::Constant,
                Some(ArrivalsArg::Poisson) => interop_sim::live::Arrivals::Poisson,
            },
            ramp_ns: secs(self.ramp, "ramp")?,
            shards: self.shards.clamp(1, 64),
            threads: self.threads.clamp(1, 64),
            generator_threads: self.generator_threads.min(64),
            pin: self.pin,
            drain_max_ns: secs(self.drain, "drain")?,
            precrypt: self.precrypt,
            ..Default::default()
        })
    }
}
