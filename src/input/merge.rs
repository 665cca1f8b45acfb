//! `--merge`: several capture files read as one capture, their packets in
//! time order (as mergecap does) — the pieces of a rotated capture
//! (`tcpdump -C` / `-G` / `-W`), so that a connection spanning files is one
//! connection. Each file's next frame is copied into a buffer of its own
//! (reused: no allocation per packet) and the earliest is handed out.

use crate::core::time::Timestamp;
use crate::pipeline::event::{Frame, FrameSource, Next, ReadEnd};

/// The next frame of a merge: time, length on the wire, captured bytes.
pub type Head<'a> = (Timestamp, u32, &'a [u8]);

/// One file of the set and its next frame.
struct Part<S> {
    src: S,
    /// The file's name, for messages.
    name: String,
    /// The next frame: time, length on the wire, captured bytes (in `buf`).
    head: Option<(Timestamp, u32)>,
    buf: Vec<u8>,
    /// Read to its end.
    done: bool,
}

impl<S: FrameSource> Part<S> {
    /// Reads this file's next frame into the buffer.
    fn refill(&mut self) -> Result<(), ReadEnd> {
        self.head = None;
        if self.done {
            return Ok(());
        }
        match self.src.next_frame() {
            Ok(Next::Frame(f)) => {
                self.buf.clear();
                self.buf.extend_from_slice(f.data);
                self.head = Some((f.ts, f.len));
                Ok(())
            }
            Ok(Next::End) | Ok(Next::Idle(_)) => {
                self.done = true;
                Ok(())
            }
            Err(ReadEnd::Truncated(msg)) => {
                self.done = true;
                Err(ReadEnd::Truncated(format!("{}: {msg}", self.name)))
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }
}

/// Files read as one capture.
pub struct Merge<S> {
    parts: Vec<Part<S>>,
    /// The part whose buffer was handed out last (refilled on the next call).
    last: Option<usize>,
    started: bool,
}

impl<S: FrameSource> Merge<S> {
    /// `sources`: opened files and their names, all of one link type
    /// (checked by the caller).
    pub fn new(sources: Vec<(S, String)>) -> Merge<S> {
        Merge {
            parts: sources
                .into_iter()
                .map(|(src, name)| Part {
                    src,
                    name,
                    head: None,
                    buf: Vec::new(),
                    done: false,
                })
                .collect(),
            last: None,
            started: false,
        }
    }

    /// The earliest next frame of all files (the first file's on a tie),
    /// numbered by the caller; `None` at the end of all of them.
    pub fn next_head(&mut self) -> Result<Option<Head<'_>>, ReadEnd> {
        if !self.started {
            self.started = true;
            for p in &mut self.parts {
                p.refill()?;
            }
        } else if let Some(i) = self.last.take() {
            self.parts[i].refill()?;
        }
        let earliest = self
            .parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.head.map(|(ts, _)| (ts, i)))
            .min();
        let Some((_, i)) = earliest else {
            return Ok(None);
        };
        self.last = Some(i);
        let p = &self.parts[i];
        let (ts, len) = p.head.expect("the earliest part has a frame");
        Ok(Some((ts, len, &p.buf)))
    }
}

/// A frame from the merge, numbered across the whole set.
pub fn frame(n: u64, (ts, len, data): Head<'_>) -> Frame<'_> {
    Frame { n, ts, len, data }
}
