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
    /// The per-connection write queue is full: the peer does not read fast enough.
    #[error("write queue to {peer} is full ({depth} messages queued)")]
    WriteQueueFull {
        /// The peer.
        peer: SocketAddr,
        /// The queue depth in force.
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
}

impl Error {
    /// True when another attempt, or another target, may succeed: timeouts, refused or reset
    /// connections, full queues, a closed flow. False for errors in the message itself, in
    /// certificates or in configuration, which no retry can fix.
    pub fn is_recoverable(&self) -> bool {
        match self {
            Error::WriteQueueFull { .. }
            | Error::WriteTimeout { .. }
            | Error::FlowClosed { .. }
            | Error::ConnectTimeout { .. }
            | Error::Io { .. }
            | Error::ConnectionLimit { .. } => true,
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
            | Error::TransportClosed => false,
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
