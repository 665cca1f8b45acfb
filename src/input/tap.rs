//! What is done with every frame read, whatever the source: the `-w` copy
//! (`save`), `--annotate`'s spool of frames and the progress bar of a big file on a terminal. A wrapper
//! around any `FrameSource` (smoltcp's `PcapWriter<D>` around any device
//! is the model), so a file, a live interface, merged files and a pipe get
//! them the same way.

use crate::input::save::Save;
use crate::input::spool::FrameSpool;
use crate::pipeline::event::{CaptureStats, FrameSource, Next, ReadEnd};

/// How often (in frames) the progress bar moves.
const PROGRESS_EVERY: u64 = 65_536;

pub struct Tapped<S> {
    pub inner: S,
    save: Option<Save>,
    /// `--annotate`: every frame kept until the words for it are final.
    spool: Option<FrameSpool>,
    progress: Option<indicatif::ProgressBar>,
    frames: u64,
}

impl<S: FrameSource> Tapped<S> {
    pub fn new(inner: S, save: Option<Save>, progress: Option<indicatif::ProgressBar>) -> Self {
        Tapped {
            inner,
            save,
            spool: None,
            progress,
            frames: 0,
        }
    }

    /// With `--annotate`'s spool of frames.
    pub fn with_spool(mut self, spool: Option<FrameSpool>) -> Self {
        self.spool = spool;
        self
    }

    /// `--annotate`'s frames, once reading is done.
    pub fn take_spool(&mut self) -> Option<FrameSpool> {
        self.spool.take()
    }

    /// Ends reading: clears the progress bar, flushes and closes the `-w`
    /// file; the source back.
    pub fn close(mut self) -> (S, Result<(), ReadEnd>) {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        let closed = self.save.take().map_or(Ok(()), Save::close);
        (self.inner, closed)
    }
}

impl<S: FrameSource> FrameSource for Tapped<S> {
    fn link(&self) -> crate::core::decode::LinkType {
        self.inner.link()
    }

    #[inline]
    fn next_frame(&mut self) -> Result<Next<'_>, ReadEnd> {
        // Where the reading is, before the frame (read while it is lent out).
        let at = match &self.progress {
            Some(_) if (self.frames + 1).is_multiple_of(PROGRESS_EVERY) => self.inner.position(),
            _ => None,
        };
        let next = self.inner.next_frame()?;
        match &next {
            Next::Frame(f) => {
                self.frames += 1;
                if let (Some(bar), Some(at)) = (&self.progress, at) {
                    bar.set_position(at);
                }
                if let Some(save) = &mut self.save {
                    save.write(f)?;
                }
                if let Some(spool) = &mut self.spool {
                    spool
                        .write(f)
                        .map_err(|e| ReadEnd::Save(format!("(--annotate's frames) {e}")))?;
                }
            }
            Next::Idle(_) => {
                if let Some(save) = &mut self.save {
                    save.tick()?;
                }
            }
            Next::End => {}
        }
        Ok(next)
    }

    fn stats(&mut self) -> Option<CaptureStats> {
        self.inner.stats()
    }

    fn dropped(&mut self) -> Option<u64> {
        self.inner.dropped()
    }

    fn current_chunk(&self) -> Option<&std::sync::Arc<Vec<u8>>> {
        self.inner.current_chunk()
    }

    fn position(&self) -> Option<u64> {
        self.inner.position()
    }

    /// Only when no frame needs to pass through here (`-w`, `--annotate`);
    /// the progress bar moves every 16 ranges.
    fn read_ranges(
        &mut self,
        readers: usize,
        range: u64,
        route: &(dyn Fn(&[u8]) -> u32 + Sync),
        each: &mut dyn FnMut(&crate::pipeline::event::Ranged) -> bool,
    ) -> bool {
        if self.save.is_some() || self.spool.is_some() {
            return false;
        }
        let (bar, mut ranges) = (self.progress.clone(), 0u64);
        let mut each = |r: &crate::pipeline::event::Ranged| {
            ranges += 1;
            if let Some(bar) = bar.as_ref().filter(|_| ranges.is_multiple_of(16)) {
                bar.set_position(r.end);
            }
            each(r)
        };
        self.inner.read_ranges(readers, range, route, &mut each)
    }
}
