//! `interop-sim serve [FILE] --role R --listen ADDR`: one live server role (or all) on
//! loopback, for load generators in other processes.

use super::live_args::RoleArg;
use super::{load, Outcome};
use std::path::Path;

pub fn serve(
    file: Option<&Path>,
    role: RoleArg,
    provider: u32,
    listen: &str,
    users: Option<u32>,
    for_s: Option<f64>,
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
    interop_sim::live::remote::serve(&s, users, role, listen, for_ns, |served| {
        for (name, at) in served {
            println!("serving {name} on {at}");
        }
    })?;
    Ok(Outcome::Passed)
}
