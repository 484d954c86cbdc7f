//! `cargo xtask test-all`: the README's test command. Format check, clippy with warnings as
//! errors, every test of the workspace (unit, integration, interop with real peers, doc
//! tests), every fuzz target for a few seconds, and the facade's feature combinations.
//!
//! Under CI (`CI=true`) a missing peer fails the interop tests instead of skipping them.

use crate::{cargo, run_cmd};

/// Feature sets of the facade that must build and pass on their own.
const FACADE_FEATURES: &[&str] = &[
    "",
    "udp",
    "tcp",
    "tls",
    "ws",
    "dns",
    "udp,tcp,dns",
    "udp,tcp,tls,ws,dns,metrics",
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(a) = args.iter().find(|a| *a != "--quick") {
        return Err(format!("unexpected argument {a:?} (only --quick)"));
    }
    run_cmd(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run_cmd(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run_cmd(cargo().args(["test", "--workspace", "--all-targets", "--no-fail-fast"]))?;
    run_cmd(cargo().args(["test", "--workspace", "--doc"]))?;
    if !quick {
        // Every fuzz target briefly, on top of its bodies running as plain tests above.
        crate::fuzz::run(&["--seconds".to_owned(), "5".to_owned()])?;
        for f in FACADE_FEATURES {
            let mut c = cargo();
            c.args(["test", "-p", "sip-transport", "--no-default-features"]);
            if !f.is_empty() {
                c.args(["--features", f]);
            }
            run_cmd(&mut c)?;
        }
    }
    eprintln!("xtask test-all: all passed");
    Ok(())
}
