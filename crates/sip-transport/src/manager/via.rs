//! Rewriting the transport of a request's top Via, for RFC 3261 §18.1.1: a request too large
//! for UDP goes over TCP, and "if this causes a change in the transport protocol from the one
//! indicated in the top Via, the value in the top Via MUST be changed".
//!
//! Edits the bytes once (the token only; sent-by and parameters are kept) and frames the
//! result again. Pure: no sockets.

use sip_transport_api::bytes::Bytes;
use sip_transport_api::{Error, Limits, Message, Result, TransportKind};

/// Returns `message` with its top Via's transport token replaced by `kind`'s (`TCP`, ...).
/// A message whose top Via already names `kind` is returned as is.
pub(crate) fn with_top_via_transport(message: &Message, kind: TransportKind) -> Result<Message> {
    let via = message.top_via()?;
    if via.transport_kind() == Some(kind) {
        return Ok(message.clone());
    }
    let token = via.transport();
    let buf = message.as_bytes();
    // The token is a slice of the message's own bytes: its offset is a pointer difference.
    let start = (token.as_ptr() as usize)
        .checked_sub(buf.as_ptr() as usize)
        .filter(|s| s + token.len() <= buf.len())
        .ok_or(Error::Malformed {
            reason: "Via transport is not inside the message",
        })?;
    let new = kind.via_token().as_bytes();
    let mut out = Vec::with_capacity(buf.len() + new.len());
    out.extend_from_slice(&buf[..start]);
    out.extend_from_slice(new);
    out.extend_from_slice(&buf[start + token.len()..]);
    // The message was framed before; only its length may have grown by a few bytes.
    let room = out.len() + 16;
    let limits = Limits::default()
        .with_max_message_size(room)
        .with_max_header_size(room)
        .with_max_line_length(room)
        .with_max_body_size(room);
    Message::parse_with(Bytes::from(out), &limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::from(s.to_owned())).expect("valid message")
    }

    #[test]
    fn rewrites_only_the_top_via_token() {
        let m = msg("MESSAGE sip:b@example.com SIP/2.0\r\n\
             v: SIP/2.0/udp 192.0.2.1:5060;branch=z9hG4bK1;rport\r\n\
             Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK0\r\n\
             Call-ID: c\r\nContent-Length: 4\r\n\r\nbody");
        let r = with_top_via_transport(&m, TransportKind::Tcp).expect("rewritten");
        let v = r.top_via().expect("via");
        assert_eq!(v.transport(), "TCP");
        assert_eq!(v.host(), "192.0.2.1");
        assert_eq!(v.port(), Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        let vias: Vec<String> = r
            .vias()
            .map(|v| v.expect("via").transport().to_owned())
            .collect();
        assert_eq!(vias, ["TCP", "UDP"]);
        assert_eq!(r.body().as_ref(), b"body");
        assert_eq!(r.len(), m.len());
        // Already TCP: unchanged.
        assert_eq!(
            with_top_via_transport(&r, TransportKind::Tcp).expect("same"),
            r
        );
    }

    #[test]
    fn longer_token_keeps_framing() {
        let m = msg(
            "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let r = with_top_via_transport(&m, TransportKind::Wss).expect("rewritten");
        assert_eq!(r.top_via().expect("via").transport(), "WSS");
        assert_eq!(r.len(), m.len());
        assert!(
            with_top_via_transport(&msg("OPTIONS sip:x SIP/2.0\r\n\r\n"), TransportKind::Tcp)
                .is_err()
        );
    }
}
