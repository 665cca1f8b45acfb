//! The kernel's TCP socket table through sock_diag (NETLINK_SOCK_DIAG,
//! `SOCK_DIAG_BY_FAMILY` with an `inet_diag_req_v2` dump, as `ss -tie`):
//! every TCP socket of the current network namespace with its state, its
//! running timer (`idiag_timer`, `idiag_expires`, `idiag_retrans`), its
//! inode and, from `INET_DIAG_INFO`, `struct tcp_info`'s probes and
//! last-send/receive times. No privileges are needed.
//!
//! Message layouts: `linux/inet_diag.h`, `linux/tcp.h`; parsing is
//! separate from the socket ([`parse`]) so it is tested on bytes.

use super::{DiagSocket, TcpState, Timer, TimerKind};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const INET_DIAG_INFO: u16 = 2;
const NLMSG_HDR: usize = 16;
/// `struct inet_diag_msg`.
const DIAG_MSG: usize = 72;
/// `tcp_info` offsets.
const TI_PROBES: usize = 3;
const TI_LAST_DATA_SENT: usize = 44;
const TI_LAST_DATA_RECV: usize = 52;

/// Every TCP socket (IPv4 and IPv6) of the current network namespace.
pub fn dump() -> io::Result<Vec<DiagSocket>> {
    let mut all = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        all.extend(dump_family(family)?);
    }
    Ok(all)
}

/// The request: a dump of every state of one family, with tcp_info.
fn request(family: u8, seq: u32) -> Vec<u8> {
    let len = (NLMSG_HDR + 56) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // inet_diag_req_v2: family, protocol, ext (bit INET_DIAG_INFO - 1), pad,
    // states (all), then a zero inet_diag_sockid (48 bytes).
    m.extend_from_slice(&[
        family,
        libc::IPPROTO_TCP as u8,
        1 << (INET_DIAG_INFO - 1),
        0,
    ]);
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    m.extend_from_slice(&[0u8; 48]);
    m
}

fn dump_family(family: u8) -> io::Result<Vec<DiagSocket>> {
    // SAFETY: plain socket(2); the descriptor is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&sock);
    let req = request(family, 1);
    // SAFETY: sending our buffer on our socket (the kernel is the default
    // destination of an unbound netlink socket's sendto with no address).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    let sent = unsafe {
        libc::sendto(
            raw,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: receiving into our buffer.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        match parse(&buf[..n as usize], &mut out)? {
            Parsed::More => {}
            Parsed::Done => return Ok(out),
        }
    }
}

pub enum Parsed {
    More,
    Done,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses one datagram of netlink messages into `out`.
pub fn parse(mut b: &[u8], out: &mut Vec<DiagSocket>) -> io::Result<Parsed> {
    while b.len() >= NLMSG_HDR {
        let len = u32_at(b, 0) as usize;
        let kind = u16_at(b, 4);
        if len < NLMSG_HDR || len > b.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a truncated sock_diag message",
            ));
        }
        let body = &b[NLMSG_HDR..len];
        match kind {
            NLMSG_DONE => return Ok(Parsed::Done),
            NLMSG_ERROR => {
                let errno = if body.len() >= 4 {
                    -(u32_at(body, 0) as i32)
                } else {
                    libc::EINVAL
                };
                if errno == 0 {
                    return Ok(Parsed::Done);
                }
                return Err(io::Error::from_raw_os_error(errno));
            }
            SOCK_DIAG_BY_FAMILY => {
                if let Some(s) = socket(body) {
                    out.push(s);
                }
            }
            _ => {}
        }
        b = b.get(len.div_ceil(4) * 4..).unwrap_or(&[]);
    }
    Ok(Parsed::More)
}

