//! Ctrl-C (SIGINT) and SIGTERM only flip a flag; the capture loop checks it,
//! then the summary is printed and the `-w` file closed as usual. SIGUSR1
//! flips another: the loop shows how the run stands, on stderr, and goes on.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Set when SIGINT or SIGTERM arrives.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// The signal that stopped the run (SIGINT or SIGTERM), 0 before one.
pub static STOPPED_BY: AtomicI32 = AtomicI32::new(0);

/// The exit status of a run stopped by a signal: 128 + its number, as a
/// shell reports a command a signal ended (130 for SIGINT, 143 for SIGTERM).
pub fn exit_status() -> Option<i32> {
    match STOPPED_BY.load(Ordering::Relaxed) {
        0 => None,
        signo => Some(128 + signo),
    }
}

/// A file's analysis was cut short by the stop signal (its message was
/// printed): the run ends with [`exit_status`].
pub static PARTIAL: AtomicBool = AtomicBool::new(false);

/// The reader of our output went away (several files): analyses stop,
/// quietly — nothing is left to show.
pub static OUTPUT_GONE: AtomicBool = AtomicBool::new(false);

/// Set when SIGUSR1 arrives: show how the run stands, like `dd`.
pub static SHOW: AtomicBool = AtomicBool::new(false);

/// Set when SIGHUP arrives: a live capture reopens its `-w` file (after
/// logrotate moved it away), as daemons do.
pub static REOPEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signo: libc::c_int) {
    if signo == libc::SIGUSR1 {
        SHOW.store(true, Ordering::Relaxed);
    } else if signo == libc::SIGHUP {
        REOPEN.store(true, Ordering::Relaxed);
    } else {
        STOPPED_BY.store(signo, Ordering::Relaxed);
        STOP.store(true, Ordering::Relaxed);
    }
}

/// Installs the handlers (without SA_RESTART, so a blocked read returns).
pub fn install() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGHUP, &sa, std::ptr::null_mut());
    }
}
