//! Driving an analysis: frames read from a source until its end, a stop
//! or an output error, with the snapshots and stops a run may ask for
//! (`Controls`). (The lookahead pass, a first read of a file that settles
//! what a capture started mid-connection leaves ambiguous, is the
//! analyzer's own: `analyzer::read_ahead`.)

use super::analyzer::Analyzer;
use crate::core::flows::Options;
use crate::pipeline::event::{FrameSource, Next, ReadEnd, Sink};
use std::sync::atomic::{AtomicBool, Ordering};

/// Reads `src` through the analyzer until its end, an output error or
/// `stop`, then reports every flow and the summary (also when reading ended
/// early: a truncated file, Ctrl-C).
pub fn analyze<S: Sink>(
    src: &mut impl FrameSource,
    options: Options,
    sink: S,
    stop: &AtomicBool,
) -> Result<(), ReadEnd> {
    let analyzer = Analyzer::new(src.link(), options, sink);
    drive(src, analyzer, Controls::stop(stop))
}

/// What may ask a running analysis to stop or to show how it stands.
#[derive(Clone, Copy, Debug)]
pub struct Controls<'a> {
    /// Set by SIGINT / SIGTERM: stop reading, report what was read.
    pub stop: &'a AtomicBool,
    /// Set by SIGUSR1: show a snapshot (then cleared).
    pub show: Option<&'a AtomicBool>,
    /// `--stats-every`: a snapshot this often (wall-clock time).
    pub every: Option<std::time::Duration>,
    /// A file: stopping before its end leaves a partial analysis (a live
    /// capture or a pipe ends that way as a matter of course).
    pub partial_on_stop: bool,
    /// Also stop, quietly, when this is set (the output's reader is gone).
    pub quit: Option<&'a AtomicBool>,
}

impl<'a> Controls<'a> {
    /// Only a stop flag.
    pub fn stop(stop: &'a AtomicBool) -> Controls<'a> {
        Controls {
            stop,
            show: None,
            every: None,
            partial_on_stop: false,
            quit: None,
        }
    }
}

/// [`analyze`] with an analyzer already built (e.g. with a lookahead pass).
pub fn drive<S: Sink>(
    src: &mut impl FrameSource,
    mut analyzer: Analyzer<S>,
    controls: Controls,
) -> Result<(), ReadEnd> {
    let mut next_show = controls.every.map(|d| std::time::Instant::now() + d);
    let mut look = false;
    let watch = controls.show.is_some() || controls.every.is_some() || controls.quit.is_some();
    let read = loop {
        if controls.stop.load(Ordering::Relaxed) {
            analyzer.stats.interrupted = controls.partial_on_stop;
            break Ok(());
        }
        // A snapshot asked for, or the reader gone? Looked at every 256
        // frames, and when idle.
        if watch && look {
            if controls.quit.is_some_and(|q| q.load(Ordering::Relaxed)) {
                // Nobody reads what comes next: stop, report nothing more.
                return Ok(());
            }
            let asked = controls
                .show
                .is_some_and(|s| s.swap(false, Ordering::Relaxed));
            let due = next_show.is_some_and(|t| std::time::Instant::now() >= t);
            if asked || due {
                if let (Some(t), Some(every)) = (next_show.as_mut(), controls.every) {
                    *t = std::time::Instant::now() + every;
                }
                if let Err(e) = analyzer.snapshot() {
                    return Err(ReadEnd::Output(e));
                }
            }
        }
        let result = match src.next_frame() {
            Ok(Next::Frame(frame)) => {
                let r = analyzer.frame(&frame);
                look = analyzer.stats.frames.is_multiple_of(256);
                r
            }
            Ok(Next::Idle(Some(now))) => {
                look = true;
                analyzer.tick(now)
            }
            Ok(Next::Idle(None)) => {
                look = true;
                Ok(())
            }
            Ok(Next::End) => break Ok(()),
            Err(e) => break Err(e),
        };
        if let Err(e) = result {
            return Err(ReadEnd::Output(e));
        }
    };
    analyzer.stats.capture_dropped = src.dropped();
    analyzer.finish().map_err(ReadEnd::Output)?;
    read
}
