//! # sip-transport-ws
//!
//! SIP over WebSocket, `ws` and `wss` (RFC 7118): [`WsTransport`] behind the
//! [`Transport`](sip_transport_api::Transport) trait, configured by [`WsConfig`].
//!
//! - the listener requires the `sip` subprotocol and echoes it (`Sec-WebSocket-Protocol: sip`);
//!   a client that does not offer it gets `400 Bad Request`; optional request-path and `Origin`
//!   allow-lists answer `404` and `403`;
//! - one SIP message per WebSocket message (text or binary), framed by the api crate's
//!   [`decode_datagram`](sip_transport_api::decode_datagram); requests get their top Via
//!   stamped (`received`/`rport`); we send text frames, binary only for non-UTF-8 bodies;
//! - responses go back over the connection the request came in on: route by
//!   [`FlowId`](sip_transport_api::FlowId), since a WebSocket client's Via is usually an
//!   `.invalid` host; a send to an address with an open inbound connection reuses it;
//! - outbound `ws://` and `wss://` from the same transport ([`WsTransport::send_message_via`]);
//!   a [`Destination`](sip_transport_api::Destination)'s `server_name` is the TLS name and
//!   `Host`, its `resource` the request path; concurrent sends to a new destination share one
//!   handshake; `wss` runs over our own rustls session, its client configuration built and
//!   its handshake errors mapped by [`sip_transport_tls`] (provider `ring` by default, chosen
//!   explicitly; [`ClientTls`] also takes the TLS crate's `TlsConfig`, for client certificates);
//! - limits: frame and message size (`Limits::max_message_size`; larger → Close 1009 and an
//!   `Error` event), handshake timeout (TLS and upgrade together), idle and write timeouts,
//!   connections in total and per IP, concurrent handshakes, a write queue per connection
//!   bounded in messages and bytes (`Error::WriteQueueFull`), bounded tungstenite buffers and
//!   a 4 KiB read buffer;
//! - no accepted message is lost silently: `messages_sent` counts a message once it is
//!   flushed; a flow whose close has begun takes no more (`Error::FlowClosed`), though what it
//!   had queued is still written within `Limits::close_grace`; every message a connection could
//!   not write is counted in `send_errors` and reported by one `TransportEvent::Error` for the
//!   flow (`Error::FlowClosed`, or the I/O error or write timeout that ended it), as on TCP;
//! - a message must arrive whole within `Limits::header_read_timeout` of its first byte, however
//!   it is split into frames or TCP segments (slowloris; `CloseReason::HeaderReadTimeout`);
//! - pings are answered; optional keepalive pings, and a connection whose ping gets no pong (or
//!   any frame) within [`WsConfig::pong_timeout`] is closed (`CloseReason::KeepaliveTimeout`,
//!   RFC 5626 §4.4.1); `close()` sends Close frames, flushes queued writes within
//!   `Limits::close_grace`, then reports `TransportEvent::Closed`;
//! - behind a layer-4 load balancer, [`WsConfig::proxy_protocol`] takes a PROXY protocol
//!   header (v1 or v2, the tcp crate's settings and parser) off each accepted connection, from
//!   trusted sources only, before the TLS handshake and the upgrade; the client address it
//!   carries becomes the message source, the `received`/`rport` stamp and the flow's key.
//!
//! What this crate is not: an HTTP server (every request that is not a WebSocket upgrade is
//! refused), a resolver (destinations carry addresses), or a transaction layer.
//!
//! ```no_run
//! use sip_transport_api::{Transport, TransportEvent};
//! use sip_transport_ws::{WsConfig, WsTransport};
//!
//! # async fn run() -> sip_transport_api::Result<()> {
//! let config = WsConfig::default().with_bind("0.0.0.0:8080".parse().expect("address"));
//! let (ws, mut events) = WsTransport::bind(config)?;
//! while let Some(event) = events.recv().await {
//!     if let TransportEvent::Message(received) = event {
//!         println!("{} bytes on {:?}", received.message.len(), received.flow);
//!     }
//! }
//! ws.close().await;
//! # Ok(())
//! # }
//! ```

mod accept;
mod client_tls;
mod config;
mod connection;
mod dial;
mod frame_scanner;
mod registry;
mod shared;
mod stream;
mod transport;
mod upgrade;
mod watched_io;
mod write_queue;

pub use config::{
    ClientTls, DEFAULT_PONG_TIMEOUT, DEFAULT_READ_BUFFER_SIZE, DEFAULT_WRITE_BUFFER_SIZE, WsConfig,
    WsScheme,
};
// The PROXY protocol settings and trusted-source prefixes, the same types as on the TCP and
// TLS listeners.
pub use sip_transport_tcp::{IpPrefix, ProxyProtocolConfig, TcpKeepaliveConfig};
pub use transport::WsTransport;
pub use upgrade::{SIP_SUBPROTOCOL, offers_sip};
