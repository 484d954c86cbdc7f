//! `Shared`: the state every task of one transport reads — limits, counters, the event
//! channel, the shutdown signal, the connection table and the handshake settings.
//!
//! Built once by `bind`; nothing here does I/O.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use sip_transport_api::{Counters, Limits, TransportEvent};
use sip_transport_tcp::{ProxyProtocolConfig, StreamSocketOptions};

use crate::registry::Registry;
use crate::upgrade::UpgradePolicy;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) counters: Counters,
    pub(crate) events: mpsc::Sender<TransportEvent>,
    /// `true` once the transport closes; every task watches it.
    pub(crate) shutdown: watch::Sender<bool>,
    /// `true` once `close()` has passed its grace period, or the transport was dropped:
    /// connections stop waiting for room for their last events.
    pub(crate) stopped: watch::Sender<bool>,
    pub(crate) registry: Arc<Registry>,
    /// tungstenite limits and buffer sizes for every connection.
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) keepalive: Option<Duration>,
    /// How long a keepalive ping waits for a pong or any other frame.
    pub(crate) pong_timeout: Duration,
    /// DSCP and TCP keepalive for accepted and dialed sockets.
    pub(crate) socket_options: StreamSocketOptions,
    /// PROXY protocol on the listener, if on.
    pub(crate) proxy: Option<ProxyProtocolConfig>,
    pub(crate) policy: UpgradePolicy,
    pub(crate) server_tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) client_tls: Arc<rustls::ClientConfig>,
    pub(crate) client_origin: Option<String>,
    /// Inbound handshakes in progress (`Limits::max_concurrent_handshakes`).
    pub(crate) handshakes: Arc<Semaphore>,
}
