use super::*;

const MAX: usize = 1024;

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

/// Builds a v2 header: command byte, family byte, address block, then `tlv` bytes.
fn v2(cmd: u8, fam: u8, addrs: &[u8], tlv: &[u8]) -> Vec<u8> {
    let mut b = V2_SIGNATURE.to_vec();
    b.push(cmd);
    b.push(fam);
    let len = u16::try_from(addrs.len() + tlv.len()).expect("len");
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(addrs);
    b.extend_from_slice(tlv);
    b
}

fn v4_block() -> Vec<u8> {
    let mut a = vec![192, 0, 2, 7, 10, 0, 0, 1];
    a.extend_from_slice(&40_000u16.to_be_bytes());
    a.extend_from_slice(&5060u16.to_be_bytes());
    a
}

#[test]
fn v1_tcp4_and_tcp6() {
    let h = b"PROXY TCP4 192.0.2.7 10.0.0.1 40000 5060\r\nOPTIONS sip:x SIP/2.0\r\n";
    let want_len = h.iter().position(|b| *b == b'\n').expect("lf") + 1;
    assert_eq!(
        parse(h, MAX),
        Ok(Parsed::Complete {
            len: want_len,
            addrs: ProxiedAddrs::Proxied {
                source: sa("192.0.2.7:40000"),
                destination: sa("10.0.0.1:5060"),
            }
        })
    );
    let h = b"PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n";
    assert_eq!(
        parse(h, MAX),
        Ok(Parsed::Complete {
            len: h.len(),
            addrs: ProxiedAddrs::Proxied {
                source: sa("[2001:db8::7]:1"),
                destination: sa("[2001:db8::1]:65535"),
            }
        })
    );
}

#[test]
fn v1_unknown_uses_real_peer() {
    let h = b"PROXY UNKNOWN\r\n";
    assert_eq!(
        parse(h, MAX),
        Ok(Parsed::Complete {
            len: h.len(),
            addrs: ProxiedAddrs::Local
        })
    );
    let h = b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n";
    assert!(matches!(
        parse(h, MAX),
        Ok(Parsed::Complete {
            addrs: ProxiedAddrs::Local,
            ..
        })
    ));
}

#[test]
fn v1_truncated_is_incomplete_at_every_split() {
    let h = b"PROXY TCP4 192.0.2.7 10.0.0.1 40000 5060\r\n";
    for cut in 0..h.len() {
        assert_eq!(parse(&h[..cut], MAX), Ok(Parsed::Incomplete), "cut {cut}");
    }
}

