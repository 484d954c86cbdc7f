//! The one error type of sip-transport.
//!
//! Every variant is produced somewhere and names the address or limit involved.
//! `is_recoverable()` answers one question: may another attempt, or another target, succeed?

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::FlowId;

/// Errors from the codec and from every transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- framing and parsing (sans-IO codec) ----
    /// The whole message (headers + body) is larger than `Limits::max_message_size`.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Size of the message, as far as known.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The header block grew past `Limits::max_header_size` without ending.
    #[error("header block exceeds the limit of {limit} bytes")]
    HeadersTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// One header line (or the start line) is longer than `Limits::max_line_length`.
    #[error("header line exceeds the limit of {limit} bytes")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// Content-Length announces a body larger than `Limits::max_body_size`.
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The announced body size.
        size: u64,
        /// The limit in force.
        limit: usize,
    },
    /// A message on a stream transport has no Content-Length (RFC 3261 §18.3).
    #[error("Content-Length is missing; it is mandatory on stream transports (RFC 3261 §18.3)")]
    MissingContentLength,
    /// Content-Length is negative, not a number or does not fit.
    #[error("invalid Content-Length value {value:?}")]
    InvalidContentLength {
        /// The offending value, as received (lossy UTF-8, at most 64 bytes).
        value: String,
    },
    /// More than one Content-Length header (equal or conflicting values): framing is ambiguous.
    #[error("more than one Content-Length header ({first} and {second})")]
    DuplicateContentLength {
        /// The first value.
        first: u64,
        /// The second value.
        second: u64,
    },
    /// Fewer body bytes than Content-Length announces, in a datagram or WebSocket message
    /// (RFC 3261 §18.3).
    #[error("message truncated: Content-Length is {expected} but only {actual} body bytes arrived")]
    Truncated {
        /// Body bytes announced.
        expected: usize,
        /// Body bytes present.
        actual: usize,
    },
    /// The bytes are not a SIP message that can be framed or routed.
    #[error("malformed SIP message: {reason}")]
    Malformed {
        /// What is wrong, in a few words.
        reason: &'static str,
    },

    // ---- sending ----
    /// A request is over the UDP size rule of RFC 3261 §18.1.1.
    #[error(
        "request of {size} bytes exceeds the {limit}-byte limit for UDP (RFC 3261 §18.1.1); \
         send it over a congestion-controlled transport such as TCP"
    )]
    UdpMessageTooLarge {
        /// Size of the request.
        size: usize,
        /// The configured limit (1300 by default).
        limit: usize,
    },
    /// The datagram is larger than any UDP datagram can be.
    #[error("datagram of {size} bytes exceeds the UDP maximum of {limit} bytes")]
    DatagramTooLarge {
        /// Size of the message.
        size: usize,
        /// The maximum (65,507 for IPv4).
        limit: usize,
    },
    /// The per-connection write queue is full: the peer does not read fast enough. Its
    /// bounds are `Limits::write_queue_depth` messages and `Limits::max_write_queue_bytes`
    /// bytes, whichever is reached first.
    #[error("write queue to {peer} is full ({depth} messages or the byte budget unwritten)")]
    WriteQueueFull {
        /// The peer.
        peer: SocketAddr,
        /// The queue depth in force (messages).
        depth: usize,
    },
    /// A write did not complete in time (the peer stopped reading).
    #[error("write to {peer} timed out after {after:?}")]
    WriteTimeout {
        /// The peer.
        peer: SocketAddr,
        /// How long we waited.
        after: Duration,
    },
    /// The flow named by the caller is closed; per RFC 3261 §18.2.2 a response should then go
    /// to the address in `received`/sent-by.
    #[error("{flow} is closed")]
    FlowClosed {
        /// The closed flow.
        flow: FlowId,
    },
    /// Opening a connection failed.
    #[error("connecting to {peer} failed: {source}")]
    Connect {
        /// The target.
        peer: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Opening a connection took longer than the connect timeout.
    #[error("connecting to {peer} timed out after {after:?}")]
    ConnectTimeout {
        /// The target.
        peer: SocketAddr,
        /// The timeout in force.
        after: Duration,
    },
    /// A socket operation with a peer failed (reset, unreachable, ...).
    #[error("I/O error with {peer}: {source}")]
    Io {
        /// The peer.
        peer: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Binding a listener or socket failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No new connection may be opened: the connection limit is reached.
    #[error("connection limit of {limit} reached")]
    ConnectionLimit {
        /// The limit in force.
        limit: usize,
    },
    /// The destination cannot be used (broadcast address, unknown Via transport, ...).
    #[error("invalid destination: {reason}")]
    InvalidDestination {
        /// What is wrong.
        reason: String,
    },
    /// This transport cannot reach that destination (e.g. IPv6 target on an IPv4 socket).
    #[error("{transport} transport on {local} cannot send to {peer}")]
    AddressFamilyMismatch {
        /// The transport's kind.
        transport: crate::TransportKind,
        /// Its local address.
        local: SocketAddr,
        /// The target.
        peer: SocketAddr,
    },
    /// The transport was closed; nothing more can be sent.
    #[error("transport is closed")]
    TransportClosed,
    /// A send was refused because the destination is over its configured cap of sends per
    /// second (the facade's manager throttling). Another target, or a later attempt, may succeed.
    #[error("sending to {destination} is throttled (limit {limit} per second)")]
    Throttled {
        /// The destination over its cap.
        destination: SocketAddr,
        /// The cap in force, in sends per second.
        limit: u32,
    },
    /// No transport of this kind is available: its cargo feature is off, or none was bound or
    /// added to the manager. No retry can succeed until one is.
    #[error("no {kind} transport is available")]
    TransportUnavailable {
        /// The transport that was needed.
        kind: crate::TransportKind,
    },
    /// A SIP or SIPS URI that cannot be used: not `sip:`/`sips:`, a bad host or port, an
    /// unknown `transport` parameter, or one that would downgrade a SIPS URI (RFC 3261 §26.2.2).
    #[error("invalid SIP URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI as given (at most 256 bytes of it).
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration cannot be used (an unreadable certificate or key file, a PEM file
    /// without the expected item, a key that does not match its certificate). Found at bind.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong, naming the file or setting.
        reason: String,
    },

    // ---- TLS ----
    /// A certificate was not accepted: the peer's by us, or ours by the peer (it told us with
    /// a TLS alert). No retry with the same certificates can succeed.
    #[error("TLS certificate with {peer} not accepted: {reason}")]
    TlsCertificate {
        /// The peer.
        peer: SocketAddr,
        /// What was wrong.
        reason: CertificateProblem,
    },
    /// The TLS handshake failed for a reason other than a certificate (no common protocol
    /// version or cipher suite, a peer that does not speak TLS, a handshake alert).
    #[error("TLS handshake with {peer} failed: {source}")]
    TlsHandshake {
        /// The peer.
        peer: SocketAddr,
        /// The TLS library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The TLS handshake did not complete within `Limits::handshake_timeout`.
    #[error("TLS handshake with {peer} timed out after {after:?}")]
    HandshakeTimeout {
        /// The peer.
        peer: SocketAddr,
        /// The timeout in force.
        after: Duration,
    },

    // ---- server location (RFC 3263) ----
    /// Resolving a SIP URI's host or a Via sent-by through DNS found no target.
    #[error("DNS resolution of {name} failed: {reason}")]
    Dns {
        /// The name that was being resolved (the URI host or Via sent-by host, lower case).
        name: String,
        /// Why it failed.
        reason: DnsFailure,
    },
}

/// Why a DNS resolution (RFC 3263) failed: the `reason` of [`Error::Dns`].
///
/// The split follows what a retry can change: a missing name or record is an answer from the
/// zone's authority and stays true until the zone changes, while a timeout or a server failure
/// is about the path to the DNS server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsFailure {
    /// The name does not exist (NXDOMAIN, RFC 2308 §2.1). Not recoverable.
    #[error("no such domain (NXDOMAIN)")]
    NxDomain,
    /// The name exists but yields no usable target: no A/AAAA records, or no NAPTR/SRV
    /// record for a transport we may use (RFC 3263 §4.1). Not recoverable.
    #[error("no usable records")]
    NoRecords,
    /// Every SRV record has the target `.`: the service is decidedly not available at this
    /// domain (RFC 2782). Not recoverable.
    #[error("service not available (SRV target \".\")")]
    Unavailable,
    /// The DNS server did not answer in time. Recoverable.
    #[error("timed out")]
    Timeout,
    /// The DNS server failed (SERVFAIL, REFUSED, a malformed answer) or could not be reached.
    /// Recoverable.
    #[error("server failure: {0}")]
    Server(String),
}

impl DnsFailure {
    /// True for failures a later attempt may not see: timeouts and server failures. A missing
    /// name or record is the zone's answer, which retrying does not change.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, DnsFailure::Timeout | DnsFailure::Server(_))
    }
}

