//! A pool of reusable read buffers (the seed's initialBufCount and growBufBy): a connection takes
//! one for its lifetime and gives it back, so steady traffic allocates nothing per request.

use std::sync::Mutex;

/// Reusable buffers, each able to hold one message of up to `capacity` bytes.
#[derive(Debug)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    capacity: usize,
    grow_by: usize,
}

/// Capacity reserved up front per buffer; buffers grow to the message size on demand, so an
/// idle pool costs little memory even with a large maxBufSize.
const INITIAL_CAPACITY: usize = 32 * 1024;

impl BufferPool {
    /// A pool holding `initial` buffers, adding `grow_by` whenever it runs dry.
    pub fn new(initial: usize, grow_by: usize, capacity: usize) -> Self {
        let pool = BufferPool {
            free: Mutex::new(Vec::new()),
            capacity,
            grow_by: grow_by.max(1),
        };
        pool.grow(initial);
        pool
    }

    fn grow(&self, n: usize) {
        let cap = self.capacity.min(INITIAL_CAPACITY);
        if let Ok(mut free) = self.free.lock() {
            free.extend((0..n).map(|_| Vec::with_capacity(cap)));
        }
    }

    /// Takes an empty buffer.
    pub fn take(&self) -> Vec<u8> {
        loop {
            if let Some(b) = self.free.lock().ok().and_then(|mut f| f.pop()) {
                return b;
            }
            self.grow(self.grow_by);
        }
    }

    /// Returns a buffer; one that grew far beyond a message's size is dropped, not kept.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() > self.capacity.saturating_mul(2).max(INITIAL_CAPACITY * 2) {
            return;
        }
        buf.clear();
        if let Ok(mut free) = self.free.lock() {
            free.push(buf);
        }
    }

    /// Buffers currently free.
    pub fn free_count(&self) -> usize {
        self.free.lock().map_or(0, |f| f.len())
    }
}
