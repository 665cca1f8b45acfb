//! `--diagram-svg FILE` beside `--json`: records each connection's steps and
//! writes every sequence diagram into one SVG at the end (the text output
//! draws it itself, with its `--explain`).

use super::Kept;
use super::teach::{self, FlowSteps, Recorder};
use crate::pipeline::event::{PacketEvent, Revisions, Sink, Stats};
use crate::pipeline::summary::FlowSummary;
use std::fs::File;
use std::io::{self, Write};

pub struct SvgSink {
    file: File,
    name: String,
    recorder: Recorder,
    taught: Kept<(FlowSummary, FlowSteps)>,
}

impl SvgSink {
    /// `file`: opened before the capture started (and before privileges
    /// were dropped); `name`: its path, for messages.
    pub fn new(file: File, name: String) -> SvgSink {
        SvgSink {
            file,
            name,
            recorder: Recorder::default(),
            taught: Kept::new(super::text::MAX_TAUGHT),
        }
    }
}

impl Sink for SvgSink {
    fn packet(&mut self, ev: &PacketEvent) -> io::Result<()> {
        let shown = !self.taught.closed_to(ev.flow_id);
        self.recorder.offer(ev, shown);
        Ok(())
    }

    fn revise(&mut self, r: &Revisions) -> io::Result<()> {
        self.recorder.revise(r);
        Ok(())
    }

    fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        let steps = self.recorder.take(f.id);
        self.taught
            .push_with(f.verdict, f.id, || (f.clone(), steps));
        Ok(())
    }

    fn finish(&mut self, _stats: &Stats) -> io::Result<()> {
        let mut taught = self.taught.take();
        taught.sort_by_key(|(f, _)| f.id);
        self.file
            .write_all(teach::svg(&taught).as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.name)))
    }
}
