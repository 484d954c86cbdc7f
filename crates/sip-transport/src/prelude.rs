//! The names most programs need, in one `use sip_transport::prelude::*;`.
//!
//! The contract (trait, events, errors, messages), the factory and the manager, and the
//! `bind_*` helpers of the enabled features. Not the protocol crates' configuration types:
//! reach those through `sip_transport::{udp, tcp, tls, ws}` (each behind its feature).

pub use sip_transport_api::{
    Destination, Dscp, Error, FlowId, Limits, Message, ReceivedMessage, Result, Transport,
    TransportEvent, TransportKind, TransportStats,
};

pub use crate::factory::{CreatedTransport, TransportFactory};
pub use crate::manager::{
    ManagerConfig, ManagerEvent, ManagerStats, SendTo, Sent, TransportId, TransportManager,
};
pub use crate::uri::TargetUri;

#[cfg(feature = "tcp")]
pub use crate::bind::bind_tcp;
#[cfg(feature = "tls")]
pub use crate::bind::bind_tls;
#[cfg(feature = "udp")]
pub use crate::bind::bind_udp;
#[cfg(feature = "ws")]
pub use crate::bind::bind_ws;
#[cfg(all(feature = "ws", feature = "tls"))]
pub use crate::bind::bind_wss;

#[cfg(feature = "dns")]
pub use crate::dns::{SipResolver, SipResolverConfig};
