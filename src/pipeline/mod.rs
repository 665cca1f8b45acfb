//! The pipeline: frames in, events out. It drives the core and the
//! registered analyses over every segment (`analyzer`), settles captures
//! started mid-connection (`lookahead`), runs one file on several analyzer
//! threads (`shard`), and hands every sink the same boundary types
//! (`event`): a packet event per segment, one typed summary per connection
//! with its one verdict (`summary`). It names no report: sinks are values
//! it is given.

pub mod analyzer;
pub mod drive;
pub mod event;
pub mod lookahead;
pub mod shard;
pub mod summary;
