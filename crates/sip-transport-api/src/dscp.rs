//! `Dscp`: the Differentiated Services code point (RFC 2474 §3) a transport marks its SIP
//! signalling packets with, as Kamailio's `tos` and PJSIP's `pj_qos_params` do.
//!
//! Plain data with its range check; the transports set it on their sockets (`IP_TOS`,
//! `IPV6_TCLASS`). Nothing here touches a socket.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A DSCP value, 0 to 63: the upper six bits of the IPv4 TOS byte and of the IPv6 traffic
/// class (RFC 2474 §3; the low two bits are ECN, RFC 3168, and stay the kernel's).
///
/// Expressed as a DSCP rather than a raw TOS byte because that is what network policies name
/// (`CS3`, `EF`) and because a TOS byte could set ECN bits by accident. Kamailio's
/// `tos=0x60` is `Dscp::CS3` (`0x60 >> 2 = 24`); [`Dscp::tos`] gives the byte.
///
/// ```
/// use sip_transport_api::Dscp;
///
/// assert_eq!(Dscp::new(24)?, Dscp::CS3);
/// assert_eq!(Dscp::CS3.tos(), 0x60);
/// assert_eq!("ef".parse::<Dscp>()?, Dscp::EF);
/// assert!(Dscp::new(64).is_err()); // a typed error, not a panic
/// # Ok::<(), sip_transport_api::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dscp(u8);

/// Class selector and per-hop behaviour names with their code points (RFC 2474 §4.2.2,
/// RFC 2597 §6, RFC 3246).
const NAMES: [(&str, u8); 21] = [
    ("cs0", 0),
    ("cs1", 8),
    ("cs2", 16),
    ("cs3", 24),
    ("cs4", 32),
    ("cs5", 40),
    ("cs6", 48),
    ("cs7", 56),
    ("af11", 10),
    ("af12", 12),
    ("af13", 14),
    ("af21", 18),
    ("af22", 20),
    ("af23", 22),
    ("af31", 26),
    ("af32", 28),
    ("af33", 30),
    ("af41", 34),
    ("af42", 36),
    ("af43", 38),
    ("ef", 46),
];

impl Dscp {
    /// Class Selector 3 (24, TOS byte `0x60`): RFC 4594 §3.2's class for signalling, the
    /// usual mark for SIP.
    pub const CS3: Dscp = Dscp(24);
    /// Class Selector 5 (40, TOS byte `0xa0`): what some vendors use for call signalling.
    pub const CS5: Dscp = Dscp(40);
    /// Expedited Forwarding (46, TOS byte `0xb8`, RFC 3246): for media; some networks put
    /// signalling there too.
    pub const EF: Dscp = Dscp(46);
    /// The largest code point (six bits).
    pub const MAX: u8 = 63;

    /// A code point from its number. Fails with `Error::InvalidConfig` above 63 (a DSCP is
    /// six bits; a TOS byte such as `0x60` is `value << 2`, see [`Dscp::from_tos`]).
    pub fn new(value: u8) -> Result<Dscp> {
        if value > Self::MAX {
            // A multiple of 4 is likely a TOS byte (Kamailio's `tos=0x60`): say which DSCP.
            let hint = if value.is_multiple_of(4) {
                format!(
                    "; {value:#04x} looks like a TOS byte, which is DSCP {}",
                    value >> 2
                )
            } else {
                String::new()
            };
            return Err(Error::InvalidConfig {
                reason: format!(
                    "DSCP {value} is out of range: a DSCP is 6 bits, 0..=63 (24 = CS3, 46 = EF); \
                     a TOS byte is the DSCP shifted left by 2{hint}"
                ),
            });
        }
        Ok(Dscp(value))
    }

    /// The code point of a TOS / traffic-class byte (Kamailio's `tos`: `0x60` is CS3). Fails
    /// with `Error::InvalidConfig` when the byte has ECN bits (the low two) set.
    pub fn from_tos(tos: u8) -> Result<Dscp> {
        if tos & 0b11 != 0 {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "TOS byte {tos:#04x} sets ECN bits (the low two, RFC 3168); a DSCP mark \
                     leaves them to the kernel"
                ),
            });
        }
        Ok(Dscp(tos >> 2))
    }

    /// The code point, 0 to 63.
    pub const fn value(self) -> u8 {
        self.0
    }

    /// The TOS / traffic-class byte that carries it (`value << 2`, ECN bits zero): what
    /// `IP_TOS` and `IPV6_TCLASS` are set to.
    pub const fn tos(self) -> u8 {
        self.0 << 2
    }
}

