//! `interop-sim serve [FILE] --role R --listen ADDR`: one live server role (or all) on
//! loopback, for load generators in other processes.

use super::live_args::RoleArg;
use super::{load, Outcome};
use std::path::Path;

/// The server's bounds and logging, as given on the command line.
pub struct How {
    pub max_connections: usize,
    pub idle_timeout: f64,
    pub log: bool,
}

pub fn serve(
    file: Option<&Path>,
    role: RoleArg,
    provider: u32,
    listen: &str,
    users: Option<u32>,
    for_s: Option<f64>,
    how: How,
) -> anyhow::Result<Outcome> {
    use interop_sim::live::topology::Role;
    let s = match load(file) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let listen = match interop_sim::live::loopback_addr(listen) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("interop-sim serve: --listen: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let partners = s.providers.len() as u32 - 1;
    if matches!(role, RoleArg::Adapter | RoleArg::Partner) && !(1..=partners).contains(&provider) {
        eprintln!("interop-sim serve: --provider must be 1..={partners}");
        return Ok(Outcome::Invalid);
    }
    let role = match role {
        RoleArg::All => Role::All,
        RoleArg::Chat => Role::Chat,
        RoleArg::Gateway => Role::Gateway,
        RoleArg::Adapter => Role::Adapter(provider),
        RoleArg::Partner => Role::Partner(provider),
    };
    let for_ns = for_s.map(|x| (x.clamp(0.0, 1e7) * 1e9) as u64);
    if how.max_connections == 0 || how.max_connections > 1_000_000 {
        eprintln!(
            "interop-sim serve: --max-connections must be 1..=1000000, got {}",
            how.max_connections
        );
        return Ok(Outcome::Invalid);
    }
    if !(how.idle_timeout.is_finite() && (5.0..=86_400.0).contains(&how.idle_timeout)) {
        eprintln!(
            "interop-sim serve: --idle-timeout must be 5 to 86400 seconds (peers send keepalives every 2 s), got {}",
            how.idle_timeout
        );
        return Ok(Outcome::Invalid);
    }
    let opts = interop_sim::live::remote::ServeOptions {
        limits: interop_sim::live::abuse::Limits {
            connections_max: how.max_connections,
            idle: std::time::Duration::from_secs_f64(how.idle_timeout),
            ..Default::default()
        },
        log_every: how.log.then_some(std::time::Duration::from_secs(1)),
        release_memory: Some(crate::release_memory),
    };
    interop_sim::live::remote::serve(&s, users, role, listen, for_ns, opts, |served| {
        for (name, at) in served {
            println!("serving {name} on {at}");
        }
    })?;
    Ok(Outcome::Passed)
}
