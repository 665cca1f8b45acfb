//! `--netns NAME|PID|PATH`: enter a network namespace before reading
//! sockets or opening a capture — a named one (`ip netns add NAME`:
//! `/run/netns/NAME`), a process's (a container's or a pod's:
//! `/proc/PID/ns/net`), or a bind-mounted path.

use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Where the namespace `spec` lives.
pub fn path_of(spec: &str) -> PathBuf {
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        PathBuf::from(format!("/proc/{spec}/ns/net"))
    } else if spec.contains('/') {
        PathBuf::from(spec)
    } else {
        PathBuf::from(format!("/run/netns/{spec}"))
    }
}

/// Checks `spec` names something that exists (at plan time: before any
/// side effect), with a one-line reason when not.
pub fn check(spec: &str) -> Result<PathBuf, String> {
    let path = path_of(spec);
    match path.try_exists() {
        Ok(true) => return Ok(path),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(format!(
                "--netns {spec}: reading {} needs root (sudo kacap --netns {spec} …)",
                path.display()
            ));
        }
        _ => {}
    }
    Err(if spec.bytes().all(|b| b.is_ascii_digit()) {
        format!(
            "--netns {spec}: no process {spec} (its namespace would be {})",
            path.display()
        )
    } else if spec.contains('/') {
        format!("--netns {spec}: no such file")
    } else {
        format!(
            "--netns {spec}: no named network namespace {spec} in /run/netns ('ip netns list' shows them; \
             a container's: --netns PID)"
        )
    })
}

/// Moves the calling thread (and the threads it starts later) into the
/// namespace at `path`.
pub fn enter(spec: &str, path: &std::path::Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => {
            format!(
                "--netns {spec}: reading {} needs root (sudo)",
                path.display()
            )
        }
        _ => format!("--netns {spec}: {}: {e}", path.display()),
    })?;
    // SAFETY: setns on a descriptor we hold open.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) => format!(
                "--netns {spec}: entering a network namespace needs root (CAP_SYS_ADMIN): sudo kacap --netns {spec} …"
            ),
            Some(libc::EINVAL) => format!(
                "--netns {spec}: {} is not a network namespace",
                path.display()
            ),
            _ => format!("--netns {spec}: cannot enter it: {e}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_a_pid_or_a_path() {
        assert_eq!(path_of("4242"), PathBuf::from("/proc/4242/ns/net"));
        assert_eq!(path_of("blue"), PathBuf::from("/run/netns/blue"));
        assert_eq!(
            path_of("/var/run/docker/netns/abc"),
            PathBuf::from("/var/run/docker/netns/abc")
        );
        assert!(
            check("no-such-namespace-kacap")
                .unwrap_err()
                .contains("ip netns list")
        );
        assert!(
            check("999999999")
                .unwrap_err()
                .contains("no process 999999999")
        );
        assert!(check("self").is_err());
        assert!(check("/proc/self/ns/net").is_ok());
    }
}