/// Why a certificate was not accepted (see [`Error::TlsCertificate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// The chain does not lead to a trusted root (unknown CA, self-signed).
    #[error("issued by an unknown certificate authority")]
    UnknownIssuer,
    /// The certificate's validity period has ended.
    #[error("expired")]
    Expired,
    /// The certificate's validity period has not begun.
    #[error("not valid yet")]
    NotYetValid,
    /// The certificate is not valid for the name (or address) we connected to.
    #[error("not valid for {expected:?}")]
    NameMismatch {
        /// The server name or IP address we verified against.
        expected: String,
    },
    /// The certificate has been revoked.
    #[error("revoked")]
    Revoked,
    /// We require a client certificate and the peer sent none.
    #[error("the peer sent no client certificate, and one is required")]
    ClientCertificateRequired,
    /// The peer refused our certificate (or demanded one we did not send), with this TLS alert.
    #[error("the peer rejected our certificate (TLS alert {alert})")]
    RejectedByPeer {
        /// The alert, as the TLS library names it (e.g. `BadCertificate`, `UnknownCA`).
        alert: String,
    },
    /// Anything else wrong with the certificate (bad signature, wrong key usage, malformed).
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// True when another attempt, or another target, may succeed: timeouts, refused or reset
    /// connections, full queues, a closed flow, a DNS timeout or server failure. False for
    /// errors in the message itself, in certificates or in configuration, and for DNS answers
    /// saying the name or service does not exist (NXDOMAIN, no records, SRV target `.`),
    /// which no retry can fix.
    pub fn is_recoverable(&self) -> bool {
        match self {
            Error::WriteQueueFull { .. }
            | Error::WriteTimeout { .. }
            | Error::FlowClosed { .. }
            | Error::ConnectTimeout { .. }
            | Error::Io { .. }
            | Error::ConnectionLimit { .. }
            | Error::TlsHandshake { .. }
            | Error::HandshakeTimeout { .. }
            | Error::Throttled { .. } => true,
            Error::Dns { reason, .. } => reason.is_recoverable(),
            Error::Connect { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ),
            Error::MessageTooLarge { .. }
            | Error::HeadersTooLarge { .. }
            | Error::LineTooLong { .. }
            | Error::BodyTooLarge { .. }
            | Error::MissingContentLength
            | Error::InvalidContentLength { .. }
            | Error::DuplicateContentLength { .. }
            | Error::Truncated { .. }
            | Error::Malformed { .. }
            | Error::UdpMessageTooLarge { .. }
            | Error::DatagramTooLarge { .. }
            | Error::Bind { .. }
            | Error::InvalidDestination { .. }
            | Error::AddressFamilyMismatch { .. }
            | Error::TransportClosed
            | Error::InvalidUri { .. }
            | Error::TransportUnavailable { .. }
            | Error::InvalidConfig { .. }
            | Error::TlsCertificate { .. } => false,
        }
    }

    /// True for errors that mean the received bytes cannot be framed: on a stream the
    /// connection must be closed, because the next message boundary is unknown.
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            Error::MessageTooLarge { .. }
                | Error::HeadersTooLarge { .. }
                | Error::LineTooLong { .. }
                | Error::BodyTooLarge { .. }
                | Error::MissingContentLength
                | Error::InvalidContentLength { .. }
                | Error::DuplicateContentLength { .. }
                | Error::Truncated { .. }
                | Error::Malformed { .. }
        )
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 5060))
    }

    #[test]
    fn recoverable_classification() {
        let refused = Error::Connect {
            peer: addr(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(refused.is_recoverable());
        assert!(
            Error::ConnectTimeout {
                peer: addr(),
                after: Duration::from_secs(1)
            }
            .is_recoverable()
        );
        let reset = Error::Io {
            peer: addr(),
            source: io::Error::from(io::ErrorKind::ConnectionReset),
        };
        assert!(reset.is_recoverable());
        assert!(
            !Error::UdpMessageTooLarge {
                size: 2000,
                limit: 1300
            }
            .is_recoverable()
        );
        assert!(!Error::MissingContentLength.is_recoverable());
        assert!(!Error::TransportClosed.is_recoverable());
    }

    #[test]
    fn tls_classification() {
        let cert = Error::TlsCertificate {
            peer: addr(),
            reason: CertificateProblem::Expired,
        };
        assert!(!cert.is_recoverable() && !cert.is_framing());
        assert!(cert.to_string().contains("expired"), "{cert}");
        let refused = Error::TlsCertificate {
            peer: addr(),
            reason: CertificateProblem::RejectedByPeer {
                alert: "CertificateRequired".into(),
            },
        };
        assert!(!refused.is_recoverable());
        assert!(refused.to_string().contains("CertificateRequired"));
        let hs = Error::TlsHandshake {
            peer: addr(),
            source: "no common cipher suite".into(),
        };
        assert!(hs.is_recoverable());
        assert!(std::error::Error::source(&hs).is_some());
        let t = Error::HandshakeTimeout {
            peer: addr(),
            after: Duration::from_secs(10),
        };
        assert!(t.is_recoverable());
        assert!(t.to_string().contains("10s"), "{t}");
        let cfg = Error::InvalidConfig {
            reason: "no certificate in /x/cert.pem".into(),
        };
        assert!(!cfg.is_recoverable() && cfg.to_string().contains("/x/cert.pem"));
    }

    #[test]
    fn dns_recoverable_classification() {
        let dns = |reason| Error::Dns {
            name: "example.com".to_owned(),
            reason,
        };
        assert!(dns(DnsFailure::Timeout).is_recoverable());
        assert!(dns(DnsFailure::Server("SERVFAIL".to_owned())).is_recoverable());
        assert!(!dns(DnsFailure::NxDomain).is_recoverable());
        assert!(!dns(DnsFailure::NoRecords).is_recoverable());
        assert!(!dns(DnsFailure::Unavailable).is_recoverable());
        assert!(!dns(DnsFailure::NxDomain).is_framing());
        let s = dns(DnsFailure::NxDomain).to_string();
        assert!(s.contains("example.com") && s.contains("NXDOMAIN"), "{s}");
    }

    #[test]
    fn invalid_uri_is_not_recoverable() {
        let e = Error::InvalidUri {
            uri: "sips:example.com;transport=udp".into(),
            reason: "a SIPS URI cannot use UDP".into(),
        };
        assert!(!e.is_recoverable() && !e.is_framing());
        let s = e.to_string();
        assert!(s.contains("sips:example.com") && s.contains("UDP"), "{s}");
    }

    #[test]
    fn throttled_is_recoverable_unavailable_is_not() {
        let t = Error::Throttled {
            destination: addr(),
            limit: 50,
        };
        assert!(t.is_recoverable() && !t.is_framing());
        let s = t.to_string();
        assert!(s.contains("127.0.0.1:5060") && s.contains("50"), "{s}");
        let u = Error::TransportUnavailable {
            kind: crate::TransportKind::Tls,
        };
        assert!(!u.is_recoverable());
        assert!(u.to_string().contains("tls"), "{u}");
    }

    #[test]
    fn messages_name_the_limit() {
        let e = Error::UdpMessageTooLarge {
            size: 2000,
            limit: 1300,
        };
        let s = e.to_string();
        assert!(
            s.contains("1300") && s.contains("2000") && s.contains("TCP"),
            "{s}"
        );
        assert!(Error::MissingContentLength.is_framing());
        assert!(!reset_like().is_framing());
    }

    fn reset_like() -> Error {
        Error::Io {
            peer: addr(),
            source: io::Error::from(io::ErrorKind::ConnectionReset),
        }
    }
}
