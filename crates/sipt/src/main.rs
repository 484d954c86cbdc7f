//! `sipt`: serve, ping and bench SIP over UDP, TCP, TLS and WebSocket.
//!
//! The command-line face of sip-transport: `serve` is a stateless responder on every
//! transport, `ping` an OPTIONS health check, `bench` a load generator. Other tools rely on
//! the flags and output formats documented in `--help`.

mod bench;
mod histogram;
mod listen;
mod locate;
mod net;
mod ping;
mod responder;
mod serve;
mod target;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use listen::ListenSpec;

// Each subcommand's exit codes, as its `run` returns them; the top-level help lists all three.
macro_rules! serve_exit_codes {
    () => {
        "0 stopped by SIGINT or SIGTERM; 2 usage error, or a listener, certificate or key that \
         cannot be used."
    };
}
macro_rules! ping_exit_codes {
    () => {
        "0 every request got a final response (any status, 200-699); 1 some request got none: \
         it timed out, could not be sent (refused, reset) or its connection closed first; \
         2 usage, resolution or certificate error, or the transport could not be opened."
    };
}
macro_rules! bench_exit_codes {
    () => {
        "0 every transaction got a 2xx; 1 any non-2xx, send error or timeout, or no 2xx at all; \
         2 usage, resolution or certificate error, or a transport could not be opened."
    };
}

#[derive(Parser, Debug)]
#[command(
    name = "sipt",
    version,
    about = "SIP transport tool: a stateless responder, an OPTIONS pinger and a load generator over UDP, TCP, TLS, WS and WSS",
    long_about = None,
    after_help = concat!(
        "Logging: set RUST_LOG (e.g. RUST_LOG=sip_transport=debug).\n\n",
        "Exit codes:\n",
        "  serve: ", serve_exit_codes!(), "\n",
        "  ping:  ", ping_exit_codes!(), "\n",
        "  bench: ", bench_exit_codes!(),
    )
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Answer every request (except ACK and CANCEL) with a final response, statelessly
    /// (RFC 3261 §8.2.6, §8.2.7); a 2xx to INVITE names the listener in its Contact.
    #[command(after_help = concat!("Exit codes: ", serve_exit_codes!()))]
    Serve(ServeArgs),
    /// Send OPTIONS to a URI and print each reply with its round-trip time.
    #[command(after_help = concat!("Exit codes: ", ping_exit_codes!()))]
    Ping(PingArgs),
    /// Generate OPTIONS load and report transactions/s and latency percentiles.
    #[command(after_help = concat!("Exit codes: ", bench_exit_codes!()))]
    Bench(bench::BenchArgs),
}

/// Options of `sipt serve`.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Listener as PROTO:IP:PORT (udp, tcp, tls, ws, wss; IPv6 as tcp:[::1]:5060). Repeatable.
    /// Default: udp and tcp on 127.0.0.1:5060, tls on :5061, ws on :8080, wss on :8443.
    #[arg(long = "listen", value_name = "PROTO:IP:PORT")]
    pub(crate) listen: Vec<ListenSpec>,
    /// PEM certificate chain for tls/wss listeners (default: a self-signed one for localhost).
    /// Repeatable, each with its --key in the same order: the first is the default, the others
    /// are chosen by the name a client asks for (SNI), for a server of several domains, by
    /// the names in their subjectAltName (sip: URI or DNS; not the CN).
    #[arg(long, value_name = "PEM", requires = "key")]
    pub(crate) cert: Vec<std::path::PathBuf>,
    /// PEM private key for the --cert at the same position.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub(crate) key: Vec<std::path::PathBuf>,
    /// Status code of the final response.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(200..=699))]
    pub(crate) code: u16,
    /// Print only the listening lines, the summary and, when a tls or wss listener gets a
    /// self-signed certificate (no --cert), the line with its fingerprint; not a line per
    /// request.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Runtime worker threads, and UDP sockets per udp listener (SO_REUSEPORT, one receive
    /// task each). Default: the number of cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) workers: Option<u16>,
    /// Require a PROXY protocol header (v1 or v2, e.g. HAProxy's send-proxy-v2) on every
    /// connection to the tcp, tls, ws and wss listeners, and use the client address it carries.
    #[arg(long)]
    pub(crate) proxy_protocol: bool,
    /// Trusted load-balancer source for --proxy-protocol, IP or IP/PREFIX. Repeatable.
    /// Default: loopback only (127.0.0.0/8, ::1). Connections from other sources are refused.
    #[arg(long, value_name = "IP[/PREFIX]", requires = "proxy_protocol")]
    pub(crate) proxy_from: Vec<sip_transport::tcp::IpPrefix>,
    /// Most connections each tcp, tls, ws or wss listener keeps open at once (inbound and
    /// redialled); more are refused at accept.
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_connections: u64,
    /// Most connections one client IP address may hold on each listener (behind
    /// --proxy-protocol, the address the PROXY header carries).
    #[arg(long, value_name = "N", default_value_t = 1_024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_connections_per_ip: u64,
    /// Seconds a connection may stay silent before it is closed (RFC 5626 keepalives count).
    #[arg(long, value_name = "SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) idle_timeout: u64,
    /// Seconds a client has for its TLS handshake and WebSocket upgrade.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) handshake_timeout: u64,
    /// Seconds a message (header block and body) has to arrive once it has begun.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) header_read_timeout: u64,
    /// Largest message accepted, in bytes, 1024 to 16777216 (body included; also the body
    /// limit). Larger datagrams are dropped and counted as malformed; a larger message on a
    /// connection closes it.
    #[arg(long, value_name = "BYTES", default_value_t = 65_535,
          value_parser = clap::value_parser!(u64).range(1024..=16_777_216))]
    pub(crate) max_message_size: u64,
    /// Mark every packet of every listener and connection with this DSCP (IP_TOS, and
    /// IPV6_TCLASS on IPv6), as Kamailio's `tos` does: 0-63 (decimal or 0x hex) or a name,
    /// e.g. cs3 (24, the usual class for SIP signalling), cs5 (40), ef (46), af41 (34). A DSCP,
    /// not Kamailio's TOS byte: tos=0x60 is --dscp cs3. Default: no mark. TCP, TLS, WS and WSS
    /// connections always have kernel TCP keepalive on, with the OS's timing.
    #[arg(long, value_name = "DSCP")]
    pub(crate) dscp: Option<sip_transport::Dscp>,
}

