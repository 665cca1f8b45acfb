//! `--kernel`: each connection's end as the kernel's tracepoints told it
//! (a `kacap watch` running beside the capture), joined to its summary,
//! and whether the packets' verdict agrees.

use crate::analyses::verdict::Verdict;
use crate::host::kernel::Seen;
use crate::host::kernel::ends::{Cause, End, KernelEnds};
use crate::pipeline::summary::FlowSummary;

/// Whether a packet verdict and the kernel's cause agree: `None` when the
/// cause says nothing about it (a clean close, a local abort).
pub fn agrees(verdict: Verdict, cause: Cause) -> Option<bool> {
    use Verdict as V;
    Some(match cause {
        Cause::KeepaliveTimeout => matches!(verdict, V::DeadPeer | V::AcksDropped | V::Undecided),
        Cause::RetransmitTimeout | Cause::UserTimeout | Cause::ZeroWindowTimeout => {
            matches!(verdict, V::RetransmitTimeout | V::IdleTimeout)
        }
        Cause::PeerReset => matches!(verdict, V::PeerReset | V::StaleConnection | V::IdleTimeout),
        Cause::LocalAbort | Cause::Closed | Cause::Refused => return None,
    })
}

/// The join: looked up when a connection is reported.
pub struct KernelJoin {
    seen: Seen,
}

impl KernelJoin {
    pub fn new(seen: Seen) -> KernelJoin {
        KernelJoin { seen }
    }

    /// `f` with the kernel's ends of its two sockets, when it saw any. A
    /// connection just ended may be reported before its end settled: it
    /// waits for it a moment (at most 300 ms).
    pub fn flow(&self, f: &FlowSummary) -> FlowSummary {
        let mut f = f.clone();
        let look = || {
            let map = self.seen.lock().ok()?;
            let client = map.get(&(f.client, f.server)).cloned();
            let server = map.get(&(f.server, f.client)).cloned();
            (client.is_some() || server.is_some()).then_some(KernelEnds { client, server })
        };
        let mut found = look();
        let ended = f.close != crate::pipeline::summary::Close::Open;
        let mut waited = 0;
        while found.is_none() && ended && waited < 300 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            waited += 50;
            found = look();
        }
        f.kernel = found.map(Box::new);
        f
    }
}

/// The kernel's words for an end, after the packets' (`— kernel: …`).
pub fn words(e: &End) -> String {
    let mut w = e.cause.as_str().replace('-', " ");
    if let Some(r) = e.reason {
        w.push_str(&format!(", RST sent ({r})"));
    }
    if let Some(n) = e.errno {
        w.push_str(&format!(", errno {n}"));
    }
    w
}
