//! The analyses kacap runs on every connection, in order, and the one rule
//! that combines what they found into a verdict. Adding an analysis is its
//! folder and a line here; its note, findings and words then reach every
//! output through the loops the list generates (see `macros`). The order
//! is the order of their words in every output.

crate::analyses::macros::analyses! {
    /// TCP keepalive: probes, episodes, inferred TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT.
    keepalive: crate::analyses::keepalive::Keepalive,
    /// Middlebox idle timeouts: silences survived and the one that killed.
    middlebox: crate::analyses::middlebox::IdleWatch,
    /// Unanswered data retransmitted until the sender gave up.
    retransmit: crate::analyses::retransmit::Retransmit,
    /// HTTP/1.x requests, responses and keep-alive.
    http: crate::analyses::http::HttpAnalysis,
    /// Application keepalives: HTTP/2 PING/GOAWAY, WebSocket, Redis, MySQL, encrypted rhythm.
    app: crate::analyses::app::AppAnalysis,
}

use crate::analyses::keepalive::Outcome;
use crate::analyses::verdict::Verdict;

/// The one place a verdict is decided, from what the analyses found. The
/// rules, in order (the first that holds decides):
/// 1. a middlebox killed the connection after an idle gap → `idle-timeout`;
/// 2. data went unanswered and its sender backed off — retransmitted it at
///    least twice, each time waiting longer — until it gave up (its RST,
///    silence) or the capture ended → `retransmit-timeout` (one
///    retransmission, or several at an even pace, is no sender timing out:
///    a segment out of order, a fast retransmit);
/// 3. a request sent after the server's FIN was answered by RST →
///    `stale-connection` (the HTTP keep-alive pool race);
/// 4. the server answered HTTP/2 pings with GOAWAY ENHANCE_YOUR_CALM →
///    `too-many-pings`;
/// 5. no keepalive probe → when the application pinged (HTTP/2, WebSocket,
///    Redis, MySQL, an encrypted rhythm): `app-ping-timeout` if its latest
///    pings went unanswered (two in a row, or one and the connection ended
///    other than by a normal application close) and the peer said nothing
///    after them (no data, no close frame), else `app-keepalive`;
///    without pings `no-keepalive`;
/// 6. the prober's latest probes were answered on the wire but it behaved
///    as if it heard nothing (TS ecr stuck, or its RST one interval after
///    an answered probe) → `acks-dropped`;
/// 7. otherwise the latest keepalive episode of either side: answered →
///    `alive`, answered by RST → `peer-reset`, unanswered (with or without
///    the prober's RST) → `dead-peer` — except one lone probe the capture
///    ended less than a second after → `undecided`.
pub fn verdict(f: &Findings, closed: bool) -> Verdict {
    if f.middlebox.killed.is_some() {
        return Verdict::IdleTimeout;
    }
    if let Some(r) = f.retransmit
        && r.backoff
    {
        return Verdict::RetransmitTimeout;
    }
    if f.http.is_some_and(|h| h.stale_request) {
        return Verdict::StaleConnection;
    }
    if f.app
        .and_then(|a| a.goaway)
        .is_some_and(|g| g.too_many_pings())
    {
        return Verdict::TooManyPings;
    }
    if f.keepalive.probes == 0 {
        if let Some(a) = f.app.filter(|a| a.pings > 0) {
            if (a.trailing_unanswered >= 2
                || (a.trailing_unanswered == 1 && closed && !a.graceful_end()))
                && !a.peer_talked
            {
                return Verdict::AppPingTimeout;
            }
            return Verdict::AppKeepalive;
        }
        return Verdict::NoKeepalive;
    }
    if f.keepalive.acks_dropped.is_some() {
        return Verdict::AcksDropped;
    }
    match f.keepalive.outcome {
        Some(Outcome::PeerReset) => Verdict::PeerReset,
        Some(Outcome::Unanswered) if f.keepalive.pending.is_some_and(|p| p.too_soon()) => {
            Verdict::Undecided
        }
        Some(Outcome::GaveUp) | Some(Outcome::Unanswered) => Verdict::DeadPeer,
        Some(Outcome::Answered) | Some(Outcome::Interrupted) | None => Verdict::Alive,
    }
}

#[cfg(test)]
mod tests {
    //! One test per rule of `verdict`, from explicit findings (a `const`
    //! template and the fields that matter), and one per order conflict.

    use super::*;
    use crate::analyses::app::{AppSummary, Goaway, Protocol};
    use crate::analyses::http::HttpSummary;
    use crate::analyses::keepalive::{KeepaliveSummary, Pending, Run};
    use crate::analyses::middlebox::{Cause, IdleSummary};
    use crate::analyses::retransmit::{GaveUp, RetransmitSummary};
    use crate::core::tcp::Side;

