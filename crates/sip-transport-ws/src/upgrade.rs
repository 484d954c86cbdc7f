//! The HTTP side of the WebSocket upgrade for SIP (RFC 7118 §4.1): the listener's checks on
//! a client's upgrade request (subprotocol `sip`, request path, `Origin`) and the request our
//! client sends.
//!
//! Pure functions over `http` types: the handshake bytes themselves are tungstenite's.

use std::sync::Arc;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request as ClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};

use sip_transport_api::Destination;

use crate::WsScheme;

/// The WebSocket subprotocol RFC 7118 §4.1 registers for SIP.
pub const SIP_SUBPROTOCOL: &str = "sip";

/// Whether any `Sec-WebSocket-Protocol` value offers `sip`: the header may repeat and each value
/// is a comma-separated list (RFC 6455 §4.1); elements are trimmed and compared exactly, so
/// `sips` or `x-sip` is not `sip`.
pub fn offers_sip<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> bool {
    values.into_iter().any(|v| {
        v.split(|b| *b == b',')
            .any(|token| token.trim_ascii() == SIP_SUBPROTOCOL.as_bytes())
    })
}

/// The listener's upgrade policy, shared by every accepted connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpgradePolicy {
    /// Accepted request paths; empty: any.
    pub(crate) paths: Arc<[String]>,
    /// Accepted `Origin` values; empty: any.
    pub(crate) origins: Arc<[String]>,
}

impl UpgradePolicy {
    /// Checks one upgrade request and completes the `101` response (echoing `sip`), or builds
    /// the refusal: `404` for a path not served, `403` for an origin not allowed, `400` when
    /// `sip` is not offered (as Kamailio does). The error type is tungstenite's callback's.
    #[allow(clippy::result_large_err)]
    pub(crate) fn check(
        &self,
        req: &Request,
        mut resp: Response,
    ) -> Result<Response, ErrorResponse> {
        if !self.paths.is_empty() && !self.paths.iter().any(|p| p == req.uri().path()) {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                "no SIP WebSocket service at this path",
            ));
        }
        if !self.origins.is_empty() {
            let origin = req.headers().get(header::ORIGIN).map(|v| v.as_bytes());
            let allowed = origin.is_some_and(|o| {
                self.origins
                    .iter()
                    .any(|a| a.as_bytes().eq_ignore_ascii_case(o))
            });
            if !allowed {
                return Err(refusal(StatusCode::FORBIDDEN, "origin not allowed"));
            }
        }
        let offered = req
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .map(|v| v.as_bytes());
        if !offers_sip(offered) {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                "the WebSocket subprotocol \"sip\" is required (RFC 7118)",
            ));
        }
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SIP_SUBPROTOCOL),
        );
        Ok(resp)
    }
}

fn refusal(status: StatusCode, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(format!("{why}\r\n")));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SIP_SUBPROTOCOL),
    );
    r
}

/// The host our client names in the request URI and `Host` (and, for `wss`, the TLS server
/// name): the destination's name if it has one, else its IP address.
pub(crate) fn host_of(dest: &Destination) -> String {
    match &dest.server_name {
        Some(name) => name.to_string(),
        None => dest.addr.ip().to_string(),
    }
}

/// Builds the client's upgrade request for `dest`: `GET <resource>` with `Host`, a fresh key
/// and `Sec-WebSocket-Protocol: sip`. Fails on a name or resource that is not valid in a URI.
pub(crate) fn client_request(
    dest: &Destination,
    scheme: WsScheme,
    origin: Option<&str>,
) -> Result<ClientRequest, String> {
    let host = host_of(dest);
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let resource = dest.resource.as_deref().unwrap_or("/");
    let slash = if resource.starts_with('/') { "" } else { "/" };
    let uri = format!("{scheme}://{host}:{}{slash}{resource}", dest.addr.port());
    let mut req = uri
        .as_str()
        .into_client_request()
        .map_err(|e| format!("invalid WebSocket URI {uri:?}: {e}"))?;
    req.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SIP_SUBPROTOCOL),
    );
    if let Some(o) = origin {
        let v = HeaderValue::from_str(o).map_err(|e| format!("invalid Origin {o:?}: {e}"))?;
        req.headers_mut().insert(header::ORIGIN, v);
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(v: &[&str]) -> bool {
        offers_sip(v.iter().map(|s| s.as_bytes()))
    }

    #[test]
    fn subprotocol_tokens() {
        assert!(offers(&["sip"]));
        assert!(offers(&["foo, sip"]));
        assert!(offers(&["foo,sip ,bar"]));
        assert!(offers(&["foo", "sip"]));
        assert!(!offers(&["sips"]));
        assert!(!offers(&["x-sip, sipx"]));
        assert!(!offers(&["SIP"]));
        assert!(!offers(&[""]));
        assert!(!offers(&[]));
    }

    fn request(path: &str, protocol: Option<&str>, origin: Option<&str>) -> Request {
        let mut b = Request::builder().uri(path);
        if let Some(p) = protocol {
            b = b.header("Sec-WebSocket-Protocol", p);
        }
        if let Some(o) = origin {
            b = b.header("Origin", o);
        }
        b.body(()).expect("request")
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn policy_outcomes() {
        let open = UpgradePolicy::default();
        let ok = open
            .check(&request("/", Some("foo, sip"), None), Response::new(()))
            .expect("accepted");
        assert_eq!(ok.headers()["sec-websocket-protocol"], "sip");
        let no = open
            .check(&request("/", Some("sips"), None), Response::new(()))
            .expect_err("refused");
        assert_eq!(no.status(), StatusCode::BAD_REQUEST);

        let strict = UpgradePolicy {
            paths: Arc::from(vec!["/sip".to_owned()]),
            origins: Arc::from(vec!["https://good.example".to_owned()]),
        };
        let r = |p, o| strict.check(&request(p, Some("sip"), o), Response::new(()));
        assert_eq!(
            r("/other", Some("https://good.example"))
                .expect_err("404")
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            r("/sip", Some("https://evil.example"))
                .expect_err("403")
                .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            r("/sip", None).expect_err("403").status(),
            StatusCode::FORBIDDEN
        );
        assert!(r("/sip?x=1", Some("HTTPS://GOOD.example")).is_ok());
    }

    #[test]
    fn client_requests() {
        let d = Destination::new("[::1]:8080".parse().expect("addr"));
        let r = client_request(&d, WsScheme::Ws, None).expect("request");
        assert_eq!(r.uri().to_string(), "ws://[::1]:8080/");
        assert_eq!(r.headers()["sec-websocket-protocol"], "sip");
        let d = Destination::new("127.0.0.1:443".parse().expect("addr"))
            .with_server_name("proxy.example")
            .with_resource("ws?x=1");
        let r = client_request(&d, WsScheme::Wss, Some("https://a.example")).expect("request");
        assert_eq!(r.uri().to_string(), "wss://proxy.example:443/ws?x=1");
        assert_eq!(r.headers()["origin"], "https://a.example");
        let bad = Destination::new("127.0.0.1:1".parse().expect("addr")).with_server_name("a b");
        assert!(client_request(&bad, WsScheme::Ws, None).is_err());
    }
}
