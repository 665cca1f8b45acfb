//! `--annotate`: every frame read, kept in an unlinked temporary file beside
//! the output until the run's words for it are final (a verdict belongs on
//! a connection's last frame, known only at its end), then read back in
//! order. A record: frame number, stamp, bytes on the wire, captured bytes.

use crate::core::time::Timestamp;
use crate::pipeline::event::Frame;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

/// The frames kept so far.
pub struct FrameSpool {
    out: BufWriter<File>,
}

impl FrameSpool {
    /// An unlinked temporary file in `dir` (gone when kacap ends, however).
    pub fn create(dir: &Path) -> io::Result<FrameSpool> {
        Ok(FrameSpool {
            out: BufWriter::with_capacity(256 << 10, tempfile::tempfile_in(dir)?),
        })
    }

    /// Keeps `f`.
    pub fn write(&mut self, f: &Frame) -> io::Result<()> {
        let mut head = [0u8; 28];
        head[0..8].copy_from_slice(&f.n.to_le_bytes());
        head[8..16].copy_from_slice(&f.ts.sec.to_le_bytes());
        head[16..20].copy_from_slice(&f.ts.nsec.to_le_bytes());
        head[20..24].copy_from_slice(&f.len.to_le_bytes());
        head[24..28].copy_from_slice(&(f.data.len() as u32).to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(f.data)
    }

    /// Done writing: the frames, from the first.
    pub fn read_back(self) -> io::Result<SpooledFrames> {
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(SpooledFrames {
            r: BufReader::with_capacity(256 << 10, file),
            data: Vec::new(),
        })
    }
}

/// The kept frames, read back in order.
pub struct SpooledFrames {
    r: BufReader<File>,
    data: Vec<u8>,
}

/// One kept frame.
pub struct Spooled<'a> {
    pub n: u64,
    pub ts: Timestamp,
    pub len: u32,
    pub data: &'a [u8],
}

impl SpooledFrames {
    /// The next frame, or `None` after the last.
    pub fn next_frame(&mut self) -> io::Result<Option<Spooled<'_>>> {
        let mut head = [0u8; 28];
        match self.r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let caplen = u32_at(24) as usize;
        self.data.resize(caplen, 0);
        self.r.read_exact(&mut self.data)?;
        Ok(Some(Spooled {
            n: u64::from_le_bytes(head[0..8].try_into().unwrap_or([0; 8])),
            ts: Timestamp::new(
                i64::from_le_bytes(head[8..16].try_into().unwrap_or([0; 8])),
                u32_at(16),
            ),
            len: u32_at(20),
            data: &self.data,
        }))
    }
}
