//! CLI entry point. On the e2ee branch only the `peer` subcommand is wired (the main engineer
//! merges it into the clap CLI): `interop-sim peer` serves CONFORMANCE.md's JSON-lines protocol.

fn main() {
    if std::env::args().nth(1).as_deref() == Some("peer") {
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        if let Err(e) = interop_sim::e2ee::peer::serve(stdin.lock(), stdout.lock()) {
            eprintln!("interop-sim peer: {e}");
            std::process::exit(1);
        }
    }
}
