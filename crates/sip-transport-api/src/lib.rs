//! # sip-transport-api
//!
//! The contract every sip-transport protocol crate implements, and the parts that need no
//! sockets: the [`Transport`] trait, [`TransportEvent`], [`Error`], [`Limits`], [`Dscp`], the framed
//! [`Message`] and the sans-IO codec ([`StreamDecoder`], [`decode_datagram`],
//! [`stamp_received`], [`response_target`]).
//!
//! ```
//! use bytes::Bytes;
//! use sip_transport_api::{Frame, Limits, StreamDecoder};
//!
//! let mut dec = StreamDecoder::new(Limits::default());
//! dec.extend_from_slice(b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n");
//! assert_eq!(dec.decode()?, None); // needs more bytes
//! dec.extend_from_slice(b"Content-Length: 0\r\n\r\n\r\n\r\n");
//! let Some(Frame::Message(msg)) = dec.decode()? else { panic!() };
//! assert_eq!(msg.method(), Some("OPTIONS"));
//! assert_eq!(msg.top_via()?.branch(), Some("z9hG4bK1"));
//! assert_eq!(dec.decode()?, Some(Frame::Ping)); // RFC 5626 keepalive
//! # Ok::<(), sip_transport_api::Error>(())
//! ```

mod codec;
mod dscp;
mod error;
mod flow;
mod identity;
mod kind;
mod limits;
mod message;
pub mod stats;
mod transport;

pub use codec::{
    Datagram, Frame, ResponseHost, ResponseTarget, StreamDecoder, decode_datagram, response_target,
    stamp_received, stamp_received_owned,
};
pub use dscp::Dscp;
pub use error::{CertificateProblem, DnsFailure, Error, Result};
pub use flow::FlowId;
pub use identity::PeerIdentity;
pub use kind::{TransportKind, UnknownTransport};
pub use limits::Limits;
pub use message::{
    CSeq, Header, Message, Via, compact_of, expand_compact, names_match, parse_ip_host,
};
pub use stats::{Counters, TransportStats};
pub use transport::{
    CloseReason, Destination, Direction, ReceivedMessage, Transport, TransportEvent,
};

/// Re-exported so implementors use the same `async_trait` as the trait.
pub use async_trait::async_trait;
pub use bytes;
