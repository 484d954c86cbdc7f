//! `cargo xtask bench`: being written (issue 8).

pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    Err("the benchmark driver is not in this tree yet".into())
}
