//! `Limits`: every bound a transport enforces, with defaults sized for SIP on the open internet.
//!
//! One struct shared by all transports so that a user tunes them in one place. The codec reads
//! the size limits; transports read the counts and timeouts.

use std::time::Duration;

/// Bounds on memory, connections and time. Every field is a knob; `Default` gives sane values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest message (start line + headers + body) accepted or sent, in bytes.
    /// Default 65,535 (the largest UDP payload SIP commonly sees).
    pub max_message_size: usize,
    /// Largest header block (start line through the empty line), in bytes. Default 32 KiB.
    pub max_header_size: usize,
    /// Longest single line in the header block, in bytes. Default 8 KiB.
    pub max_line_length: usize,
    /// Largest body, in bytes. Default 65,535.
    pub max_body_size: usize,
    /// Most simultaneous connections per transport (inbound + outbound). Default 16,384.
    pub max_connections: usize,
    /// Most simultaneous inbound connections from one remote IP. Default 1,024. With PROXY
    /// protocol on, the IP is the client's as the header gives it, not the balancer's.
    pub max_connections_per_ip: usize,
    /// A connection with no traffic in either direction for this long is closed. Default 300 s.
    pub idle_timeout: Duration,
    /// Time allowed for a TLS or WebSocket handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// Most TLS/WebSocket handshakes in progress at once per listener. Default 256.
    pub max_concurrent_handshakes: usize,
    /// Time allowed from the first byte of a message to its last, header block and body
    /// (slowloris): on a stream connection and for a WebSocket message. The timer starts over
    /// for each message. Default 10 s.
    pub header_read_timeout: Duration,
    /// Time allowed to open an outbound connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Time a single write may block before the connection is given up. Default 10 s.
    pub write_timeout: Duration,
    /// Messages queued per connection for writing before `send_message` fails. Default 1,024.
    pub write_queue_depth: usize,
    /// Bytes of messages queued per connection for writing (accepted and not yet written)
    /// before a send fails with the recoverable `Error::WriteQueueFull`, the connection
    /// staying open. Default 1 MiB.
    ///
    /// The message count alone lets a peer that stops reading hold up to `write_queue_depth`
    /// × `max_message_size` (64 MiB at the defaults) per connection until `write_timeout`
    /// gives it up. 1 MiB still holds a burst of 16 messages of the largest size (a flood of
    /// large NOTIFYs or INVITEs to a peer that reads a little late); Kamailio, sending only
    /// what it forwards, caps it at 32 KiB (`tcp_conn_wq_max`). What the kernel's socket
    /// buffer has taken no longer counts.
    ///
    /// A message larger than the budget is still accepted on an empty queue, so that a budget
    /// below `max_message_size` cannot make a message impossible to send; the queue then holds
    /// at most one such message.
    pub max_write_queue_bytes: usize,
    /// Capacity of the event channel to the application. Default 8,192.
    pub event_queue_depth: usize,
    /// Time `close()` waits for queued writes to drain. Default 2 s.
    pub close_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            max_header_size: 32 * 1024,
            max_line_length: 8 * 1024,
            max_body_size: 65_535,
            max_connections: 16_384,
            max_connections_per_ip: 1_024,
            idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(10),
            max_concurrent_handshakes: 256,
            header_read_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            write_queue_depth: 1_024,
            max_write_queue_bytes: 1024 * 1024,
            event_queue_depth: 8_192,
            close_grace: Duration::from_secs(2),
        }
    }
}

impl Limits {
    /// Starts from the defaults; chain the `with_*` setters or assign fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest capacity a bounded queue or permit pool can have: Tokio's
    /// `Semaphore::MAX_PERMITS` (`usize::MAX >> 3`), above which `mpsc::channel` and
    /// `Semaphore::new` panic.
    pub const MAX_CAPACITY: usize = usize::MAX >> 3;

    /// `n` as a capacity every bounded queue and permit pool accepts: at least 1 (a channel
    /// of 0 panics) and at most [`MAX_CAPACITY`](Self::MAX_CAPACITY). Transports size their
    /// queues and semaphores from the count knobs (`event_queue_depth`,
    /// `write_queue_depth`, `max_concurrent_handshakes`) through this, so no value of a
    /// knob can panic.
    pub fn capacity(n: usize) -> usize {
        n.clamp(1, Self::MAX_CAPACITY)
    }
}

macro_rules! setters {
    ($($(#[$m:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl Limits {
            $($(#[$m])* pub fn $name(mut self, v: $ty) -> Self { self.$field = v; self })*
        }
    };
}

setters! {
    /// Sets [`Limits::max_message_size`].
    with_max_message_size: max_message_size: usize;
    /// Sets [`Limits::max_header_size`].
    with_max_header_size: max_header_size: usize;
    /// Sets [`Limits::max_line_length`].
    with_max_line_length: max_line_length: usize;
    /// Sets [`Limits::max_body_size`].
    with_max_body_size: max_body_size: usize;
    /// Sets [`Limits::max_connections`].
    with_max_connections: max_connections: usize;
    /// Sets [`Limits::max_connections_per_ip`].
    with_max_connections_per_ip: max_connections_per_ip: usize;
    /// Sets [`Limits::idle_timeout`].
    with_idle_timeout: idle_timeout: Duration;
    /// Sets [`Limits::handshake_timeout`].
    with_handshake_timeout: handshake_timeout: Duration;
    /// Sets [`Limits::max_concurrent_handshakes`].
    with_max_concurrent_handshakes: max_concurrent_handshakes: usize;
    /// Sets [`Limits::header_read_timeout`].
    with_header_read_timeout: header_read_timeout: Duration;
    /// Sets [`Limits::connect_timeout`].
    with_connect_timeout: connect_timeout: Duration;
    /// Sets [`Limits::write_timeout`].
    with_write_timeout: write_timeout: Duration;
    /// Sets [`Limits::write_queue_depth`].
    with_write_queue_depth: write_queue_depth: usize;
    /// Sets [`Limits::max_write_queue_bytes`].
    with_max_write_queue_bytes: max_write_queue_bytes: usize;
    /// Sets [`Limits::event_queue_depth`].
    with_event_queue_depth: event_queue_depth: usize;
    /// Sets [`Limits::close_grace`].
    with_close_grace: close_grace: Duration;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_together() {
        let l = Limits::default();
        assert!(l.max_header_size <= l.max_message_size);
        assert!(l.max_line_length <= l.max_header_size);
        assert!(l.max_message_size >= 65_507, "a full UDP datagram must fit");
        assert!(
            l.max_write_queue_bytes >= 8 * l.max_message_size,
            "the write queue holds a burst of the largest messages"
        );
        let l = Limits::new()
            .with_max_connections(3)
            .with_idle_timeout(Duration::from_secs(1));
        assert_eq!(l.max_connections, 3);
        assert_eq!(l.idle_timeout, Duration::from_secs(1));
    }
}
