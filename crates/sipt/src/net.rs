//! Binding transports by kind and finding the local address to use towards a target.
//!
//! The one place in `sipt` that knows each protocol crate's constructor and the TLS settings
//! (server identity, client verification) the command line gives.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use sip_transport::tcp::{ProxyProtocolConfig, TcpConfig, TcpTransport};
use sip_transport::tls::{PemSource, TlsConfig, TlsTransport};
use sip_transport::udp::{UdpConfig, UdpTransport};
use sip_transport::ws::{WsConfig, WsScheme, WsTransport};
use sip_transport::{Dscp, Limits, Transport, TransportEvent, TransportKind};
use tokio::sync::mpsc::Receiver;

/// A bound transport and its events.
pub(crate) type Bound = (Arc<dyn Transport>, Receiver<TransportEvent>);

/// A certificate chain and key, PEM.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) chain_pem: Vec<u8>,
    pub(crate) key_pem: Vec<u8>,
}

/// TLS settings from the command line.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    /// Server identity for tls/wss listeners.
    pub(crate) identity: Option<Identity>,
    /// Further server identities, chosen by SNI.
    pub(crate) sni_identities: Vec<Identity>,
    /// `--insecure`: accept any server certificate.
    pub(crate) insecure: bool,
    /// `--ca PEM`: trust these roots instead of the web PKI's.
    pub(crate) ca: Option<PathBuf>,
}

/// Everything needed to bind one transport.
#[derive(Clone)]
pub(crate) struct BindOptions {
    pub(crate) limits: Limits,
    pub(crate) tls: TlsOptions,
    /// Listen for inbound connections (servers) or only dial (clients).
    pub(crate) listen: bool,
    /// PROXY protocol on tcp, tls, ws and wss listeners.
    pub(crate) proxy: Option<ProxyProtocolConfig>,
    /// DSCP mark of every socket (`--dscp`).
    pub(crate) dscp: Option<Dscp>,
}

impl BindOptions {
    pub(crate) fn client(tls: TlsOptions) -> Self {
        BindOptions {
            limits: Limits::default(),
            tls,
            listen: false,
            proxy: None,
            dscp: None,
        }
    }
}

fn tls_config(addr: SocketAddr, o: &BindOptions) -> TlsConfig {
    let mut cfg = if o.listen {
        TlsConfig::default()
    } else {
        TlsConfig::client()
    };
    cfg = cfg
        .with_bind(addr)
        .with_limits(o.limits.clone())
        .with_dscp(o.dscp);
    if o.listen {
        cfg.stream.proxy_protocol = o.proxy.clone();
    }
    if let Some(id) = &o.tls.identity {
        cfg = cfg.with_certificate(
            PemSource::memory(&id.chain_pem),
            PemSource::memory(&id.key_pem),
        );
    }
    for id in &o.tls.sni_identities {
        cfg = cfg.with_sni_certificate(
            PemSource::memory(&id.chain_pem),
            PemSource::memory(&id.key_pem),
        );
    }
    if let Some(ca) = &o.tls.ca {
        cfg = cfg.with_server_ca_file(ca.clone());
    }
    if o.tls.insecure {
        cfg = cfg.dangerous_accept_any_server_certificate();
    }
    cfg
}

/// Binds a transport of `kind` on `addr`.
pub(crate) async fn bind(
    kind: TransportKind,
    addr: SocketAddr,
    o: &BindOptions,
) -> Result<Bound, String> {
    let e = |e: sip_transport::Error| e.to_string();
    match kind {
        TransportKind::Udp => {
            let cfg = UdpConfig::default()
                .with_bind(addr)
                .with_limits(o.limits.clone())
                .with_dscp(o.dscp);
            let (t, rx) = UdpTransport::bind(cfg).map_err(e)?;
            Ok((t as Arc<dyn Transport>, rx))
        }
        TransportKind::Tcp => {
            let cfg = TcpConfig::default()
                .with_bind(addr)
                .with_limits(o.limits.clone())
                .with_listen(o.listen)
                .with_proxy_protocol(o.proxy.clone().filter(|_| o.listen))
                .with_dscp(o.dscp);
            let (t, rx) = TcpTransport::bind(cfg).await.map_err(e)?;
            Ok((t as Arc<dyn Transport>, rx))
        }
        TransportKind::Tls => {
            let (t, rx) = TlsTransport::bind(tls_config(addr, o)).await.map_err(e)?;
            Ok((t as Arc<dyn Transport>, rx))
        }
        TransportKind::Ws | TransportKind::Wss => {
            let mut cfg = WsConfig::new(addr)
                .with_listen(o.listen)
                .with_limits(o.limits.clone())
                .with_proxy_protocol(o.proxy.clone().filter(|_| o.listen))
                .with_dscp(o.dscp);
            let tls = tls_config(addr, o);
            if kind == TransportKind::Wss {
                cfg = cfg.with_scheme(WsScheme::Wss);
                if o.listen {
                    let server = tls.build_server_config().map_err(e)?.ok_or_else(|| {
                        "a wss listener needs a certificate (--cert/--key)".to_owned()
                    })?;
                    cfg = cfg.with_server_tls(server);
                }
                cfg = cfg.with_client_tls_config(tls.build_client_config().map_err(e)?);
            }
            let (t, rx) = WsTransport::bind(cfg).map_err(e)?;
            Ok((t as Arc<dyn Transport>, rx))
        }
    }
}

