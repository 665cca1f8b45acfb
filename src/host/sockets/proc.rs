//! What `/proc` and the owner's descriptor tell: which process holds a
//! socket (its inode among `/proc/PID/fd/*` links `socket:[INODE]`), the
//! namespace's keepalive sysctls, and the socket's own options read on a
//! copy of the owner's descriptor (`pidfd_open` + `pidfd_getfd`).

use super::{Owner, SockOpts, Sysctls};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Socket inode → the first process (lowest pid) holding it.
pub fn owners() -> HashMap<u64, Owner> {
    let mut map = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return map;
    };
    let mut pids: Vec<u32> = procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let mut comm = None;
        for e in fds.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(target) = std::fs::read_link(e.path()) else {
                continue;
            };
            let Some(inode) = socket_inode(target.to_str().unwrap_or("")) else {
                continue;
            };
            let comm = comm
                .get_or_insert_with(|| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .map(|c| c.trim_end().to_string())
                        .unwrap_or_default()
                })
                .clone();
            map.entry(inode).or_insert(Owner { pid, fd, comm });
        }
    }
    map
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The current network namespace's keepalive sysctls.
pub fn sysctls() -> io::Result<Sysctls> {
    Sysctls::read()
}

/// The current network namespace, as `readlink /proc/self/ns/net` names it.
pub fn netns_id() -> Option<String> {
    std::fs::read_link("/proc/thread-self/ns/net")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn getsockopt_int(fd: i32, level: i32, name: i32) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: reading one int into our variable.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// Reads SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and
/// TCP_USER_TIMEOUT on a copy of descriptor `fd` of process `pid`. The copy
/// is closed before returning; nothing is changed.
pub fn sockopts(pid: u32, fd: u32) -> Result<SockOpts, String> {
    // SAFETY: pidfd_open(pid, 0) returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if pidfd < 0 {
        return Err(why(io::Error::last_os_error(), pid));
    }
    // SAFETY: a fresh descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: pidfd_getfd(pidfd, fd, 0) returns a new descriptor or -1.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd as i32, 0) };
    if copy < 0 {
        return Err(why(io::Error::last_os_error(), pid));
    }
    // SAFETY: a fresh descriptor we own; dropped (closed) on return.
    let copy = unsafe { OwnedFd::from_raw_fd(copy as i32) };
    let raw = copy.as_raw_fd();
    let get =
        |level, name| getsockopt_int(raw, level, name).map_err(|e| format!("getsockopt: {e}"));
    Ok(SockOpts {
        keepalive: get(libc::SOL_SOCKET, libc::SO_KEEPALIVE)? != 0,
        idle: get(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)?.max(0) as u32,
        interval: get(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL)?.max(0) as u32,
        count: get(libc::IPPROTO_TCP, libc::TCP_KEEPCNT)?.max(0) as u32,
        user_timeout_ms: get(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT)?.max(0) as u32,
    })
}

fn why(e: io::Error, pid: u32) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => format!(
            "reading pid {pid}'s socket options needs root or CAP_SYS_PTRACE (sudo kacap sockets)"
        ),
        Some(libc::ENOSYS) => {
            "this kernel cannot copy another process's descriptor (pidfd_getfd needs Linux 5.6)"
                .to_string()
        }
        Some(libc::ESRCH) => format!("pid {pid} exited"),
        _ => format!("cannot read pid {pid}'s socket options: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn socket_links_give_their_inode() {
        assert_eq!(super::socket_inode("socket:[4026]"), Some(4026));
        assert_eq!(super::socket_inode("pipe:[4026]"), None);
        assert_eq!(super::socket_inode("socket:[x]"), None);
    }

    #[test]
    fn this_process_s_own_socket_options_read_through_a_copy() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let fd = s.as_raw_fd();
        let on: libc::c_int = 1;
        let idle: libc::c_int = 37;
        // SAFETY: setting ints on our own socket.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_KEEPALIVE,
                (&on as *const i32).cast(),
                4,
            );
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_KEEPIDLE,
                (&idle as *const i32).cast(),
                4,
            );
        }
        match super::sockopts(std::process::id(), fd as u32) {
            Ok(o) => {
                assert!(o.keepalive);
                assert_eq!(o.idle, 37);
            }
            // Kernels without pidfd_getfd, or a sandbox that forbids it.
            Err(why) => eprintln!("skipped: {why}"),
        }
    }
}
