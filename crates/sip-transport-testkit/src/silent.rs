//! A TCP address that never completes a handshake, for connect-timeout tests.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A loopback TCP listener whose accept queue is full and never accepted from: Linux drops
/// further SYNs, so a connect to [`SilentListener::addr`] hangs until the dialer's own timeout.
/// (A listener that accepts and stays silent would not do: the connect would complete.)
/// Needs Linux's backlog behaviour; [`SilentListener::start`] panics elsewhere.
#[derive(Debug)]
pub struct SilentListener {
    /// Where connects hang.
    pub addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl SilentListener {
    /// Binds `127.0.0.1:0` with a backlog of 0 and fills its accept queue. Callable from
    /// inside or outside an async runtime.
    pub fn start() -> SilentListener {
        // `listen(fd, 0)` through tokio's socket builder (std's `TcpListener::bind` uses 128),
        // on a thread of its own so that an async caller's runtime is not re-entered.
        let listener = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let sock = tokio::net::TcpSocket::new_v4().expect("socket");
                sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                    .expect("bind");
                sock.listen(0)
                    .expect("listen")
                    .into_std()
                    .expect("std listener")
            })
        })
        .join()
        .expect("listener thread");
        let addr = listener.local_addr().expect("addr");
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => fillers.push(s),
                Err(_) => {
                    return SilentListener {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    };
                }
            }
        }
        panic!("the accept queue of a backlog-0 listener never filled: this test needs Linux");
    }
}
