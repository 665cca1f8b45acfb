//! One direction of a framed stream (HTTP/2, WebSocket, Redis, MySQL, TLS
//! records), followed in sequence order: frames found whole in a segment,
//! or in what the segments so far hold once the boundaries are known.

use crate::core::seq::SeqNumber;

/// One direction of a framed stream, followed in sequence order.
#[derive(Clone, Debug, Default)]
pub struct Dir {
    pub(super) next: Option<SeqNumber>,
    /// Frame boundaries known (else wait for a segment of whole frames).
    pub(super) synced: bool,
    /// A frame header, or a small control frame, being completed.
    pub(super) buf: Vec<u8>,
    /// Bytes of the current frame still to skip.
    pub(super) skip: u64,
}

/// Where a direction's frames begin.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    pub at: Option<SeqNumber>,
    pub skip: u64,
}

/// What a framed protocol needs next.
pub enum Need {
    /// At least this many bytes in the buffer.
    More(usize),
    /// A frame of `total` bytes whose kept part is the buffer.
    Frame(u64),
}

impl Dir {
    /// New bytes of this direction in order, or `None` when this segment
    /// adds nothing (seen before) or the direction is lost. A gap or a cut
    /// payload loses the boundaries.
    pub(super) fn fresh<'a>(
        &mut self,
        seq: SeqNumber,
        len: u32,
        bytes: &'a [u8],
    ) -> Option<&'a [u8]> {
        if bytes.len() < len as usize {
            self.lose();
            return None;
        }
        if !self.synced {
            return None;
        }
        let next = *self.next.get_or_insert(seq);
        let skip = next.diff(seq);
        if skip < 0 {
            self.lose();
            return None;
        }
        let skip = skip as usize;
        if skip >= bytes.len() {
            return None;
        }
        self.next = Some(seq + len);
        Some(&bytes[skip..])
    }

    pub(super) fn lose(&mut self) {
        self.synced = false;
        self.next = None;
        self.buf = Vec::new();
        self.skip = 0;
    }

    /// Starts following where a frame begins: at `start.at` (`None`: at
    /// this direction's next segment), after skipping `start.skip` bytes
    /// (the HTTP/2 client preface).
    pub(super) fn sync(&mut self, start: Start) {
        self.synced = true;
        self.next = start.at;
        self.buf.clear();
        self.skip = start.skip;
    }

    /// Cuts `data` into frames: `need` says what the buffer must hold,
    /// `frame` gets each frame's kept part and its total length.
    pub(super) fn frames(
        &mut self,
        mut data: &[u8],
        need: impl Fn(&[u8]) -> Need,
        mut frame: impl FnMut(&[u8], u64),
    ) {
        loop {
            if self.skip > 0 {
                if data.is_empty() {
                    return;
                }
                let n = self.skip.min(data.len() as u64) as usize;
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            match need(&self.buf) {
                Need::More(n) => {
                    if data.is_empty() {
                        return;
                    }
                    let take = n.saturating_sub(self.buf.len()).min(data.len()).max(1);
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                }
                Need::Frame(total) => {
                    frame(&self.buf, total);
                    self.skip = total.saturating_sub(self.buf.len() as u64);
                    self.buf.clear();
                }
            }
        }
    }
}
