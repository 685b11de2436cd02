//! The platform's ceiling for one connection: a bare TCP ping-pong over loopback (100-byte
//! messages, TCP_NODELAY, no TLS, no KMIP) between two threads, in round trips per second.
//! No server answering one connection at a time can beat it, so it is the figure to read
//! `ksg bench --connections 1` against. On a virtual machine whose cross-CPU wake-ups are
//! dear, run it both ways: as it is, and on one core (`taskset -c 0 cargo bench --bench
//! loopback`).
//!
//! `cargo bench --bench loopback` (add `-- --seconds N` to change the time, default 3).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("TCP_NODELAY");
        let mut buf = [0u8; 256];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => s.write_all(&buf[..n]).expect("echo"),
            }
        }
    });
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("TCP_NODELAY");
    let message = [7u8; 100];
    let mut back = [0u8; 100];
    let (start, limit) = (Instant::now(), Duration::from_secs(seconds));
    let mut trips = 0u64;
    while start.elapsed() < limit {
        for _ in 0..256 {
            c.write_all(&message).expect("send");
            c.read_exact(&mut back).expect("receive");
        }
        trips += 256;
    }
    let took = start.elapsed().as_secs_f64();
    drop(c);
    echo.join().expect("echo thread");
    println!(
        "TCP ping-pong over loopback, 1 connection: {:.0} round trips/s, {:.1} µs each",
        trips as f64 / took,
        1e6 * took / trips as f64
    );
}
