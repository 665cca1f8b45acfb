//! `-w FILE`: a copy of every frame read, as a classic pcap file with the
//! header libpcap would write for the capture (its link type, snapshot
//! length and stamp precision). Live, the file is flushed at least every
//! second (it stays usable while the capture runs) and SIGHUP starts a new
//! one at the same path (logrotate moved the old away).

use crate::error::Error;
use crate::pipeline::event::{Frame, ReadEnd, SaveHeader};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a live capture's `-w` file is flushed (and at the end): the
/// file stays usable while the capture runs, without a write per packet.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The `-w` file being written.
pub struct Save {
    out: BufWriter<File>,
    path: PathBuf,
    header: SaveHeader,
    /// A live capture's: flushed every second, reopened on SIGHUP.
    live: bool,
    flushed: Instant,
}

impl Save {
    /// Creates `path` (truncating it) and writes the pcap header.
    pub fn create(path: &Path, header: SaveHeader, live: bool) -> Result<Save, Error> {
        let fail = |e: std::io::Error| Error::Save {
            file: path.display().to_string(),
            msg: e.to_string(),
        };
        let mut out = BufWriter::with_capacity(64 << 10, File::create(path).map_err(fail)?);
        write_header(&mut out, header).map_err(fail)?;
        Ok(Save {
            out,
            path: path.to_path_buf(),
            header,
            live,
            flushed: Instant::now(),
        })
    }

    /// The open file (given to the unprivileged user before privileges
    /// are dropped).
    pub fn file(&self) -> &File {
        self.out.get_ref()
    }

    fn error(&self, e: std::io::Error) -> ReadEnd {
        ReadEnd::Save(format!("{}: {e}", self.path.display()))
    }

    /// Appends `frame`.
    pub fn write(&mut self, f: &Frame) -> Result<(), ReadEnd> {
        let sub = if self.header.nano {
            f.ts.nsec
        } else {
            f.ts.nsec / 1000
        };
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&(f.ts.sec as u32).to_ne_bytes());
        record[4..8].copy_from_slice(&sub.to_ne_bytes());
        record[8..12].copy_from_slice(&(f.data.len() as u32).to_ne_bytes());
        record[12..16].copy_from_slice(&f.len.to_ne_bytes());
        let written = self
            .out
            .write_all(&record)
            .and_then(|()| self.out.write_all(f.data));
        written.map_err(|e| self.error(e))?;
        self.tick()
    }

    /// Live: what the file holds reaches the disk every second (on a
    /// frame, or when the capture is quiet); SIGHUP starts a new file.
    pub fn tick(&mut self) -> Result<(), ReadEnd> {
        if !self.live {
            return Ok(());
        }
        if crate::host::signal::REOPEN.swap(false, std::sync::atomic::Ordering::Relaxed) {
            self.reopen();
        }
        if self.flushed.elapsed() >= FLUSH_EVERY {
            self.flushed = Instant::now();
            self.out.flush().map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// SIGHUP: a new file at the path (the old one, moved away by
    /// logrotate, is flushed and closed). When the new file cannot be made,
    /// the old one goes on, with one line why.
    fn reopen(&mut self) {
        let made = File::create(&self.path).and_then(|file| {
            let mut out = BufWriter::with_capacity(64 << 10, file);
            write_header(&mut out, self.header)?;
            Ok(out)
        });
        match made {
            Ok(new) => {
                let _ = std::mem::replace(&mut self.out, new).flush();
            }
            Err(e) => eprintln!(
                "kacap: SIGHUP: cannot reopen -w {}: {e}; still writing to the file it had open",
                self.path.display()
            ),
        }
    }

    /// Flushes and closes the file.
    pub fn close(mut self) -> Result<(), ReadEnd> {
        self.out.flush().map_err(|e| self.error(e))
    }
}

/// The classic pcap file header, in this host's byte order (as libpcap
/// writes it): magic, version 2.4, no zone or accuracy, snapshot length,
/// link type.
fn write_header(out: &mut impl Write, h: SaveHeader) -> std::io::Result<()> {
    let magic: u32 = if h.nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&magic.to_ne_bytes());
    b.extend_from_slice(&2u16.to_ne_bytes());
    b.extend_from_slice(&4u16.to_ne_bytes());
    b.extend_from_slice(&0i32.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&h.snaplen.to_ne_bytes());
    b.extend_from_slice(&h.linktype.to_ne_bytes());
    out.write_all(&b)
}
