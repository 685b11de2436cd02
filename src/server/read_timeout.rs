//! A socket's read timeout, set again only when it must change: in the common case once per
//! connection instead of once per message (each setting is a system call).

use std::io;
use std::net::TcpStream;
use std::time::Duration;

/// How long one read waits at most (callers read again until their own deadline): long enough
/// that the timeout is set once per connection, short enough for a waiting worker to notice a
/// shutdown soon.
pub const READ_POLL: Duration = Duration::from_millis(200);

/// The read timeout last set on one socket (none yet: unknown).
#[derive(Debug, Default)]
pub struct ReadTimeout {
    set: Option<Duration>,
}

impl ReadTimeout {
    /// Makes a read on `tcp` wait at most `limit` (which must not be zero), and not much less:
    /// the timeout already set is kept while it is no longer than `limit` and at least half of
    /// it. A read that times out early is the caller's to retry until its own deadline.
    pub fn at_most(&mut self, tcp: &TcpStream, limit: Duration) -> io::Result<()> {
        if self.set.is_some_and(|s| s <= limit && s >= limit / 2) {
            return Ok(());
        }
        tcp.set_read_timeout(Some(limit))?;
        self.set = Some(limit);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn the_timeout_is_set_only_when_the_one_set_would_wait_too_long_or_far_too_little() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let tcp = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let ms = Duration::from_millis;
        let mut t = ReadTimeout::default();
        let mut seen = Vec::new();
        for limit in [200, 200, 300, 150, 90, 400, 1000] {
            t.at_most(&tcp, ms(limit)).expect("set");
            // In whole 10 ms: the kernel keeps timeouts in its own ticks.
            let set = tcp.read_timeout().expect("read").expect("a timeout");
            seen.push(ms(((set.as_millis() as u64) + 5) / 10 * 10));
        }
        // 200 is kept for 200 and 300; 150 and 90 are shorter than what is set; 90 and then 400
        // are less than half of 400 and of 1000.
        assert_eq!(
            seen,
            [
                ms(200),
                ms(200),
                ms(200),
                ms(150),
                ms(90),
                ms(400),
                ms(1000)
            ]
        );
    }
}
