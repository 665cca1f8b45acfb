//! The core: TCP as the wire shows it. Timestamps and the capture clock,
//! wrapping sequence numbers, decoding a frame into a borrowed segment (IP
//! fragments of TCP put back together first, `frag`), the
//! connection table with its core TCP state, and one kind per segment
//! (`classify`, its rules in documented order). It knows nothing of the
//! layers above it: no analysis, report or input is named here.

pub mod classify;
pub mod clock;
pub mod decode;
pub mod emit;
pub mod flowkey;
pub mod flows;
pub mod frag;
pub mod keyed;
pub mod linger;
pub mod proto;
pub mod seq;
pub mod slab;
pub mod tcp;
pub mod text;
pub mod time;
