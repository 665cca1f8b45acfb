//! What the retransmission analysis says: its JSON member, the
//! `retransmit-timeout` verdict's words and account, its metric.

use super::{GaveUp, Retransmit};
use crate::analyses::describe::{Describe, FindingsOf, MarkOf};
use crate::analyses::event::{Step, Summary};
use crate::analyses::verdict::Verdict;
use crate::core::emit::Emit;
use crate::core::text::{Num, seconds};
use std::fmt::Write as _;
use std::io::Write as _;

impl Describe for Retransmit {
    type Mark = ();
    /// Connections that ended `retransmit-timeout`.
    type Tally = u64;
    type ServerTally = ();
    type Evidence = ();

    fn mark(_: &Self::Note) {}

    fn shown<F: FindingsOf<Self>>(f: &Summary<F>) -> bool {
        f.findings.found().is_some()
    }

    fn json_flow<F: FindingsOf<Self>>(f: &Summary<F>, out: &mut Vec<u8>) {
        if let Some(r) = f.findings.found() {
            out.s(",\"retransmit\":{\"count\":").n(r.count);
            let _ = write!(out, ",\"gave_up_after\":{}}}", Num(r.gave_up_after));
        }
    }

    fn ended<F: FindingsOf<Self>>(_f: &Summary<F>) -> Option<String> {
        Some(": data retransmitted until the sender gave up".to_string())
    }

    /// Data never acknowledged, retransmitted until the sender gave up;
    /// what else would look the same.
    fn account<F: FindingsOf<Self>, M: MarkOf<Self>>(
        f: &Summary<F>,
        _steps: &[Step<M>],
        o: &mut String,
    ) -> bool {
        if f.verdict != Verdict::RetransmitTimeout {
            return false;
        }
        let Some(r) = *f.findings.found() else {
            return true;
        };
        let (who, peer) = (r.sender.name(), r.sender.other().name());
        let times = if r.count == 1 { "once" } else { "times" };
        let count = if r.count == 1 {
            String::new()
        } else {
            format!("{} ", r.count)
        };
        let backoff = if r.backoff {
            ", each time waiting twice as long (exponential backoff)"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  Data from the {who} was never acknowledged: it was retransmitted {count}{times}{backoff}."
        );
        let after = r.gave_up_after.map(seconds).unwrap_or_default();
        let _ = match r.how {
            GaveUp::Rst => writeln!(
                o,
                "  {after} after the first transmission the {who} gave up and reset the connection."
            ),
            GaveUp::Silent => writeln!(
                o,
                "  {after} after the first transmission the retransmissions stopped and the {who} fell silent: \
                 Linux gives up without a RST when TCP_USER_TIMEOUT or net.ipv4.tcp_retries2 runs out, and \
                 the application sees ETIMEDOUT (\"Connection timed out\")."
            ),
            GaveUp::CaptureEnded => writeln!(
                o,
                "  The capture ends before the {who}'s next retransmission was due: whether it gave up, and \
                 when, is not in it."
            ),
        };
        let _ = writeln!(
            o,
            "  Keepalive cannot help while data is in flight: the kernel does not probe then. What bounds \
             the wait is TCP_USER_TIMEOUT (per socket: how long data may stay unacknowledged) or, without \
             it, net.ipv4.tcp_retries2 (default 15: about 924 s with a 200 ms RTO)."
        );
        if f.same_host() {
            let _ = writeln!(
                o,
                "  Both ends are on this host ({}), so no middlebox is involved: segments for the {peer}'s \
                 socket were dropped on this host (a socket filter, a firewall rule), or the {peer} stopped \
                 taking them.",
                f.server.ip()
            );
        } else {
            let _ = writeln!(
                o,
                "  One connection cannot tell why the {peer} went silent: a host that vanished (power, cable), \
                 a firewall that started dropping, or a middlebox that forgot the connection would all look \
                 the same. Other connections to {} would tell them apart.",
                f.server
            );
        }
        true
    }

    fn tally<F: FindingsOf<Self>>(t: &mut u64, _server: &mut (), f: &Summary<F>) {
        if f.verdict == Verdict::RetransmitTimeout {
            *t += 1;
        }
    }

    fn render(t: &u64, o: &mut String) {
        crate::analyses::describe::metric_head(
            o,
            "kacap_retransmit_timeouts_total",
            "counter",
            "Connections whose unanswered data was retransmitted until the sender gave up.",
        );
        let _ = writeln!(o, "kacap_retransmit_timeouts_total {t}");
    }
}
