//! `interop-sim peer`: one Signal device on stdin/stdout for other implementations to talk to
//! (CONFORMANCE.md's JSON-lines peer protocol).

use super::Outcome;
use anyhow::Context;

pub fn peer() -> anyhow::Result<Outcome> {
    let stdin = std::io::stdin();
    interop_sim::e2ee::peer::serve(stdin.lock(), std::io::stdout().lock())
        .context("peer: stdin/stdout")?;
    Ok(Outcome::Passed)
}