impl TryFrom<u8> for Dscp {
    type Error = Error;
    fn try_from(value: u8) -> Result<Dscp> {
        Dscp::new(value)
    }
}

/// A number (`24`, `0x18`) or a name, case-insensitive: `cs0`..`cs7`, `af11`..`af43`, `ef`.
impl FromStr for Dscp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Dscp> {
        let t = s.trim();
        if let Some(&(_, v)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
            return Ok(Dscp(v));
        }
        let number = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u8::from_str_radix(hex, 16),
            None => t.parse::<u8>(),
        };
        match number {
            Ok(v) => Dscp::new(v),
            Err(_) => Err(Error::InvalidConfig {
                reason: format!(
                    "{s:?} is not a DSCP: give 0..=63 or a name (cs0-cs7, af11-af43, ef)"
                ),
            }),
        }
    }
}

/// The name when it has one (`CS3`, `EF`), else the number.
impl fmt::Display for Dscp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMES.iter().find(|(_, v)| *v == self.0) {
            Some((name, _)) => f.write_str(&name.to_ascii_uppercase()),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_is_checked_without_panicking() {
        assert_eq!(Dscp::new(0).map(Dscp::value).ok(), Some(0));
        assert_eq!(Dscp::new(63).map(Dscp::tos).ok(), Some(0xfc));
        for bad in [64u8, 96, 255] {
            let e = Dscp::new(bad).expect_err("out of range");
            assert!(matches!(e, Error::InvalidConfig { .. }), "{e:?}");
            assert!(e.to_string().contains(&bad.to_string()), "{e}");
            assert!(!e.is_recoverable());
        }
        assert!(Dscp::try_from(64u8).is_err());
        assert_eq!(Dscp::try_from(46u8).ok(), Some(Dscp::EF));
    }

    #[test]
    fn a_tos_byte_given_as_a_dscp_is_named() {
        let reason = |v: u8| match Dscp::new(v) {
            Err(Error::InvalidConfig { reason }) => reason,
            other => panic!("{v}: {other:?}"),
        };
        assert!(
            reason(0x60).contains("0x60 looks like a TOS byte, which is DSCP 24"),
            "{}",
            reason(0x60)
        );
        assert!(!reason(65).contains("looks like"), "{}", reason(65));
    }

    #[test]
    fn tos_byte_both_ways() {
        assert_eq!(Dscp::CS3.tos(), 0x60);
        assert_eq!(Dscp::EF.tos(), 0xb8);
        assert_eq!(Dscp::CS5.tos(), 0xa0);
        assert_eq!(Dscp::from_tos(0x60).ok(), Some(Dscp::CS3));
        assert!(Dscp::from_tos(0x61).is_err());
    }

    #[test]
    fn parses_numbers_and_names() {
        assert_eq!("24".parse::<Dscp>().ok(), Some(Dscp::CS3));
        assert_eq!(" 0x2e ".parse::<Dscp>().ok(), Some(Dscp::EF));
        assert_eq!("CS3".parse::<Dscp>().ok(), Some(Dscp::CS3));
        assert_eq!("af41".parse::<Dscp>().map(Dscp::value).ok(), Some(34));
        for bad in ["64", "-1", "cs8", "", "0x40", "lowdelay"] {
            assert!(bad.parse::<Dscp>().is_err(), "{bad:?}");
        }
        assert_eq!(Dscp::CS3.to_string(), "CS3");
        assert_eq!(Dscp::new(1).map(|d| d.to_string()).ok(), Some("1".into()));
        for (name, v) in NAMES {
            assert_eq!(
                Dscp::new(v).map(|d| d.to_string().to_lowercase()).ok(),
                Some(name.into())
            );
        }
    }
}