fn addr(family: u8, raw: &[u8], port: u16) -> Option<SocketAddr> {
    let ip = match i32::from(family) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
        libc::AF_INET6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&raw[..16]);
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One `inet_diag_msg` and its attributes.
fn socket(m: &[u8]) -> Option<DiagSocket> {
    if m.len() < DIAG_MSG {
        return None;
    }
    let family = m[0];
    let state = TcpState::from_kernel(m[1]);
    let timer = m[2];
    let retrans = m[3];
    // inet_diag_sockid at 4: sport, dport (big endian), src[16], dst[16].
    let sport = u16::from_be_bytes([m[4], m[5]]);
    let dport = u16::from_be_bytes([m[6], m[7]]);
    let local = addr(family, &m[8..24], sport)?;
    let remote = addr(family, &m[24..40], dport)?;
    let expires = u32_at(m, 52);
    let uid = u32_at(m, 64);
    let inode = u32_at(m, 68);
    let mut s = DiagSocket {
        local,
        remote,
        state,
        timer: Timer {
            kind: match timer {
                1 => Some(TimerKind::Retransmit),
                2 => Some(TimerKind::Keepalive),
                3 => Some(TimerKind::TimeWait),
                4 => Some(TimerKind::ZeroWindow),
                _ => None,
            },
            expires: f64::from(expires) / 1000.0,
            probes: u32::from(retrans),
        },
        uid,
        inode: u64::from(inode),
        probes: None,
        lastsnd: None,
        lastrcv: None,
    };
    // Attributes (struct rtattr: len u16, type u16, data, 4-aligned).
    let mut a = &m[DIAG_MSG..];
    while a.len() >= 4 {
        let alen = usize::from(u16_at(a, 0));
        let atype = u16_at(a, 2);
        if alen < 4 || alen > a.len() {
            break;
        }
        let data = &a[4..alen];
        if atype == INET_DIAG_INFO && data.len() >= TI_LAST_DATA_RECV + 4 {
            s.probes = Some(u32::from(data[TI_PROBES]));
            s.lastsnd = Some(f64::from(u32_at(data, TI_LAST_DATA_SENT)) / 1000.0);
            s.lastrcv = Some(f64::from(u32_at(data, TI_LAST_DATA_RECV)) / 1000.0);
        }
        let step = alen.div_ceil(4) * 4;
        if step >= a.len() {
            break;
        }
        a = &a[step..];
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as the kernel sends it: an established IPv4 socket with a
    /// keepalive timer and tcp_info.
    fn message() -> Vec<u8> {
        let mut body = vec![libc::AF_INET as u8, 1, 2, 1];
        body.extend_from_slice(&2333u16.to_be_bytes());
        body.extend_from_slice(&40000u16.to_be_bytes());
        body.extend_from_slice(&[127, 0, 0, 1]);
        body.extend_from_slice(&[0; 12]);
        body.extend_from_slice(&[127, 0, 0, 2]);
        body.extend_from_slice(&[0; 12]);
        body.extend_from_slice(&[0; 12]); // if, cookie
        body.extend_from_slice(&14_000u32.to_ne_bytes()); // expires
        body.extend_from_slice(&[0; 8]); // rqueue, wqueue
        body.extend_from_slice(&1000u32.to_ne_bytes()); // uid
        body.extend_from_slice(&4242u32.to_ne_bytes()); // inode
        assert_eq!(body.len(), DIAG_MSG);
        let mut info = vec![0u8; 104];
        info[TI_PROBES] = 1;
        info[TI_LAST_DATA_SENT..TI_LAST_DATA_SENT + 4].copy_from_slice(&5000u32.to_ne_bytes());
        info[TI_LAST_DATA_RECV..TI_LAST_DATA_RECV + 4].copy_from_slice(&6000u32.to_ne_bytes());
        body.extend_from_slice(&((4 + info.len()) as u16).to_ne_bytes());
        body.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        body.extend_from_slice(&info);
        let mut m = ((NLMSG_HDR + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn a_diag_message_gives_the_socket_its_timer_and_tcp_info() {
        let mut m = message();
        // Then NLMSG_DONE.
        m.extend_from_slice(&20u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&[0; 14]);
        let mut out = Vec::new();
        assert!(matches!(parse(&m, &mut out).unwrap(), Parsed::Done));
        let s = &out[0];
        assert_eq!(s.local, "127.0.0.1:2333".parse().unwrap());
        assert_eq!(s.remote, "127.0.0.2:40000".parse().unwrap());
        assert_eq!(s.state, TcpState::Established);
        assert_eq!(s.timer.kind, Some(TimerKind::Keepalive));
        assert_eq!((s.timer.expires, s.timer.probes), (14.0, 1));
        assert_eq!((s.uid, s.inode), (1000, 4242));
        assert_eq!((s.lastsnd, s.lastrcv), (Some(5.0), Some(6.0)));
    }

    #[test]
    fn truncated_or_garbage_messages_are_errors_not_panics() {
        let m = message();
        let mut out = Vec::new();
        for cut in 0..m.len() {
            let _ = parse(&m[..cut], &mut out);
        }
        let mut garbage = m.clone();
        garbage[0] = 0xff;
        assert!(parse(&garbage, &mut out).is_err());
        let mut tiny_attr = m;
        tiny_attr[NLMSG_HDR + DIAG_MSG] = 2; // an attribute of length 2
        out.clear();
        assert!(parse(&tiny_attr, &mut out).is_ok());
        assert_eq!(out[0].probes, None);
    }
}