#[test]
fn v1_malformed() {
    for bad in [
        &b"PROXY TCP4 192.0.2.7 10.0.0.1 40000 5060\n"[..], // no CR
        b"PROXY TCP5 192.0.2.7 10.0.0.1 40000 5060\r\n",
        b"PROXY TCP4 2001:db8::1 10.0.0.1 40000 5060\r\n", // family mismatch
        b"PROXY TCP6 192.0.2.7 10.0.0.1 40000 5060\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 40000\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 40000 5060 extra\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 70000 5060\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 +4000 5060\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 04000 5060\r\n",
        b"PROXY TCP4 192.0.2.7  10.0.0.1 4000 5060\r\n",
        b"PROXY TCP4 host.example 10.0.0.1 4000 5060\r\n",
        b"PROXY \r\n",
    ] {
        assert_eq!(
            parse(bad, MAX),
            Err(HeaderError::BadV1),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn v1_oversized() {
    let mut h = b"PROXY TCP4 ".to_vec();
    h.resize(V1_MAX_LEN, b'1');
    assert!(matches!(
        parse(&h, MAX),
        Err(HeaderError::TooLong { limit: 107, .. })
    ));
    // A LF just past byte 107 does not make it valid.
    h.extend_from_slice(b"\r\n");
    assert!(matches!(parse(&h, MAX), Err(HeaderError::TooLong { .. })));
    // Exactly 107 bytes with CRLF is the largest accepted line (it is malformed here, but
    // not for its length).
    let mut h = b"PROXY TCP4 ".to_vec();
    h.resize(V1_MAX_LEN - 2, b'1');
    h.extend_from_slice(b"\r\n");
    assert_eq!(parse(&h, MAX), Err(HeaderError::BadV1));
}

#[test]
fn bad_signature() {
    for bad in [
        &b"OPTIONS sip:x SIP/2.0\r\n"[..],
        b"\x16\x03\x01\x02\x00", // a TLS ClientHello without the header
        b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        b"\r\n\r\n\0\r\nQUIX\n\x21\x11\0\x0c",
        b"\r\n\r\n\r\n", // CRLF keepalives are not a header either
    ] {
        assert_eq!(parse(bad, MAX), Err(HeaderError::BadSignature), "{bad:?}");
    }
    // A prefix of a signature is not refused yet.
    assert_eq!(parse(b"PRO", MAX), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"\r\n\r\n\0", MAX), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"", MAX), Ok(Parsed::Incomplete));
}

#[test]
fn v2_ipv4_with_tlvs_skipped() {
    let tlv = [0x04u8, 0x00, 0x03, 0, 0, 0]; // PP2_TYPE_NOOP, 3 bytes
    let mut h = v2(0x21, 0x11, &v4_block(), &tlv);
    let len = h.len();
    h.extend_from_slice(b"\x16\x03\x01"); // what follows stays untouched
    assert_eq!(
        parse(&h, MAX),
        Ok(Parsed::Complete {
            len,
            addrs: ProxiedAddrs::Proxied {
                source: sa("192.0.2.7:40000"),
                destination: sa("10.0.0.1:5060"),
            }
        })
    );
}

#[test]
fn v2_ipv6() {
    let mut a = Vec::new();
    let src: Ipv6Addr = "2001:db8::7".parse().expect("v6");
    let dst: Ipv6Addr = "2001:db8::1".parse().expect("v6");
    a.extend_from_slice(&src.octets());
    a.extend_from_slice(&dst.octets());
    a.extend_from_slice(&5062u16.to_be_bytes());
    a.extend_from_slice(&5060u16.to_be_bytes());
    let h = v2(0x21, 0x21, &a, &[]);
    assert_eq!(
        parse(&h, MAX),
        Ok(Parsed::Complete {
            len: 16 + 36,
            addrs: ProxiedAddrs::Proxied {
                source: sa("[2001:db8::7]:5062"),
                destination: sa("[2001:db8::1]:5060"),
            }
        })
    );
}

#[test]
fn v2_local_and_unspec_use_real_peer() {
    // LOCAL with an address block (HAProxy health checks send one): ignored.
    let h = v2(0x20, 0x11, &v4_block(), &[]);
    assert_eq!(
        parse(&h, MAX),
        Ok(Parsed::Complete {
            len: h.len(),
            addrs: ProxiedAddrs::Local
        })
    );
    let h = v2(0x20, 0x00, &[], &[]);
    assert_eq!(
        parse(&h, MAX),
        Ok(Parsed::Complete {
            len: 16,
            addrs: ProxiedAddrs::Local
        })
    );
    let h = v2(0x21, 0x00, &[], &[]);
    assert!(matches!(
        parse(&h, MAX),
        Ok(Parsed::Complete {
            addrs: ProxiedAddrs::Local,
            ..
        })
    ));
}

#[test]
fn v2_truncated_is_incomplete_at_every_split() {
    let h = v2(0x21, 0x11, &v4_block(), &[1, 0, 1, 9]);
    for cut in 0..h.len() {
        assert_eq!(parse(&h[..cut], MAX), Ok(Parsed::Incomplete), "cut {cut}");
    }
}

#[test]
fn v2_bad_version_command_family() {
    let h = v2(0x11, 0x11, &v4_block(), &[]); // version 1 in a v2 header
    assert_eq!(parse(&h, MAX), Err(HeaderError::BadV2Version));
    let h = v2(0x22, 0x11, &v4_block(), &[]); // command 2
    assert_eq!(parse(&h, MAX), Err(HeaderError::BadV2Version));
    // Refused as soon as byte 13 is in, before the rest arrives.
    assert_eq!(parse(&h[..13], MAX), Err(HeaderError::BadV2Version));
    let h = v2(0x21, 0x12, &v4_block(), &[]); // UDP over IPv4
    assert_eq!(parse(&h, MAX), Err(HeaderError::BadV2Address));
    let h = v2(0x21, 0x31, &[0; 216], &[]); // AF_UNIX
    assert_eq!(parse(&h, MAX), Err(HeaderError::BadV2Address));
    let h = v2(0x21, 0x11, &v4_block()[..11], &[]); // block too short
    assert_eq!(parse(&h, MAX), Err(HeaderError::BadV2Address));
    let h = v2(0x21, 0x21, &v4_block(), &[]); // IPv6 family, IPv4-sized block
    assert_eq!(parse(&h, MAX), Err(HeaderError::BadV2Address));
}

#[test]
fn v2_oversized_refused_from_the_length_field() {
    let h = v2(0x21, 0x11, &v4_block(), &[0; 2000]);
    // Refused after the fixed 16 bytes, without waiting for the announced 2,012.
    assert_eq!(
        parse(&h[..16], MAX),
        Err(HeaderError::TooLong {
            len: 16 + 12 + 2000,
            limit: MAX
        })
    );
    assert!(parse(&h, 4096).is_ok());
}

#[test]
fn spoofed_header_inside_sip_is_not_a_header() {
    // A client behind the balancer cannot smuggle a second header: only the first bytes of a
    // connection are looked at, and SIP text there fails the signature.
    let h = b"OPTIONS sip:x SIP/2.0\r\nPROXY TCP4 6.6.6.6 10.0.0.1 1 5060\r\n";
    assert_eq!(parse(h, MAX), Err(HeaderError::BadSignature));
}
