//! `-r -`, a FIFO, process substitution: a stream, read by libpcap in a
//! thread of its own so that the analysis keeps a clock.

use crate::core::decode::LinkType;
use crate::core::time::Timestamp;
use crate::input::source::Source;
use crate::pipeline::event::{Frame, FrameSource, Next, ReadEnd};

/// How long the analyzer waits for a frame from a pipe before it ticks.
const PIPE_TICK: std::time::Duration = std::time::Duration::from_millis(100);
/// Frames read ahead of the analyzer from a pipe.
const PIPE_AHEAD: usize = 1024;

enum PipeMsg {
    Frame {
        n: u64,
        ts: Timestamp,
        len: u32,
        data: Vec<u8>,
    },
    /// Reading ended: how, and the source back (for `-w` and messages).
    End(Result<(), ReadEnd>, Box<Source>),
}

/// `-r -`: a pipe, read by libpcap in a thread of its own, so that the
/// analyzer keeps a clock while the pipe is quiet (`tcpdump -U -w - |
/// kacap -r -` on an idle connection): nothing is held back longer than a
/// second. The clock is the last frame's capture time plus the wall time
/// since it arrived. Buffers go back to the reader: no allocation per frame
/// once the pipeline is full.
pub struct PipeSource {
    link: LinkType,
    frames: std::sync::mpsc::Receiver<PipeMsg>,
    spare: std::sync::mpsc::SyncSender<Vec<u8>>,
    current: Vec<u8>,
    last: Option<(Timestamp, std::time::Instant)>,
    ended: Option<(Result<(), ReadEnd>, Box<Source>)>,
}

impl PipeSource {
    /// Starts reading `src` (stdin) in a thread.
    pub fn start(mut src: Source) -> PipeSource {
        let link = src.link;
        let (tx, frames) = std::sync::mpsc::sync_channel(PIPE_AHEAD);
        let (spare, spares) = std::sync::mpsc::sync_channel::<Vec<u8>>(PIPE_AHEAD + 2);
        std::thread::spawn(move || {
            let result = loop {
                let msg = match src.next_frame() {
                    Ok(Next::Frame(f)) => {
                        let mut data = spares.try_recv().unwrap_or_default();
                        data.clear();
                        data.extend_from_slice(f.data);
                        PipeMsg::Frame {
                            n: f.n,
                            ts: f.ts,
                            len: f.len,
                            data,
                        }
                    }
                    Ok(Next::Idle(_)) => continue,
                    Ok(Next::End) => break Ok(()),
                    Err(e) => break Err(e),
                };
                if tx.send(msg).is_err() {
                    // The analyzer stopped reading.
                    break Ok(());
                }
            };
            let _ = tx.send(PipeMsg::End(result, Box::new(src)));
        });
        PipeSource {
            link,
            frames,
            spare,
            current: Vec::new(),
            last: None,
            ended: None,
        }
    }

    /// After the analysis: how reading ended and the source, when the
    /// reader got to its end (not when the analysis stopped first: a
    /// reader blocked on a quiet pipe is left behind).
    pub fn finish(mut self) -> Option<(Result<(), ReadEnd>, Box<Source>)> {
        if self.ended.is_none()
            && let Ok(PipeMsg::End(r, src)) = self.frames.try_recv()
        {
            self.ended = Some((r, src));
        }
        self.ended
    }
}

impl FrameSource for PipeSource {
    fn link(&self) -> LinkType {
        self.link
    }

    fn next_frame(&mut self) -> Result<Next<'_>, ReadEnd> {
        if self.ended.is_some() {
            return Ok(Next::End);
        }
        match self.frames.recv_timeout(PIPE_TICK) {
            Ok(PipeMsg::Frame { n, ts, len, data }) => {
                let old = std::mem::replace(&mut self.current, data);
                let _ = self.spare.try_send(old);
                self.last = Some((ts, std::time::Instant::now()));
                Ok(Next::Frame(Frame {
                    n,
                    ts,
                    len,
                    data: &self.current,
                }))
            }
            Ok(PipeMsg::End(r, src)) => {
                self.ended = Some((r, src));
                Ok(Next::End)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(Next::Idle(
                self.last
                    .map(|(ts, at)| ts.plus(at.elapsed().as_secs_f64())),
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Ok(Next::End),
        }
    }
}