    const KEEPALIVE: KeepaliveSummary = KeepaliveSummary {
        prober: None,
        probes: 0,
        answered: 0,
        unanswered: 0,
        rst: 0,
        missed: 0,
        idle: None,
        interval: None,
        count: None,
        count_at_least: false,
        outcome: None,
        acks_dropped: None,
        next_probe: None,
        pending: None,
    };
    const NOTHING: Findings = Findings {
        keepalive: KEEPALIVE,
        middlebox: IdleSummary {
            survived: None,
            killed: None,
            bridged: None,
        },
        retransmit: None,
        http: None,
        app: None,
    };
    const PROBED: KeepaliveSummary = KeepaliveSummary {
        probes: 2,
        ..KEEPALIVE
    };
    const RETRANSMITTED: RetransmitSummary = RetransmitSummary {
        sender: Side::Client,
        count: 3,
        gave_up_after: Some(1.5),
        how: GaveUp::Silent,
        backoff: true,
    };
    const HTTP: HttpSummary = HttpSummary {
        requests: 2,
        responses: 1,
        keep_alive: true,
        version: Some("1.1"),
        max_gap: None,
        server_idle_close: None,
        client_idle_close: None,
        advertised_timeout: None,
        stale_request: false,
    };
    const PINGS: AppSummary = AppSummary {
        protocol: Protocol::WebSocket,
        pings: 4,
        pongs: 4,
        interval: Some(1.0),
        intervals: [Some(1.0), None],
        unanswered: 0,
        trailing_unanswered: 0,
        peer_talked: false,
        pinger: Some(Side::Client),
        both: false,
        rtt: Some(0.001),
        other_pings: 0,
        goaway: None,
        close_code: None,
        abrupt: false,
        exchange: None,
    };

    fn with_outcome(outcome: Outcome) -> Findings {
        Findings {
            keepalive: KeepaliveSummary {
                outcome: Some(outcome),
                ..PROBED
            },
            ..NOTHING
        }
    }

    #[test]
    fn rule_1_a_middlebox_kill_is_idle_timeout() {
        let f = Findings {
            middlebox: IdleSummary {
                killed: Some((7.0, Cause::SilentDrop)),
                ..NOTHING.middlebox
            },
            ..NOTHING
        };
        assert_eq!(verdict(&f, true), Verdict::IdleTimeout);
    }

    #[test]
    fn rule_1_comes_before_rule_2_the_kill_explains_the_retransmissions() {
        let f = Findings {
            middlebox: IdleSummary {
                killed: Some((7.0, Cause::SilentDrop)),
                ..NOTHING.middlebox
            },
            retransmit: Some(RETRANSMITTED),
            ..NOTHING
        };
        assert_eq!(verdict(&f, false), Verdict::IdleTimeout);
    }

    #[test]
    fn rule_2_a_sender_that_gave_up_is_retransmit_timeout() {
        let f = Findings {
            retransmit: Some(RETRANSMITTED),
            ..NOTHING
        };
        assert_eq!(verdict(&f, false), Verdict::RetransmitTimeout);
    }

    #[test]
    fn rule_2_needs_a_sender_backing_off() {
        // One retransmission, then the receiver's RST: a segment out of
        // order, not a sender timing out.
        let once = RetransmitSummary {
            count: 1,
            how: GaveUp::Rst,
            gave_up_after: Some(0.0012),
            backoff: false,
            ..RETRANSMITTED
        };
        let f = Findings {
            retransmit: Some(once),
            ..NOTHING
        };
        assert_eq!(verdict(&f, true), Verdict::NoKeepalive);
        // Several at an even pace: no backoff either.
        let even = Findings {
            retransmit: Some(RetransmitSummary { count: 3, ..once }),
            ..NOTHING
        };
        assert_eq!(verdict(&even, true), Verdict::NoKeepalive);
        // Twice, waiting longer, when the capture ended mid-backoff.
        let twice = Findings {
            retransmit: Some(RetransmitSummary {
                count: 2,
                how: GaveUp::CaptureEnded,
                gave_up_after: None,
                backoff: true,
                ..RETRANSMITTED
            }),
            ..NOTHING
        };
        assert_eq!(verdict(&twice, false), Verdict::RetransmitTimeout);
    }

    #[test]
    fn rule_2_comes_before_the_keepalive_rules() {
        let f = Findings {
            retransmit: Some(RETRANSMITTED),
            ..with_outcome(Outcome::Answered)
        };
        assert_eq!(verdict(&f, true), Verdict::RetransmitTimeout);
    }

    #[test]
    fn rule_3_a_request_after_the_servers_fin_answered_by_rst_is_stale_connection() {
        let f = Findings {
            http: Some(HttpSummary {
                stale_request: true,
                ..HTTP
            }),
            ..NOTHING
        };
        assert_eq!(verdict(&f, true), Verdict::StaleConnection);
    }

