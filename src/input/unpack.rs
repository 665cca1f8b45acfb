//! Compressed captures — gzip, zstd, xz, bzip2 — told by their magic bytes
//! (never by the name), decompressed in a thread into a pipe that libpcap
//! reads as it would read the file.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// A compression format kacap reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Format {
    /// The format whose magic number `head` (a file's first bytes) starts with.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Format::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Format::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Format::Xz)
        } else if head.starts_with(b"BZh") {
            Some(Format::Bzip2)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
            Format::Xz => "xz",
            Format::Bzip2 => "bzip2",
        }
    }

    fn decoder(self, file: File) -> io::Result<Box<dyn Read + Send>> {
        let file = io::BufReader::with_capacity(1 << 16, file);
        Ok(match self {
            // Concatenated members (`cat a.gz b.gz`) are one stream, as gzip -d reads them.
            Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
            Format::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
            Format::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(file)),
            Format::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(file)),
        })
    }
}

/// A decompression running in its own thread.
pub struct Unpacking {
    pub format: Format,
    /// What went wrong decompressing, once the pipe is closed.
    error: Arc<Mutex<Option<String>>>,
}

impl Unpacking {
    /// Starts decompressing `file` into a pipe; returns the pipe's read end
    /// (for libpcap) and the handle that tells how the decompression went.
    pub fn start(file: File, format: Format) -> io::Result<(OwnedFd, Unpacking)> {
        let mut decoder = format.decoder(file)?;
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors, which we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let error = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&error);
        std::thread::Builder::new()
            .name(format!("kacap-{}", format.name()))
            .spawn(move || {
                let mut out = File::from(write);
                match io::copy(&mut decoder, &mut out) {
                    // The reader stopped early (-c, a closed output): fine.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    Err(e) => {
                        if let Ok(mut s) = slot.lock() {
                            *s = Some(e.to_string());
                        }
                    }
                    Ok(_) => {}
                }
                // The pipe closes here, after the error is in place.
                drop(out);
            })?;
        Ok((read, Unpacking { format, error }))
    }

    /// The decompression's failure, if any (read after libpcap saw the end).
    pub fn failure(&self) -> Option<String> {
        let e = self.error.lock().ok()?.clone()?;
        Some(format!("{} data is damaged ({e})", self.format.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn magic_numbers() {
        assert_eq!(Format::sniff(&[0x1f, 0x8b, 8, 0]), Some(Format::Gzip));
        assert_eq!(
            Format::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Some(Format::Zstd)
        );
        assert_eq!(Format::sniff(b"\xfd7zXZ\x00"), Some(Format::Xz));
        assert_eq!(Format::sniff(b"BZh9"), Some(Format::Bzip2));
        assert_eq!(Format::sniff(&[0xd4, 0xc3, 0xb2, 0xa1]), None);
        assert_eq!(Format::sniff(&[0x0a, 0x0d, 0x0d, 0x0a]), None);
    }
}
