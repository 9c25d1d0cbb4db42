//! Reused decompression buffers for the ingest path.
//!
//! A remote-write request decompresses into ~1.5 MiB. A fresh buffer per request cost
//! ~7 % of ingest CPU on the peerbench workload: the allocator hands large blocks back
//! zeroed (`calloc` → `madvise`), and the kernel then faults every page in again as the
//! decompressor writes it. A buffer taken from this pool has its pages mapped already.
//!
//! A buffer comes back with its old bytes, not cleared: the decompressor overwrites what
//! it uses, and a cleared buffer had to be zeroed again up to the request's size first
//! (`Vec::resize`), a 1.5 MiB `memset` per request.
//!
//! The pool keeps at most `keep` buffers, and never one larger than `max_bytes`, so a
//! rare huge request does not pin its memory for good.

use parking_lot::Mutex;

/// Buffers free for the next request.
#[derive(Debug)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
    max_bytes: usize,
}

impl BufferPool {
    /// A pool that keeps up to `keep` buffers of at most `max_bytes` capacity each.
    pub fn new(keep: usize, max_bytes: usize) -> Self {
        BufferPool {
            free: Mutex::new(Vec::with_capacity(keep)),
            keep,
            max_bytes,
        }
    }

    /// A buffer used before when the pool has one, with its capacity and its stale
    /// bytes (callers replace the content, as `decompress_capped_into` does), else an
    /// empty one. It returns to the pool when dropped.
    pub fn take(&self) -> PooledBuffer<'_> {
        let buf = self.free.lock().pop().unwrap_or_default();
        PooledBuffer { pool: self, buf }
    }

    /// Buffers held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.free.lock().len()
    }

    fn give_back(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > self.max_bytes {
            return;
        }
        let mut free = self.free.lock();
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

/// A buffer on loan from a [`BufferPool`].
#[derive(Debug)]
pub struct PooledBuffer<'p> {
    pool: &'p BufferPool,
    buf: Vec<u8>,
}

impl std::ops::Deref for PooledBuffer<'_> {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl std::ops::DerefMut for PooledBuffer<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

impl Drop for PooledBuffer<'_> {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_with_its_capacity_and_bytes() {
        let pool = BufferPool::new(2, 1 << 20);
        let ptr = {
            let mut b = pool.take();
            b.extend_from_slice(&[7; 1000]);
            b.as_ptr()
        };
        assert_eq!(pool.held(), 1);
        let b = pool.take();
        assert_eq!(
            b.len(),
            1000,
            "not cleared: its bytes are overwritten by the next use"
        );
        assert!(b.capacity() >= 1000);
        assert_eq!(b.as_ptr(), ptr);
        assert_eq!(pool.held(), 0);
    }

    #[test]
    fn keeps_at_most_keep_buffers_and_none_too_large() {
        let pool = BufferPool::new(2, 4096);
        {
            let mut bufs: Vec<_> = (0..3).map(|_| pool.take()).collect();
            for b in &mut bufs {
                b.reserve(100);
            }
        }
        assert_eq!(pool.held(), 2);
        let mut big = pool.take();
        big.reserve(1 << 20);
        drop(big);
        // The big one was dropped instead of kept; one small one was taken for it.
        assert_eq!(pool.held(), 1);
        // Never-used buffers are not kept either.
        drop(pool.take());
        assert_eq!(pool.held(), 1);
        drop(pool.take());
        drop(pool.take());
        assert_eq!(pool.held(), 1);
    }
}
