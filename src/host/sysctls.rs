//! The keepalive sysctls of the network namespace kacap runs in (after
//! `--netns`, the one it entered): `net.ipv4.tcp_keepalive_time`,
//! `_intvl`, `_probes` and `tcp_retries2`. Read here once; what they mean
//! to a connection is said by the analyses that compare with them.

use std::io;

/// A namespace's keepalive sysctls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sysctls {
    pub time: u32,
    pub intvl: u32,
    pub probes: u32,
    pub retries2: Option<u32>,
}

impl Sysctls {
    /// This namespace's (`/proc/sys/net/ipv4`), or why not (not Linux).
    pub fn read() -> io::Result<Sysctls> {
        Ok(Sysctls {
            time: read_u32("/proc/sys/net/ipv4/tcp_keepalive_time")?,
            intvl: read_u32("/proc/sys/net/ipv4/tcp_keepalive_intvl")?,
            probes: read_u32("/proc/sys/net/ipv4/tcp_keepalive_probes")?,
            retries2: read_u32("/proc/sys/net/ipv4/tcp_retries2").ok(),
        })
    }
}

fn read_u32(path: &str) -> io::Result<u32> {
    std::fs::read_to_string(path)?
        .trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {e}")))
}
