//! sipt: the command-line tool (serve, ping, bench). Filled in by its issue.

fn main() {
    eprintln!("sipt: not built yet");
    std::process::exit(2);
}
