//! Turning what rustls and tokio-rustls report into sip-transport's typed errors.
//!
//! Certificate problems are not recoverable (`Error::TlsCertificate`): ours rejected by the
//! peer (it says so with an alert) as much as theirs rejected by us. Other handshake failures
//! are `Error::TlsHandshake`, socket failures `Error::Io`; both recoverable. The handshake
//! timeout itself is applied, and reported, by the stream machinery.

use std::io;
use std::net::SocketAddr;

use rustls::{AlertDescription, CertificateError};
use sip_transport_api::{CertificateProblem, Error};

/// Maps an I/O error from a TLS stream (handshake or later) for the connection to `peer`.
/// `expected_name` is the server name we verified against, when we are the client.
///
/// A `rustls::Error` inside the I/O error becomes `Error::TlsCertificate` (certificate
/// problems, ours or theirs: not recoverable) or `Error::TlsHandshake`; anything else is
/// `Error::Io`. Public, as [`map_handshake_error`](crate::map_handshake_error), so that other
/// transports running rustls over their own streams (WSS) report the same errors.
pub fn map_io_error(err: io::Error, peer: SocketAddr, expected_name: Option<&str>) -> Error {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls {
        Some(tls) => map_tls_error(tls, peer, expected_name),
        None => Error::Io { peer, source: err },
    }
}

/// Maps a rustls error for the connection to `peer`.
pub(crate) fn map_tls_error(
    err: rustls::Error,
    peer: SocketAddr,
    expected_name: Option<&str>,
) -> Error {
    let reason = match &err {
        rustls::Error::InvalidCertificate(c) => certificate_problem(c, expected_name),
        // We asked for a client certificate (mandatory) and none came.
        rustls::Error::NoCertificatesPresented => CertificateProblem::ClientCertificateRequired,
        rustls::Error::AlertReceived(alert) if is_certificate_alert(*alert) => {
            CertificateProblem::RejectedByPeer {
                alert: format!("{alert:?}"),
            }
        }
        _ => {
            return Error::TlsHandshake {
                peer,
                source: Box::new(err),
            };
        }
    };
    Error::TlsCertificate { peer, reason }
}

/// Alerts a peer sends when it refuses our certificate, or our lack of one
/// (RFC 8446 §6.2, RFC 5246 §7.2.2).
fn is_certificate_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateRequired
            | AlertDescription::AccessDenied
            | AlertDescription::BadCertificateStatusResponse
    )
}

fn certificate_problem(err: &CertificateError, expected_name: Option<&str>) -> CertificateProblem {
    match err {
        CertificateError::UnknownIssuer => CertificateProblem::UnknownIssuer,
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            CertificateProblem::Expired
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            CertificateProblem::NotYetValid
        }
        CertificateError::NotValidForNameContext { expected, .. } => {
            CertificateProblem::NameMismatch {
                expected: expected.to_str().into_owned(),
            }
        }
        CertificateError::NotValidForName => CertificateProblem::NameMismatch {
            expected: expected_name.unwrap_or("?").to_owned(),
        },
        CertificateError::Revoked => CertificateProblem::Revoked,
        other => CertificateProblem::Other(describe(other)),
    }
}

/// Words for the certificate problems `CertificateProblem` has no variant for, saying what is
/// wrong and, where it is a common mistake, how to mend it. The rest as rustls names them.
fn describe(err: &CertificateError) -> String {
    let text = match err {
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            // `openssl req -x509` makes CA:TRUE certificates by default: a frequent surprise.
            Some(webpki::Error::CaUsedAsEndEntity) => {
                "the certificate is a CA certificate (basicConstraints CA:TRUE) used as the \
                 server's own: use a leaf certificate (CA:FALSE) signed by a CA, e.g. \
                 `openssl req -x509 ... -addext basicConstraints=critical,CA:FALSE`"
            }
            Some(webpki::Error::EndEntityUsedAsCa) => {
                "a certificate in the chain signs another but is not a CA certificate \
                 (basicConstraints CA:FALSE or missing)"
            }
            _ => return format!("{err:?}"),
        },
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate's extended key usage does not allow this use (TLS server or \
             client authentication)"
        }
        CertificateError::BadSignature => "a signature in the certificate chain does not verify",
        CertificateError::BadEncoding => "the certificate is malformed (bad DER)",
        _ => return format!("{err:?}"),
    };
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:5061".parse().expect("addr")
    }

    fn wrapped(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn certificate_errors_are_typed_and_final() {
        let cases = [
            (
                CertificateError::UnknownIssuer,
                CertificateProblem::UnknownIssuer,
            ),
            (CertificateError::Expired, CertificateProblem::Expired),
            (
                CertificateError::NotValidYet,
                CertificateProblem::NotYetValid,
            ),
            (CertificateError::Revoked, CertificateProblem::Revoked),
            (
                CertificateError::NotValidForName,
                CertificateProblem::NameMismatch {
                    expected: "sip.example.com".into(),
                },
            ),
        ];
        for (c, want) in cases {
            let e = map_io_error(
                wrapped(rustls::Error::InvalidCertificate(c)),
                peer(),
                Some("sip.example.com"),
            );
            match &e {
                Error::TlsCertificate { reason, .. } => assert_eq!(reason, &want),
                other => panic!("{other:?}"),
            }
            assert!(!e.is_recoverable());
        }
        let e = map_tls_error(rustls::Error::NoCertificatesPresented, peer(), None);
        assert!(matches!(
            e,
            Error::TlsCertificate {
                reason: CertificateProblem::ClientCertificateRequired,
                ..
            }
        ));
    }

    #[test]
    fn alerts_and_other_failures() {
        let e = map_tls_error(
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
            peer(),
            None,
        );
        match e {
            Error::TlsCertificate {
                reason: CertificateProblem::RejectedByPeer { alert },
                ..
            } => assert_eq!(alert, "CertificateRequired"),
            other => panic!("{other:?}"),
        }
        let e = map_tls_error(
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
            peer(),
            None,
        );
        assert!(matches!(e, Error::TlsHandshake { .. }) && e.is_recoverable());
        let e = map_io_error(
            io::Error::from(io::ErrorKind::ConnectionReset),
            peer(),
            None,
        );
        assert!(matches!(e, Error::Io { .. }) && e.is_recoverable());
    }

    /// A CA certificate served as the server's own (the `openssl req -x509` default) is named
    /// as such, with the mend, not as rustls's debug text.
    #[test]
    fn ca_as_end_entity_is_explained() {
        let other = rustls::OtherError(std::sync::Arc::new(webpki::Error::CaUsedAsEndEntity));
        let problem = certificate_problem(&CertificateError::Other(other), None);
        let CertificateProblem::Other(text) = problem else {
            panic!("{problem:?}")
        };
        assert!(
            text.contains("CA certificate") && text.contains("CA:FALSE"),
            "{text}"
        );
        let purpose = certificate_problem(&CertificateError::InvalidPurpose, None);
        assert!(
            purpose.to_string().contains("extended key usage"),
            "{purpose}"
        );
    }
}
