//! `--annotate FILE.pcapng`: the capture handed on with kacap's words inside
//! it, for whoever opens it in Wireshark. Every frame read is written again
//! (`input::spool` keeps them meanwhile) as a pcapng Enhanced Packet Block
//! with the timeline's words as its packet comment (`opt_comment`:
//! Wireshark shows it in the packet list and filters on `frame.comment`);
//! a revision adds a comment to the frames it relabels, and each
//! connection's last frame gets its verdict line and inferred settings. A
//! frame kacap skipped (not TCP) keeps no comment.
//!
//! Written by hand: three block types (section header, interface
//! description, enhanced packet) and two options. The crates that write
//! pcapng (`pcap-file` 2.0, last released in 2022 with 3.0 still a release
//! candidate; `pcapng-writer`, written to the 2017 draft) would add a
//! dependency for about as many lines as this.

use super::annotate;
use super::text::{ended_line, revision_words};
use crate::analyses::registry::Findings;
use crate::input::spool::SpooledFrames;
use crate::pipeline::event::{FragmentEvent, PacketEvent, Revisions, SaveHeader, Sink, Stats};
use crate::pipeline::summary::FlowSummary;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::sync::{Arc, Mutex};

/// The longest comment kept (an option's length is 16 bits).
const MAX_COMMENT: usize = 60_000;

/// The words gathered for the frames: in frame order into an unlinked
/// temporary file (a record: frame number, length, text), and what comes
/// later for an earlier frame (revisions, verdicts) in memory — bounded by
/// the connections, not the packets.
pub struct Comments {
    spool: BufWriter<File>,
    last: u64,
    later: HashMap<u64, Vec<String>>,
    /// Each connection not yet reported: its last frame so far.
    last_of_flow: HashMap<u32, u64>,
    line: Vec<u8>,
}

impl Comments {
    pub fn create(dir: &std::path::Path) -> io::Result<Comments> {
        Ok(Comments {
            spool: BufWriter::with_capacity(256 << 10, tempfile::tempfile_in(dir)?),
            last: 0,
            later: HashMap::new(),
            last_of_flow: HashMap::new(),
            line: Vec::new(),
        })
    }

    fn later(&mut self, n: u64, text: String) {
        self.later.entry(n).or_default().push(text);
    }

    /// Frame `n`'s words, in `line`: spooled in order, or kept for later.
    fn put(&mut self, n: u64) -> io::Result<()> {
        let cut = cut_at(&self.line, MAX_COMMENT);
        self.line.truncate(cut);
        if n > self.last {
            self.last = n;
            self.spool.write_all(&n.to_le_bytes())?;
            self.spool
                .write_all(&(self.line.len() as u32).to_le_bytes())?;
            self.spool.write_all(&self.line)?;
        } else {
            let text = String::from_utf8_lossy(&self.line).into_owned();
            self.later(n, text);
        }
        Ok(())
    }
}

/// The sink gathering the words (shared with `command::capture`, which
/// writes the file once reading is done).
pub struct AnnotateSink {
    pub comments: Arc<Mutex<Comments>>,
}

impl Sink for AnnotateSink {
    // Out of line: the outputs' per-packet path stays as small without it.
    #[inline(never)]
    fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
        let Ok(mut c) = self.comments.lock() else {
            return Ok(());
        };
        let c = &mut *c;
        c.last_of_flow.insert(ev.flow_id, ev.n);
        c.line.clear();
        write!(c.line, "flow {}: ", ev.flow_id)?;
        annotate::write(&mut c.line, ev)?;
        c.put(ev.n)
    }

    fn fragment(&mut self, fe: &FragmentEvent) -> io::Result<()> {
        let Ok(mut c) = self.comments.lock() else {
            return Ok(());
        };
        c.line.clear();
        annotate::fragment(&mut c.line, fe);
        c.put(fe.ev.n)
    }

    fn revise(&mut self, r: &Revisions) -> io::Result<()> {
        if let Ok(mut c) = self.comments.lock() {
            let words = revision_words(r);
            for item in r.items {
                c.later(item.n, words.clone());
            }
        }
        Ok(())
    }

    fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        if let Ok(mut c) = self.comments.lock()
            && let Some(n) = c.last_of_flow.remove(&f.id)
        {
            let mut words = ended_line(f);
            for inferred in Findings::inferred(f) {
                words.push_str("; ");
                words.push_str(&inferred);
            }
            c.later(n, words);
        }
        Ok(())
    }

    fn finish(&mut self, _stats: &Stats) -> io::Result<()> {
        Ok(())
    }
}

/// The gathered comments, read back in frame order.
struct InOrder {
    r: BufReader<File>,
    next: Option<(u64, String)>,
}

impl InOrder {
    fn new(spool: BufWriter<File>) -> io::Result<InOrder> {
        let mut file = spool.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        let mut me = InOrder {
            r: BufReader::with_capacity(256 << 10, file),
            next: None,
        };
        me.advance()?;
        Ok(me)
    }

