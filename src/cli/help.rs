//! The Examples sections of every subcommand's `--help`, each followed by the exit codes.
//! They name only files of this repository (scenarios/, docs/, benches/).

macro_rules! exit_codes {
    () => {
        "Exit codes:\n  0  every expectation held\n  1  an expectation failed\n  2  invalid scenario or arguments\n  3  internal error (a bug: please report it with the seed)\n  4  the machine refused: a port in use, a file or folder that cannot be read or written"
    };
}

macro_rules! help {
    ($($example:literal),+ $(,)?) => {
        concat!("Examples:\n", $("  ", $example, "\n",)+ "\n", exit_codes!())
    };
}

pub const TOP: &str = help!(
    "interop-sim run                                    # the built-in baseline scenario",
    "interop-sim run scenarios/partner-outage.toml      # a scenario file; results/<name>/",
    "interop-sim check my.toml                          # every default filled in, and the hash",
    "interop-sim <command> --help                       # each command's options and examples",
    "Scenario keys: docs/SCENARIOS.md · result fields: docs/RESULTS.md · peer: docs/CONFORMANCE.md",
);

pub const RUN: &str = help!(
    "interop-sim run                                          # the built-in baseline",
    "interop-sim run scenarios/lossy-mobile.toml --seed 17    # replay one seed exactly",
    "interop-sim run scenarios/lossy-mobile.toml --seeds 1..100   # failing seeds, listed",
    "interop-sim run my.toml --ledger --out /tmp/r            # also messages.csv",
    "interop-sim run my.toml --trace t.jsonl --trace-msg 2395 # one message's hops",
    "Fields of the results folder: docs/RESULTS.md",
);

pub const SHRINK: &str = help!(
    "interop-sim shrink scenarios/lossy-mobile.toml --seed 17   # smallest scenario that still fails",
    "interop-sim run results/lossy-mobile/shrunk.toml --seed 17 # replay what it wrote",
);

pub const PEER: &str = help!(
    "interop-sim peer    # then, one JSON object per line on stdin:",
    "  {\"op\":\"init\",\"name\":\"alice\",\"registration_id\":1,\"device_id\":1}",
    "The protocol, with a whole example session: docs/CONFORMANCE.md",
);

pub const CHECK: &str = help!(
    "interop-sim check scenarios/baseline.toml                 # resolved scenario and its hash",
    "interop-sim check my.toml --cost-table results/calibration.toml",
    "Every key, its type and default: docs/SCENARIOS.md",
);

pub const SWEEP: &str = help!(
    "interop-sim sweep scenarios/gateway-overload.toml          # every grid point, in parallel",
    "interop-sim sweep my.toml --shard 0/2 --out /tmp/s0        # half of the grid, for `merge`",
);

pub const PLAN: &str = help!(
    "interop-sim plan scenarios/plan-gateway.toml   # the smallest gateway that meets its SLOs",
    "interop-sim plan my.toml --out /tmp/p --threads 2",
    "interop-sim plan eu.toml --slice 1/1000                   # 1/1000 of the users and capacity",
    "interop-sim plan eu.toml --runs /shared/eu-runs           # keep runs; a restart goes on",
    "interop-sim plan eu.toml --runs /shared/eu-runs --shard 2/8   # one of 8 machines on one plan",
    "The [plan] keys (solve, slo, load, seeds, confidence, slice): docs/SCENARIOS.md",
);

pub const MERGE: &str =
    help!("interop-sim merge /tmp/s0 /tmp/s1 --out results/my-sweep   # as if one sweep had run",);

pub const COMPARE: &str =
    help!("interop-sim compare results/baseline results/partner-outage --out /tmp/cmp",);

pub const BENCH: &str = help!(
    "interop-sim bench check            # work counters of every CI scenario vs benches/baseline/",
    "interop-sim bench update           # rewrite the baselines (review the diff)",
    "interop-sim bench instructions     # hot paths' instruction counts, +2 % gate",
    "interop-sim bench pipeline --users 10000,100000   # whole-run CPU s, events/msg, msg per CPU-s, peak MiB",
    "How the gates work: benches/README.md",
);

pub const CALIBRATE: &str = help!(
    "interop-sim calibrate --out scenarios/my-machine.toml",
    "  then in a scenario: [e2ee] cost_table = \"my-machine.toml\"",
);

pub const LIVE: &str = help!(
    "interop-sim live scenarios/live-bench.toml --rate 2000 --duration 10",
    "interop-sim live scenarios/baseline.toml --users 400 --arrivals poisson",
);

pub const VALIDATE: &str = help!(
    "interop-sim validate scenarios/live-bench.toml --rate 500 --duration 5",
    "interop-sim validate scenarios/live-bench.toml --levels 0.3,0.6,0.9 --duration 5",
    "interop-sim validate scenarios/live-bench.toml --rate 20000 --duration 5 --repeat 3",
    "Writes validate.html, validate.json and both runs' results folders",
);

pub const SERVE: &str = help!(
    "interop-sim serve scenarios/live-bench.toml --role all --listen 127.0.0.1:7000 --log",
    "interop-sim load scenarios/live-bench.toml --target 127.0.0.1:7000 --rate 1000   # another shell",
);

pub const LOAD: &str = help!(
    "interop-sim load scenarios/live-bench.toml --target 127.0.0.1:7000 --slice 0/2 --out /tmp/g0",
    "interop-sim load scenarios/live-bench.toml --target 127.0.0.1:7000 --slice 1/2 --out /tmp/g1",
    "interop-sim live-merge scenarios/live-bench.toml /tmp/g0/latency.hlog /tmp/g1/latency.hlog",
);

pub const LIVE_MERGE: &str = help!(
    "interop-sim live-merge scenarios/live-bench.toml /tmp/g0/latency.hlog /tmp/g1/latency.hlog --out /tmp/merged",
);
