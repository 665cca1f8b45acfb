//! Where frames come from: capture files (classic pcap and pcapng, read by
//! libpcap or the fast path), live interfaces, pipes, compressed captures,
//! several files merged as one, several files analyzed in parallel — each a
//! `pipeline::event::FrameSource` (`source`, opened by `open`; `pipe`,
//! `merge`, `fastread`, `unpack`). What is done with every frame whatever
//! the source — the `-w` copy (`save`), `--annotate`'s frames (`spool`)
//! and the progress bar — wraps it (`tap`). `many` runs several files side by side;
//! `ranges` reads one classic pcap file on several threads (`--readers`).

pub mod fastread;
pub mod isb;
pub mod many;
pub mod merge;
pub mod open;
pub mod pipe;
pub mod ranges;
pub mod record;
pub mod save;
pub mod source;
pub mod spool;
pub mod tap;
pub mod unpack;
