//! The sans-IO codec: framing for streams and datagrams, Via stamping on receipt, and where a
//! response goes. Pure functions and state machines over bytes; no sockets, no clocks.

mod datagram;
mod route;
mod stamp;
mod stream;

pub use datagram::{Datagram, decode_datagram};
pub use route::{ResponseHost, ResponseTarget, response_target};
pub use stamp::{stamp_received, stamp_received_owned};
pub use stream::{Frame, StreamDecoder};
