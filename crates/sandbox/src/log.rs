//! A workload's output while it runs: stdout and stderr interleaved in arrival order, read
//! by absolute byte offset (`unet job logs --follow`).
//!
//! The log keeps at most `cap` bytes: a batch job is stopped at its output cap anyway, so
//! its log is its whole output; a service runs for the life of its lease, so its log keeps
//! the newest `cap` bytes and a reader that falls behind is told where the kept text
//! starts. Offsets never go back: byte `n` of the stream is always byte `n`.
//!
//! A reader waiting for more subscribes ([`LiveLog::subscribe`]) and is woken by the next
//! write or the end, instead of polling.

use std::collections::VecDeque;
use std::sync::Mutex;

/// The live output of one workload.
#[derive(Debug)]
pub struct LiveLog {
    cap: usize,
    inner: Mutex<Inner>,
    /// Bumped after every write and at the end; readers wait on it.
    changed: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The kept bytes: stream offsets `start..start + buf.len()`.
    buf: VecDeque<u8>,
    start: u64,
    done: bool,
}

/// What a read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// Stream offset of `data[0]` (past the asked offset when older bytes were dropped).
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
    /// Stream offset just past the last byte written so far.
    pub end: u64,
    /// The workload has ended: nothing more will be written.
    pub done: bool,
}

impl LiveLog {
    /// An empty log keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            inner: Mutex::new(Inner::default()),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// A receiver that sees a change after every later write and at the end. Subscribe
    /// before reading, so a write in between still wakes the reader.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `bytes`; drops the oldest past the cap.
    pub fn write(&self, bytes: &[u8]) {
        if self.cap == 0 {
            return;
        }
        let mut g = self.lock();
        let bytes = if bytes.len() > self.cap {
            let skip = bytes.len() - self.cap;
            g.start += g.buf.len() as u64 + skip as u64;
            g.buf.clear();
            &bytes[skip..]
        } else {
            bytes
        };
        let over = (g.buf.len() + bytes.len()).saturating_sub(self.cap);
        g.buf.drain(..over);
        g.start += over as u64;
        g.buf.extend(bytes);
        drop(g);
        self.bump();
    }

    /// Marks the end of the stream.
    pub fn finish(&self) {
        self.lock().done = true;
        self.bump();
    }

    /// Up to `max` bytes from stream offset `offset` (or from the oldest kept byte when
    /// `offset` was dropped).
    pub fn read(&self, offset: u64, max: usize) -> LogChunk {
        let g = self.lock();
        let end = g.start + g.buf.len() as u64;
        let from = offset.clamp(g.start, end);
        let skip = (from - g.start) as usize;
        let data: Vec<u8> = g.buf.iter().skip(skip).take(max).copied().collect();
        LogChunk {
            offset: from,
            data,
            end,
            done: g.done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_follow_offsets_and_keep_the_newest_bytes() {
        let log = LiveLog::new(8);
        log.write(b"abc");
        assert_eq!(log.read(0, 100).data, b"abc");
        assert_eq!(log.read(1, 1).data, b"b");
        log.write(b"defghij");
        // 10 bytes written, 8 kept: "cdefghij" from offset 2.
        let c = log.read(0, 100);
        assert_eq!((c.offset, c.end, c.done), (2, 10, false));
        assert_eq!(c.data, b"cdefghij");
        assert_eq!(log.read(9, 100).data, b"j");
        assert!(log.read(10, 100).data.is_empty());
        assert_eq!(log.read(99, 100).offset, 10);
        // One write larger than the cap keeps its tail.
        log.write(b"0123456789AB");
        let c = log.read(0, 100);
        assert_eq!((c.offset, c.end), (14, 22));
        assert_eq!(c.data, b"456789AB");
        log.finish();
        assert!(log.read(22, 1).done);
    }

    /// A reader subscribed before reading is woken by the next write and by the end.
    #[test]
    fn subscribers_are_woken_by_writes_and_the_end() {
        let log = LiveLog::new(8);
        let mut rx = log.subscribe();
        assert!(!rx.has_changed().unwrap());
        log.write(b"x");
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        log.finish();
        assert!(rx.has_changed().unwrap());
    }
}