    #[test]
    fn rule_4_goaway_too_many_pings_is_too_many_pings_even_with_probes() {
        let f = Findings {
            app: Some(AppSummary {
                protocol: Protocol::Http2,
                goaway: Some(Goaway {
                    error: 0xb,
                    last_stream: 1,
                    from: Side::Server,
                    debug: crate::core::text::Text::of(b"too_many_pings"),
                    pinged_every: None,
                }),
                ..PINGS
            }),
            ..with_outcome(Outcome::Answered)
        };
        assert_eq!(verdict(&f, true), Verdict::TooManyPings);
    }

    #[test]
    fn rule_5_no_probe_and_no_ping_is_no_keepalive() {
        assert_eq!(verdict(&NOTHING, true), Verdict::NoKeepalive);
        let http = Findings {
            http: Some(HTTP),
            ..NOTHING
        };
        assert_eq!(verdict(&http, true), Verdict::NoKeepalive);
    }

    #[test]
    fn rule_5_application_pings_without_probes_are_app_keepalive() {
        let f = Findings {
            app: Some(PINGS),
            ..NOTHING
        };
        assert_eq!(verdict(&f, false), Verdict::AppKeepalive);
    }

    #[test]
    fn rule_5_two_unanswered_pings_in_a_row_are_app_ping_timeout() {
        let f = Findings {
            app: Some(AppSummary {
                trailing_unanswered: 2,
                ..PINGS
            }),
            ..NOTHING
        };
        assert_eq!(verdict(&f, false), Verdict::AppPingTimeout);
        // A peer that sent data or a close frame after them is talking.
        let talking = Findings {
            app: Some(AppSummary {
                trailing_unanswered: 2,
                peer_talked: true,
                ..PINGS
            }),
            ..NOTHING
        };
        assert_eq!(verdict(&talking, true), Verdict::AppKeepalive);
    }

    #[test]
    fn rule_5_one_unanswered_ping_counts_only_when_the_connection_then_ended_abruptly() {
        let one = AppSummary {
            trailing_unanswered: 1,
            ..PINGS
        };
        let open = Findings {
            app: Some(one),
            ..NOTHING
        };
        assert_eq!(verdict(&open, false), Verdict::AppKeepalive);
        assert_eq!(verdict(&open, true), Verdict::AppPingTimeout);
        let graceful = Findings {
            app: Some(AppSummary {
                close_code: Some(1000),
                ..one
            }),
            ..NOTHING
        };
        assert_eq!(verdict(&graceful, true), Verdict::AppKeepalive);
    }

    #[test]
    fn rule_5_tcp_probes_outrank_application_pings() {
        let f = Findings {
            app: Some(PINGS),
            ..with_outcome(Outcome::Answered)
        };
        assert_eq!(verdict(&f, false), Verdict::Alive);
    }

    #[test]
    fn rule_6_answers_the_prober_never_heard_are_acks_dropped() {
        let mut run = Run::default();
        (run.probes, run.answered, run.unheard) = (3, 3, 2);
        let f = Findings {
            keepalive: KeepaliveSummary {
                acks_dropped: Some(run),
                outcome: Some(Outcome::GaveUp),
                ..PROBED
            },
            ..NOTHING
        };
        assert_eq!(verdict(&f, true), Verdict::AcksDropped);
    }

    #[test]
    fn rule_7_the_latest_episode_decides() {
        assert_eq!(
            verdict(&with_outcome(Outcome::Answered), false),
            Verdict::Alive
        );
        assert_eq!(
            verdict(&with_outcome(Outcome::Interrupted), false),
            Verdict::Alive
        );
        assert_eq!(
            verdict(&with_outcome(Outcome::PeerReset), true),
            Verdict::PeerReset
        );
        assert_eq!(
            verdict(&with_outcome(Outcome::GaveUp), true),
            Verdict::DeadPeer
        );
        assert_eq!(
            verdict(&with_outcome(Outcome::Unanswered), false),
            Verdict::DeadPeer
        );
    }

    #[test]
    fn rule_7_one_probe_the_capture_ended_right_after_is_undecided() {
        let f = Findings {
            keepalive: KeepaliveSummary {
                outcome: Some(Outcome::Unanswered),
                pending: Some(Pending {
                    probes: 1,
                    waited: 0.2,
                }),
                ..PROBED
            },
            ..NOTHING
        };
        assert_eq!(verdict(&f, false), Verdict::Undecided);
    }

    #[test]
    fn every_verdicts_owner_is_a_registered_analysis() {
        for row in crate::analyses::verdict::TABLE {
            assert!(NAMES.contains(&row.owner), "{}: {}", row.name, row.owner);
        }
    }

    #[test]
    fn per_flow_state_stays_small() {
        // What a connection costs while it is open or lingering: core state
        // plus every analysis's (boxed where only some connections need it).
        // 360: 24 bytes more than before copies (`tcp::Sent`) and each
        // side's own keepalive clock (`DirState::heard`, `probed`) were kept.
        let size = std::mem::size_of::<crate::core::flows::Entry<PerFlow>>();
        assert!(size <= 360, "{size}");
    }
}