/// Binds `sockets` UDP transports on one address with `SO_REUSEPORT` (the first one picks the
/// port when `addr` has port 0): the kernel spreads flows over them by address hash, and each
/// has its own receive task and event channel, so nothing on the receive path is shared.
pub(crate) fn bind_udp_group(
    addr: SocketAddr,
    sockets: usize,
    o: &BindOptions,
) -> Result<Vec<Bound>, String> {
    let mut out: Vec<Bound> = Vec::with_capacity(sockets);
    let mut addr = addr;
    for _ in 0..sockets.max(1) {
        let cfg = UdpConfig::default()
            .with_bind(addr)
            .with_limits(o.limits.clone())
            .with_reuse_port(sockets > 1)
            .with_dscp(o.dscp);
        let (t, rx) = UdpTransport::bind(cfg).map_err(|e| e.to_string())?;
        addr = t.local_addr();
        out.push((t as Arc<dyn Transport>, rx));
    }
    Ok(out)
}

/// A self-signed certificate for localhost and the loopback addresses.
pub(crate) fn self_signed() -> Result<Identity, String> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot make a certificate: {e}"))?;
    Ok(Identity {
        chain_pem: ck.cert.pem().into_bytes(),
        key_pem: ck.signing_key.serialize_pem().into_bytes(),
    })
}

/// SHA-256 fingerprint (colon-separated hex, as `openssl x509 -fingerprint -sha256` prints)
/// of the first certificate in a PEM chain.
pub(crate) fn fingerprint(chain_pem: &[u8]) -> Option<String> {
    let der = CertificateDer::pem_slice_iter(chain_pem).next()?.ok()?;
    let digest = Sha256::digest(der.as_ref());
    Some(
        digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// `e` for the user, with a hint on the flags that help when it is a server certificate we
/// did not accept. One line.
pub(crate) fn explain(e: &sip_transport::Error) -> String {
    use sip_transport::{CertificateProblem, Error};
    let hint = match e {
        Error::TlsCertificate { reason, .. } => match reason {
            // Our certificate, not theirs: sipt's clients present none.
            CertificateProblem::RejectedByPeer { .. }
            | CertificateProblem::ClientCertificateRequired => None,
            CertificateProblem::UnknownIssuer | CertificateProblem::Other(_) => Some(
                "a self-signed server (such as `sipt serve` without --cert) needs --insecure, \
                 otherwise pass --ca FILE with the CA that signed the server's certificate",
            ),
            _ => Some("--insecure skips this check (for tests only)"),
        },
        _ => None,
    };
    match hint {
        Some(h) => format!("{e}; hint: {h}"),
        None => e.to_string(),
    }
}

/// The local IP the OS would use to reach `dest` (no packet is sent).
pub(crate) fn local_ip_towards(dest: SocketAddr) -> IpAddr {
    let unspecified: SocketAddr = if dest.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    std::net::UdpSocket::bind(unspecified)
        .and_then(|s| {
            s.connect(dest)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(unspecified.ip())
}

/// The Via sent-by (and From host) for requests leaving from `addr`. A client stream
/// transport has no port of its own before it dials (its connection's port is the kernel's
/// pick), so its sent-by names the host only: the responses come back over the connection
/// (RFC 3261 §18.2.2), and a port of 0 would be invalid (`response_target` refuses it).
pub(crate) fn sent_by(addr: SocketAddr) -> String {
    match (addr.port(), addr.ip()) {
        (0, IpAddr::V6(v6)) => format!("[{v6}]"),
        (0, ip) => ip.to_string(),
        _ => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_by_has_no_port_0() {
        assert_eq!(
            sent_by("127.0.0.1:5060".parse().expect("addr")),
            "127.0.0.1:5060"
        );
        assert_eq!(sent_by("127.0.0.1:0".parse().expect("addr")), "127.0.0.1");
        assert_eq!(sent_by("[::1]:0".parse().expect("addr")), "[::1]");
        assert_eq!(sent_by("[::1]:7".parse().expect("addr")), "[::1]:7");
    }

    #[test]
    fn certificate_errors_carry_a_hint() {
        use sip_transport::{CertificateProblem, Error};
        let peer: SocketAddr = "127.0.0.1:5061".parse().expect("addr");
        let unknown = explain(&Error::TlsCertificate {
            peer,
            reason: CertificateProblem::UnknownIssuer,
        });
        assert!(unknown.contains("needs --insecure"), "{unknown}");
        assert!(unknown.contains("--ca FILE"), "{unknown}");
        assert!(!unknown.contains('\n'), "{unknown}");
        let ours = explain(&Error::TlsCertificate {
            peer,
            reason: CertificateProblem::RejectedByPeer {
                alert: "BadCertificate".into(),
            },
        });
        assert!(!ours.contains("hint"), "{ours}");
    }

    #[test]
    fn fingerprint_of_self_signed() {
        let id = self_signed().expect("cert");
        let fp = fingerprint(&id.chain_pem).expect("fingerprint");
        assert_eq!(fp.len(), 32 * 3 - 1);
    }
}
