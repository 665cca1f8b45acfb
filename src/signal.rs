//! Ctrl-C (SIGINT) and SIGTERM only flip a flag; the capture loop checks it,
//! then the summary is printed and the `-w` file closed as usual. SIGUSR1
//! flips another: the loop shows how the run stands, on stderr, and goes on.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set when SIGINT or SIGTERM arrives.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Set when SIGUSR1 arrives: show how the run stands, like `dd`.
pub static SHOW: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signo: libc::c_int) {
    if signo == libc::SIGUSR1 {
        SHOW.store(true, Ordering::Relaxed);
    } else {
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
    }
}
