//! Dropping privileges after the capture is open, like tcpdump `-Z`: the
//! process becomes an unprivileged user (`nobody` by default) and keeps no
//! capability, so a flaw in packet parsing cannot act as root.

use crate::error::Error;
use std::ffi::CString;

/// Who to become after opening a live capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunAs {
    /// `-Z root`: keep root and its capabilities.
    Keep,
    /// A user, resolved when the command line is read.
    User { name: String, uid: u32, gid: u32 },
}

/// The user kacap becomes without `-Z`.
pub const DEFAULT_USER: &str = "nobody";

/// Resolves `-Z USER` (or the default) before anything happens: an unknown
/// user is a usage error; the default falls back to uid/gid 65534 (the
/// usual `nobody`) where no such user exists.
pub fn resolve(user: Option<&str>) -> Result<RunAs, Error> {
    let name = user.unwrap_or(DEFAULT_USER);
    if name == "root" {
        return Ok(RunAs::Keep);
    }
    match lookup(name) {
        Some((uid, gid)) => Ok(RunAs::User {
            name: name.to_string(),
            uid,
            gid,
        }),
        None if user.is_none() => Ok(RunAs::User {
            name: "65534".into(),
            uid: 65534,
            gid: 65534,
        }),
        None => match name.parse::<u32>() {
            Ok(uid) => Ok(RunAs::User {
                name: name.to_string(),
                uid,
                gid: uid,
            }),
            Err(_) => Err(Error::Usage(format!(
                "-Z {name}: no such user on this host (give a user name, a uid, or root to keep root)"
            ))),
        },
    }
}

/// The uid and primary gid of `name`, from the password database.
fn lookup(name: &str) -> Option<(u32, u32)> {
    let cname = CString::new(name).ok()?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives `pwd`'s use.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

/// Becomes `run_as` (when root) and gives up every capability (also when
/// not root: file capabilities from setcap). Called once the capture, the
/// `-w` file and the SVG file are open.
pub fn drop(run_as: &RunAs) -> Result<(), Error> {
    let fail = |what: &str| Error::Live {
        iface: "-Z".into(),
        msg: format!("{what}: {}", std::io::Error::last_os_error()),
    };
    let RunAs::User { name, uid, gid } = run_as else {
        return Ok(());
    };
    // SAFETY: plain system calls on our own process.
    unsafe {
        if libc::geteuid() == 0 {
            if libc::setgroups(1, gid) != 0 {
                return Err(fail("setgroups"));
            }
            if libc::setresgid(*gid, *gid, *gid) != 0 {
                return Err(fail(&format!("cannot become group {gid}")));
            }
            if libc::setresuid(*uid, *uid, *uid) != 0 {
                return Err(fail(&format!("cannot become user {name}")));
            }
        }
        // Capabilities a non-root user may still hold (file capabilities
        // from setcap, or -Z root): none is needed any more.
        clear_capabilities();
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    }
    Ok(())
}

/// Files kacap created as root (`-w`, `--diagram-svg`, `--html`) go to the
/// user it becomes, as if that user had created them (tcpdump creates them
/// after dropping privileges, and then cannot write where only root may).
/// The open file is given (fchown), not its path: a path swapped for a
/// symlink between the open and the chown cannot hand another file over.
pub fn give(file: &std::fs::File, run_as: &RunAs) {
    use std::os::fd::AsRawFd;
    if let RunAs::User { uid, gid, .. } = run_as
        // SAFETY: geteuid has no preconditions.
        && unsafe { libc::geteuid() } == 0
    {
        // SAFETY: an open descriptor of ours; failure leaves root's file.
        unsafe { libc::fchown(file.as_raw_fd(), *uid, *gid) };
    }
}

/// capset(2) with empty sets (version 3: two 32-bit words).
fn clear_capabilities() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: a valid header and two data words, as _LINUX_CAPABILITY_VERSION_3 wants.
    unsafe {
        libc::syscall(libc::SYS_capset, &mut header, data.as_ptr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_or_are_refused() {
        assert_eq!(resolve(Some("root")).unwrap(), RunAs::Keep);
        assert!(matches!(resolve(None).unwrap(), RunAs::User { uid, .. } if uid != 0));
        assert!(resolve(Some("no-such-user-kacap")).is_err());
        assert!(matches!(
            resolve(Some("4242")).unwrap(),
            RunAs::User { uid: 4242, .. }
        ));
    }
}
