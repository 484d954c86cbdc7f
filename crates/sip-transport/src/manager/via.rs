//! Rewriting the transport of a request's top Via, for RFC 3261 §18.1.1: "if this causes a
//! change in the transport protocol from the one indicated in the top Via, the value in the
//! top Via MUST be changed" — whether the change comes from the UDP size rule, from RFC 3263
//! selection, or from failover to a target of another transport.
//!
//! Edits the bytes once (the token only; sent-by, branch and other parameters are kept) and
//! frames the result again. Pure: no sockets.

use sip_transport_api::bytes::Bytes;
use sip_transport_api::{Error, Limits, Message, Result, TransportKind};

/// The request as it must go over `kind`: `Some` with the top Via's transport token changed
/// when it names another transport, `None` when `message` goes as it is (the Via already
/// names `kind`, in any case; a response, whose Via is the request's and is not ours to
/// change; a request without a readable top Via, which is not ours to judge).
///
/// The sent-by is kept as the caller wrote it: the manager does not know the address a new
/// connection will leave from, and responses to a stream request come back over its
/// connection. The branch is kept too: the caller's transaction layer matches responses by it
/// (RFC 3263 §4.3's advice to send a failed-over request as a new transaction, with a new
/// branch, is the transaction layer's to follow, not the transport's).
pub(crate) fn for_transport(message: &Message, kind: TransportKind) -> Result<Option<Message>> {
    if !message.is_request() {
        return Ok(None);
    }
    match message.top_via() {
        Ok(via) if via.transport_kind() != Some(kind) => {
            with_top_via_transport(message, kind).map(Some)
        }
        _ => Ok(None),
    }
}

/// Returns `message` with its top Via's transport token replaced by `kind`'s (`TCP`, ...).
/// A message whose top Via already names `kind` is returned as is.
fn with_top_via_transport(message: &Message, kind: TransportKind) -> Result<Message> {
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
    fn for_transport_rewrites_requests_only_when_the_kind_differs() {
        let req = msg(
            "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/udp h:5070;branch=z9hG4bK7\r\n\
             Content-Length: 0\r\n\r\n",
        );
        assert_eq!(for_transport(&req, TransportKind::Udp).expect("ok"), None);
        let tcp = for_transport(&req, TransportKind::Tcp)
            .expect("ok")
            .expect("rewritten");
        let v = tcp.top_via().expect("via");
        assert_eq!(
            (v.transport(), v.host(), v.port()),
            ("TCP", "h", Some(5070))
        );
        assert_eq!(v.branch(), Some("z9hG4bK7"));
        // An unknown token differs from every kind we send over.
        let sctp = msg(
            "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/SCTP h;branch=z9hG4bK8\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let udp = for_transport(&sctp, TransportKind::Udp)
            .expect("ok")
            .expect("rewritten");
        assert_eq!(udp.top_via().expect("via").transport(), "UDP");
        // Responses follow the request's Via; a request without a Via is left alone.
        let resp = msg("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK7\r\n\
             Content-Length: 0\r\n\r\n");
        assert_eq!(for_transport(&resp, TransportKind::Tcp).expect("ok"), None);
        let bare = msg("OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(for_transport(&bare, TransportKind::Tcp).expect("ok"), None);
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
