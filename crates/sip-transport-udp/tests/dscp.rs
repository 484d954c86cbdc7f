//! The DSCP mark on the wire: datagrams a transport sends are received by a plain socket that
//! asks the kernel for each datagram's TOS byte (`IP_RECVTOS`) or IPv6 traffic class
//! (`IPV6_RECVTCLASS`), read from the control messages of `recvmsg` (Linux).

#![cfg(target_os = "linux")]

mod common;

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::*;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use sip_transport_api::{Destination, Dscp, Transport};
use sip_transport_udp::UdpConfig;

/// A receiving socket on `addr` that reports each datagram's TOS / traffic class, or `None`
/// when the address cannot be bound (no IPv6 here).
fn receiver(addr: &str) -> Option<UdpSocket> {
    let sock = UdpSocket::bind(addr).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    if sock.local_addr().expect("local").is_ipv6() {
        setsockopt(&sock, sockopt::Ipv6RecvTClass, &true).expect("IPV6_RECVTCLASS");
    } else {
        setsockopt(&sock, sockopt::IpRecvTos, &true).expect("IP_RECVTOS");
    }
    Some(sock)
}

/// Receives one datagram and returns its TOS byte (IPv4) or traffic class (IPv6).
fn received_mark(sock: &UdpSocket) -> u8 {
    let mut buf = [0u8; 2048];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(i32, i32);
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("a datagram within 5 s");
    assert!(msg.bytes > 0);
    let marks: Vec<u8> = msg
        .cmsgs()
        .expect("control messages")
        .filter_map(|c| match c {
            ControlMessageOwned::Ipv4Tos(tos) => Some(tos),
            ControlMessageOwned::Ipv6TClass(tc) => u8::try_from(tc).ok(),
            _ => None,
        })
        .collect();
    assert_eq!(
        marks.len(),
        1,
        "one TOS or traffic class per datagram: {marks:?}"
    );
    marks[0]
}

/// Binds a transport on `bind` with `dscp`, sends one request to `to`, and returns the mark
/// the datagram arrived with.
async fn mark_of_datagram_to(bind_addr: &str, dscp: Option<Dscp>, to: &UdpSocket) -> u8 {
    let config = UdpConfig::new(bind_addr.parse().expect("addr")).with_dscp(dscp);
    let (t, _rx) = bind(config);
    let dest: SocketAddr = to.local_addr().expect("local");
    let req = sip_transport_testkit::options_request(
        "sip:ping@example.invalid",
        "UDP",
        &t.local_addr().to_string(),
        1,
    );
    t.send_message(&req, &Destination::new(dest))
        .await
        .expect("send");
    let to = to.try_clone().expect("clone");
    let mark = tokio::task::spawn_blocking(move || received_mark(&to))
        .await
        .expect("receive");
    t.close().await;
    mark
}

#[tokio::test]
async fn ipv4_datagrams_carry_the_mark() {
    let rx = receiver("127.0.0.1:0").expect("IPv4 loopback");
    assert_eq!(
        mark_of_datagram_to("127.0.0.1:0", Some(Dscp::CS3), &rx).await,
        0x60
    );
    assert_eq!(
        mark_of_datagram_to("127.0.0.1:0", Some(Dscp::EF), &rx).await,
        0xb8
    );
    // The default leaves the OS default: unmarked.
    assert_eq!(mark_of_datagram_to("127.0.0.1:0", None, &rx).await, 0);
}

#[tokio::test]
async fn ipv6_datagrams_carry_the_mark() {
    let Some(rx) = receiver("[::1]:0") else {
        eprintln!("*** SKIPPED: no IPv6 loopback here ***");
        return;
    };
    assert_eq!(
        mark_of_datagram_to("[::1]:0", Some(Dscp::EF), &rx).await,
        0xb8
    );
    assert_eq!(mark_of_datagram_to("[::1]:0", None, &rx).await, 0);
}

#[tokio::test]
async fn dual_stack_socket_marks_both_families() {
    // One `[::]` socket: datagrams to IPv4 peers leave through IP_TOS, to IPv6 peers through
    // IPV6_TCLASS; both carry the mark.
    let v4 = receiver("127.0.0.1:0").expect("IPv4 loopback");
    if UdpSocket::bind("[::]:0").is_err() {
        eprintln!("*** SKIPPED: no IPv6 here ***");
        return;
    }
    assert_eq!(
        mark_of_datagram_to("[::]:0", Some(Dscp::CS3), &v4).await,
        0x60
    );
    if let Some(v6) = receiver("[::1]:0") {
        assert_eq!(
            mark_of_datagram_to("[::]:0", Some(Dscp::CS3), &v6).await,
            0x60
        );
    }
}