    fn advance(&mut self) -> io::Result<()> {
        let mut head = [0u8; 12];
        self.next = match self.r.read_exact(&mut head) {
            Ok(()) => {
                let n = u64::from_le_bytes(head[0..8].try_into().unwrap_or([0; 8]));
                let len = u32::from_le_bytes(head[8..12].try_into().unwrap_or([0; 4])) as usize;
                let mut text = vec![0u8; len];
                self.r.read_exact(&mut text)?;
                Some((n, String::from_utf8_lossy(&text).into_owned()))
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => return Err(e),
        };
        Ok(())
    }

    /// The comment of frame `n`, if it has one.
    fn take(&mut self, n: u64) -> io::Result<Option<String>> {
        while self.next.as_ref().is_some_and(|(at, _)| *at < n) {
            self.advance()?;
        }
        match &self.next {
            Some((at, _)) if *at == n => {
                let text = self.next.take().map(|(_, t)| t);
                self.advance()?;
                Ok(text)
            }
            _ => Ok(None),
        }
    }
}

/// What was written: frames, and frames with a comment.
pub struct Written {
    pub frames: u64,
    pub commented: u64,
}

/// Writes the annotated capture to `out`: a section, one interface (the
/// input's link type, snapshot length and stamp resolution; `ifname` for
/// a live capture's), then every spooled frame with its comments.
pub fn write(
    out: File,
    header: SaveHeader,
    ifname: Option<&str>,
    mut frames: SpooledFrames,
    comments: Comments,
) -> io::Result<Written> {
    let mut out = BufWriter::with_capacity(256 << 10, out);
    let Comments {
        spool, mut later, ..
    } = comments;
    let mut in_order = InOrder::new(spool)?;
    let mut block = Vec::with_capacity(1 << 16);
    // Section Header Block.
    let mut opts = Vec::new();
    option(
        &mut opts,
        4,
        format!("kacap {}", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    end_options(&mut opts);
    let mut body = Vec::new();
    body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    body.extend_from_slice(&opts);
    put_block(&mut out, &mut block, 0x0A0D_0D0A, &body)?;
    // Interface Description Block.
    let mut body = Vec::new();
    body.extend_from_slice(&(header.linktype as u16).to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&header.snaplen.to_le_bytes());
    if let Some(name) = ifname {
        option(&mut body, 2, name.as_bytes());
    }
    option(&mut body, 9, &[if header.nano { 9 } else { 6 }]);
    end_options(&mut body);
    put_block(&mut out, &mut block, 1, &body)?;
    let mut written = Written {
        frames: 0,
        commented: 0,
    };
    let mut body = Vec::with_capacity(1 << 16);
    while let Some(f) = frames.next_frame()? {
        let units = if header.nano {
            (f.ts.sec as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(u64::from(f.ts.nsec))
        } else {
            (f.ts.sec as u64)
                .wrapping_mul(1_000_000)
                .wrapping_add(u64::from(f.ts.nsec / 1000))
        };
        body.clear();
        body.extend_from_slice(&0u32.to_le_bytes()); // interface 0
        body.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(units as u32).to_le_bytes());
        body.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        body.extend_from_slice(&f.len.to_le_bytes());
        body.extend_from_slice(f.data);
        pad(&mut body);
        let first = in_order.take(f.n)?;
        let rest = later.remove(&f.n).unwrap_or_default();
        let any = first.is_some() || !rest.is_empty();
        for c in first.iter().chain(&rest) {
            option(
                &mut body,
                1,
                &c.as_bytes()[..cut_at(c.as_bytes(), MAX_COMMENT)],
            );
        }
        if any {
            end_options(&mut body);
            written.commented += 1;
        }
        put_block(&mut out, &mut block, 6, &body)?;
        written.frames += 1;
    }
    out.flush()?;
    Ok(written)
}

/// Where to cut UTF-8 text `b` to at most `max` bytes without splitting a
/// character (a comment is UTF-8).
fn cut_at(b: &[u8], max: usize) -> usize {
    let mut at = b.len().min(max);
    while at < b.len() && at > 0 && (b[at] & 0xC0) == 0x80 {
        at -= 1;
    }
    at
}

/// Pads `b` to a multiple of 4 bytes.
fn pad(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

/// An option: its code, length and value, padded.
fn option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend_from_slice(value);
    pad(b);
}

fn end_options(b: &mut Vec<u8>) {
    b.extend_from_slice(&[0, 0, 0, 0]);
}

/// A block: type, total length, body, total length again.
fn put_block(out: &mut impl Write, block: &mut Vec<u8>, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    block.clear();
    block.extend_from_slice(&kind.to_le_bytes());
    block.extend_from_slice(&total.to_le_bytes());
    block.extend_from_slice(body);
    block.extend_from_slice(&total.to_le_bytes());
    out.write_all(block)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_comment_is_cut_between_characters() {
        let text = "→".repeat(30_000); // 3 bytes each
        let at = super::cut_at(text.as_bytes(), super::MAX_COMMENT);
        assert!(at <= super::MAX_COMMENT && text.is_char_boundary(at));
        assert_eq!(super::cut_at(b"short", super::MAX_COMMENT), 5);
    }
}