impl ServeArgs {
    /// `--workers`, or the number of cores.
    pub(crate) fn worker_count(&self) -> usize {
        self.workers.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

/// Options of `sipt ping`.
#[derive(Args, Debug)]
pub(crate) struct PingArgs {
    /// sip:HOST[:PORT][;transport=udp|tcp|tls|ws|wss], sips:HOST[:PORT][;transport=ws],
    /// ws://HOST[:PORT][/path] or wss://HOST[:PORT][/path]. Default ports (RFC 3261 §19.1.1,
    /// RFC 7118): 5060 for udp and tcp, 5061 for tls (sips:), 80 for ws, 443 for wss; a
    /// host name without a port is looked up through DNS (RFC 3263: NAPTR, SRV). `sipt serve`
    /// listens for ws on 8080 and wss on 8443, so give the port: ws://127.0.0.1:8080.
    pub(crate) uri: String,
    /// Number of OPTIONS to send.
    #[arg(long, default_value_t = 1)]
    pub(crate) count: u64,
    /// Milliseconds between requests.
    #[arg(long, default_value_t = 1000)]
    pub(crate) interval: u64,
    /// Milliseconds to wait for a final response.
    #[arg(long, default_value_t = 2000)]
    pub(crate) timeout: u64,
    /// Print one JSON object per reply instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// Options every client command (`ping`, `bench`) shares: name resolution and TLS checks.
#[derive(Args, Debug, Clone)]
pub(crate) struct ClientArgs {
    /// Send DNS queries (RFC 3263) to this server, over UDP, instead of the system's.
    #[arg(long, value_name = "IP:PORT")]
    pub(crate) resolver: Option<std::net::SocketAddr>,
    /// Accept any server certificate (tls, wss). For tests only.
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Trust the CA certificates in this PEM file instead of the web PKI roots.
    #[arg(long, value_name = "PEM")]
    pub(crate) ca: Option<std::path::PathBuf>,
}

impl ClientArgs {
    pub(crate) fn tls_options(&self) -> net::TlsOptions {
        net::TlsOptions {
            identity: None,
            sni_identities: Vec::new(),
            insecure: self.insecure,
            ca: self.ca.clone(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // A server holding tens of thousands of connections needs as many descriptors as the
    // hard limit allows; the soft limit is often 1,024.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::debug!(error = %e, "could not raise the open-file limit");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Cmd::Serve(a) = &cli.cmd {
        builder.worker_threads(a.worker_count());
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipt: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = rt.block_on(async move {
        match cli.cmd {
            Cmd::Serve(a) => serve::run(a).await,
            Cmd::Ping(a) => ping::run(a).await,
            Cmd::Bench(a) => bench::run(a).await,
        }
    });
    ExitCode::from(code)
}
