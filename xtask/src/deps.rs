//! `cargo xtask deps`: installs the real peers the tests talk to, from Debian's packages, only
//! when they are missing (a no-op on a machine that has them).
//!
//! It is the single place that knows what the tests need outside Rust; `.ci/run` calls it.

use std::process::Command;

use crate::run_cmd;

/// Debian packages the test suite uses, and why.
const PACKAGES: &[(&str, &str)] = &[
    (
        "sip-tester",
        "SIPp, the UAC/UAS load tool (UDP/TCP interop and benchmarks)",
    ),
    (
        "kamailio",
        "Kamailio SIP server (interop peer and benchmark reference)",
    ),
    ("kamailio-tls-modules", "Kamailio's TLS listener"),
    (
        "kamailio-websocket-modules",
        "Kamailio's WebSocket listener",
    ),
    (
        "dnsmasq-base",
        "dnsmasq, a real DNS server for the RFC 3263 NAPTR/SRV tests",
    ),
    (
        "openssl",
        "s_client as an independent TLS client; kam.sh's certificates",
    ),
    ("procps", "pgrep, used by the Kamailio launcher"),
    (
        "iproute2",
        "ss, which shows the DSCP mark and keepalive timer of the transports' TCP sockets",
    ),
    ("python3", "the peer scripts in ../shared/peers"),
    (
        "haproxy",
        "a real layer-4 load balancer (PROXY protocol v2) for the scale-out test",
    ),
    (
        "chromium",
        "a real browser for the JsSIP-over-WSS test (never a downloaded one)",
    ),
];

/// npm projects the tests use, installed from their committed lock files.
const NPM_PROJECTS: &[(&str, &str)] = &[(
    "crates/sip-transport-ws/tests/browser",
    "JsSIP, playwright-core and esbuild for the browser test",
)];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("unexpected argument {a:?}"));
    }
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("this is not a Debian-like system (no dpkg-query); install the peers by hand: SIPp, Kamailio with TLS and websocket modules, openssl".into());
    }
    install_packages()?;
    install_npm()
}

/// `npm ci` in each npm project whose `node_modules` is missing or older than its lock file.
fn install_npm() -> Result<(), String> {
    let root = crate::workspace_root();
    for (dir, why) in NPM_PROJECTS {
        let dir = root.join(dir);
        let lock = dir.join("package-lock.json");
        let modules = dir.join("node_modules");
        let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let fresh = matches!((modified(&lock), modified(&modules)), (Some(l), Some(m)) if m >= l);
        if fresh {
            continue;
        }
        if Command::new("npm").arg("--version").output().is_err() {
            return Err(format!(
                "npm is needed for {why}; install Node.js 20 or newer"
            ));
        }
        eprintln!("xtask deps: npm ci in {}: {why}", dir.display());
        run_cmd(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
        )?;
    }
    Ok(())
}

fn install_packages() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(p, _)| !installed(p))
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        eprintln!("xtask deps: all Debian packages present");
        return Ok(());
    }
    for (p, why) in PACKAGES.iter().filter(|(p, _)| missing.contains(p)) {
        eprintln!("xtask deps: installing {p}: {why}");
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let sudo = |c: &str| {
        if root {
            Command::new(c)
        } else {
            let mut s = Command::new("sudo");
            s.arg(c);
            s
        }
    };
    run_cmd(sudo("apt-get").args(["update", "-qq"]))?;
    run_cmd(
        sudo("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )?;
    let still: Vec<&str> = missing.into_iter().filter(|p| !installed(p)).collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("still missing after apt-get: {still:?}"))
    }
}
