//! Where frames come from: capture files (classic pcap and pcapng, read by
//! libpcap or the fast path), live interfaces, pipes, compressed captures,
//! several files merged as one, several files analyzed in parallel — each a
//! `pipeline::event::FrameSource`.

pub mod fastread;
pub mod many;
pub mod merge;
pub mod source;
pub mod unpack;
