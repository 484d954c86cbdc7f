//! `cargo xtask`: the project's chores, so that a developer, CI and `.ci/run` run the same
//! commands. Standard library only, so it builds in seconds on a fresh machine.
//!
//! - `cargo xtask deps`      install the real peers the tests use (Debian packages), if missing
//! - `cargo xtask test-all`  format check, clippy, every test in the workspace, feature matrix
//! - `cargo xtask fuzz`      run every fuzz target briefly (`--seconds N`)
//! - `cargo xtask bench`     side-by-side benchmarks against Kamailio (`--quick`: ~2 minutes)
//! - `cargo xtask soak`      minutes of mixed load against `sipt serve` (`--minutes N`)

mod bench;
mod deps;
mod fuzz;
mod soak;
mod test_all;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "deps" => deps::run(rest),
        "test-all" => test_all::run(rest),
        "fuzz" => fuzz::run(rest),
        "bench" => bench::run(rest),
        "soak" => soak::run(rest),
        "help" | "--help" | "-h" => {
            println!(
                "cargo xtask <command>\n\n  deps       install test peers (SIPp, Kamailio, ...) from Debian packages when missing\n  test-all   fmt check, clippy -D warnings, all tests (the README's test command)\n  fuzz       run every fuzz target briefly: --seconds N [TARGET]\n  bench      benchmarks against Kamailio, JSON + table (--quick for ~2 minutes)\n  soak       mixed UDP/TCP/TLS/WS load against sipt serve, lost transactions and RSS (--minutes N)"
            );
            Ok(())
        }
        other => Err(format!("unknown command {other:?}; try `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command with inherited stdio, failing with its description when it fails.
pub(crate) fn run_cmd(cmd: &mut Command) -> Result<(), String> {
    eprintln!("+ {}", describe(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed with {status}", describe(cmd)))
    }
}

pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// `cargo`, as the one that runs us.
pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}
