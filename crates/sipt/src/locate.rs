//! Where `ping` and `bench` send: the target URI located as RFC 3263 says (NAPTR → SRV →
//! A/AAAA through the facade's resolver; numeric hosts and explicit ports short-cut it), with
//! `--resolver IP:PORT` sending the DNS queries to that server instead of the system's.

use std::net::{IpAddr, SocketAddr};

use sip_transport::dns::{SipResolver, SipResolverConfig};
use sip_transport::{Destination, TargetUri, TransportKind};

use crate::net;
use crate::target::Target;

/// The first target of the URI: transport, destination and our local address towards it.
pub(crate) struct Aim {
    pub(crate) kind: TransportKind,
    pub(crate) dest: Destination,
    pub(crate) local_ip: IpAddr,
}

/// Locates `target`. Errors are for the user (exit code 2).
pub(crate) async fn locate(target: &Target, resolver: Option<SocketAddr>) -> Result<Aim, String> {
    let (kind, addr) = match target.ip() {
        // RFC 3263 §4.1/§4.2: a numeric host needs no DNS.
        Some(ip) => {
            let kind = target.transport_or_default();
            (
                kind,
                SocketAddr::new(ip, target.port.unwrap_or(kind.default_port())),
            )
        }
        None => {
            let uri = TargetUri::parse(&target.request_uri())
                .map_err(|e| format!("cannot use {}: {e}", target.request_uri()))?;
            let mut cfg = SipResolverConfig::default();
            if let Some(ns) = resolver {
                cfg = cfg.with_nameserver(ns);
            }
            let dns =
                SipResolver::new(cfg).map_err(|e| format!("cannot start the resolver: {e}"))?;
            let found = dns
                .resolve(&uri)
                .await
                .map_err(|e| format!("cannot resolve {}: {e}", target.host))?;
            let first = found
                .first()
                .ok_or_else(|| format!("cannot resolve {}: no usable target", target.host))?;
            (first.kind, first.addr)
        }
    };
    let mut dest = Destination::new(addr);
    if target.ip().is_none() {
        // RFC 5922 §4: verify the certificate against the SIP domain, not the SRV target.
        dest = dest.with_server_name(target.host.as_str());
    }
    if let Some(r) = &target.resource {
        dest = dest.with_resource(r.as_str());
    }
    Ok(Aim {
        kind,
        dest,
        local_ip: net::local_ip_towards(addr),
    })
}
