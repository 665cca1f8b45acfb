//! The host kacap runs on: its socket table and keepalive sysctls
//! (`sockets`, behind the `Host` trait so tests fake it), dropping
//! privileges, and the signals a run answers.

pub mod kernel;
pub mod privileges;
pub mod signal;
pub mod sockets;
pub mod sysctls;
