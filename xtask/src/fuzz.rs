//! `cargo xtask fuzz [--seconds N] [TARGET]`: builds the cargo-fuzz targets in `fuzz/` and
//! runs each for N seconds (default 10), one after the other; fails if any finds a crash.
//!
//! Works on the stable toolchain: `cargo fuzz run --sanitizer none` builds with libFuzzer's
//! coverage instrumentation (`-C passes=sancov-module`, stable) and passes no `-Z` flag; only
//! the sanitizers (`-Zsanitizer=...`, cargo-fuzz's default is address) need nightly. Overflow
//! checks and debug assertions stay on, and the targets assert the codec's invariants.
//!
//! Before running, each target's corpus (`fuzz/corpus/<target>/`, not in git) is seeded with
//! the RFC 4475/5118 torture files (from `SIP_TORTURE_DIR`, `../shared/torture` beside the
//! repository, or `/work/shared/torture`) and with every input saved under
//! `fuzz/regressions/<target>/`. A crash leaves its input in `fuzz/artifacts/<target>/`; copy
//! it to `fuzz/regressions/<target>/` with the fix so `cargo test` replays it from then on.

use std::path::{Path, PathBuf};

use crate::{cargo, run_cmd, workspace_root};

/// The split-mode byte the `stream_decoder` target reads first (see `fuzz/bodies/codec.rs`):
/// seeds get one so that the rest of the file is the stream.
const STREAM_SEED_MODE: u8 = 7;

/// Largest input libFuzzer generates: room for a few messages back to back.
const MAX_LEN: usize = 8192;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = Options::parse(args)?;
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    if !fuzz_dir.join("Cargo.toml").is_file() {
        return Err(format!("no fuzz crate at {}", fuzz_dir.display()));
    }
    ensure_cargo_fuzz()?;

    let all = list_targets(&fuzz_dir)?;
    let targets: Vec<String> = match &opts.target {
        Some(t) if all.contains(t) => vec![t.clone()],
        Some(t) => {
            return Err(format!(
                "unknown fuzz target {t:?}; targets: {}",
                all.join(", ")
            ));
        }
        None => all,
    };

    run_cmd(
        cargo()
            .current_dir(&fuzz_dir)
            .args(["fuzz", "build", "--sanitizer", "none"]),
    )?;

    let torture = torture_dir(&root);
    if torture.is_none() {
        eprintln!("xtask fuzz: no torture corpus found; fuzzing from the regression inputs only");
    }
    let mut failed = Vec::new();
    for t in &targets {
        let corpus = fuzz_dir.join("corpus").join(t);
        let seeded = seed_corpus(&fuzz_dir, t, &corpus, torture.as_deref())?;
        eprintln!(
            "xtask fuzz: {t}: {} seed inputs, {} s",
            seeded, opts.seconds
        );
        let mut cmd = cargo();
        cmd.current_dir(&fuzz_dir)
            .args(["fuzz", "run", "--sanitizer", "none", t.as_str()])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={}", opts.seconds))
            .arg(format!("-max_len={MAX_LEN}"))
            .arg("-timeout=10")
            .arg("-print_final_stats=1");
        if let Err(e) = run_cmd(&mut cmd) {
            eprintln!(
                "xtask fuzz: {t} FAILED ({e}); the crashing input is in {}",
                fuzz_dir.join("artifacts").join(t).display()
            );
            failed.push(t.clone());
        }
    }
    if failed.is_empty() {
        eprintln!(
            "xtask fuzz: {} target(s) ran {} s each without a crash",
            targets.len(),
            opts.seconds
        );
        Ok(())
    } else {
        Err(format!("fuzz target(s) crashed: {}", failed.join(", ")))
    }
}

#[derive(Debug, PartialEq)]
struct Options {
    seconds: u64,
    target: Option<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut opts = Options {
            seconds: 10,
            target: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let secs = if a == "--seconds" {
                Some(it.next().ok_or("--seconds needs a value")?.as_str())
            } else {
                a.strip_prefix("--seconds=")
            };
            if let Some(s) = secs {
                opts.seconds = s
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--seconds: {s:?} is not a positive number"))?;
            } else if a.starts_with('-') {
                return Err(format!(
                    "unknown option {a:?} (usage: fuzz [--seconds N] [TARGET])"
                ));
            } else if opts.target.replace(a.clone()).is_some() {
                return Err("give at most one target".into());
            }
        }
        Ok(opts)
    }
}

/// Installs cargo-fuzz from crates.io when `cargo fuzz` is not available.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    run_cmd(cargo().args(["install", "cargo-fuzz", "--locked"]))
}

fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let out = cargo()
        .current_dir(fuzz_dir)
        .args(["fuzz", "list"])
        .output()
        .map_err(|e| format!("cannot run cargo fuzz list: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        return Err("cargo fuzz list found no targets".into());
    }
    Ok(targets)
}

fn torture_dir(root: &Path) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SIP_TORTURE_DIR").map(PathBuf::from),
        Some(root.join("../shared/torture")),
        Some(PathBuf::from("/work/shared/torture")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("rfc4475").is_dir())
}

/// Writes the seeds for `target` into `corpus` (existing files are kept); returns how many.
fn seed_corpus(
    fuzz_dir: &Path,
    target: &str,
    corpus: &Path,
    torture: Option<&Path>,
) -> Result<usize, String> {
    std::fs::create_dir_all(corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(dir) = torture {
        for sub in ["rfc4475", "rfc5118"] {
            for (name, bytes) in dat_files(&dir.join(sub))? {
                if sub == "rfc5118" {
                    // The archive has bare LF line ends; the wire form is CRLF.
                    let crlf = String::from_utf8_lossy(&bytes).replace('\n', "\r\n");
                    seeds.push((format!("{sub}-{name}-crlf"), crlf.into_bytes()));
                }
                seeds.push((format!("{sub}-{name}"), bytes));
            }
        }
    }
    if target == "stream_decoder" {
        for (_, bytes) in &mut seeds {
            bytes.insert(0, STREAM_SEED_MODE);
        }
    }
    // Regression inputs are already in the target's own format.
    let regressions = fuzz_dir.join("regressions").join(target);
    if regressions.is_dir() {
        for entry in std::fs::read_dir(&regressions).map_err(|e| e.to_string())? {
            let p = entry.map_err(|e| e.to_string())?.path();
            if p.is_file() {
                let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                seeds.push((format!("regression-{name}"), bytes));
            }
        }
    }
    for (name, bytes) in &seeds {
        let path = corpus.join(format!("seed-{name}"));
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(seeds.len())
}

fn dat_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let p = entry.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|x| x == "dat") {
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            out.push((name, bytes));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options() {
        assert_eq!(
            Options::parse(&args(&[])),
            Ok(Options {
                seconds: 10,
                target: None
            })
        );
        assert_eq!(
            Options::parse(&args(&["--seconds", "300", "datagram"])),
            Ok(Options {
                seconds: 300,
                target: Some("datagram".into())
            })
        );
        assert_eq!(
            Options::parse(&args(&["stream_decoder", "--seconds=5"])),
            Ok(Options {
                seconds: 5,
                target: Some("stream_decoder".into())
            })
        );
        assert!(Options::parse(&args(&["--seconds"])).is_err());
        assert!(Options::parse(&args(&["--seconds", "0"])).is_err());
        assert!(Options::parse(&args(&["--seconds", "x"])).is_err());
        assert!(Options::parse(&args(&["--jobs", "2"])).is_err());
        assert!(Options::parse(&args(&["a", "b"])).is_err());
    }
}
