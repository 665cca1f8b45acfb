//! The keepalive analysis on explicit segments: episodes, inferred
//! settings, answers the prober never heard, the stacks' defaults.

mod unit {
    use super::super::*;

    fn t(s: f64) -> Timestamp {
        Timestamp::new(s.trunc() as i64, ((s.fract()) * 1e9).round() as u32)
    }

    #[test]
    fn dead_peer_episode_infers_interval_and_count() {
        let mut k = Tracker::default();
        assert!(matches!(
            k.probe(0, 4, t(12.0), Some(2.0), None),
            Note::Probe { number: 1, .. }
        ));
        assert!(matches!(
            k.probe(0, 5, t(13.0), Some(1.0), None),
            Note::Probe {
                number: 2,
                since_prev: Some(_),
                ..
            }
        ));
        assert!(matches!(k.rst(0, t(14.0)), Note::GaveUp { count: 2, .. }));
        k.finish(t(15.0));
        let p = &k.sides[0];
        assert_eq!((p.probes, p.unanswered, p.answered), (2, 2, 0));
        assert_eq!(p.idle(), Some(2.0));
        assert!((p.interval().unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(p.count(), Some(2));
        assert_eq!(k.last_outcome(), Some(Outcome::GaveUp));
    }

    #[test]
    fn answered_probes_are_separate_episodes() {
        let mut k = Tracker::default();
        k.probe(0, 4, t(12.0), Some(2.0), None);
        assert!(matches!(
            k.answered(1, t(12.001), None),
            Note::ProbeAnswered {
                reply_to: 4,
                number: 1,
                ..
            }
        ));
        assert!(matches!(
            k.probe(0, 6, t(14.001), Some(2.0), None),
            Note::Probe { number: 1, .. }
        ));
        k.answered(1, t(14.002), None);
        k.finish(t(20.0));
        assert_eq!(k.sides[0].interval(), None);
        assert_eq!(k.sides[0].count(), None);
        assert_eq!(k.last_outcome(), Some(Outcome::Answered));
    }

    #[test]
    fn rst_reply_is_peer_reset() {
        let mut k = Tracker::default();
        k.probe(0, 9, t(5.0), Some(2.0), None);
        assert!(matches!(
            k.rst(1, t(5.001)),
            Note::PeerReset {
                reply_to: 9,
                number: 1,
                ordinal: 1
            }
        ));
        assert_eq!(k.last_outcome(), Some(Outcome::PeerReset));
        assert_eq!(k.sides[0].rst, 1);
    }
}

mod deaf {
    use super::super::*;

    fn t(s: f64) -> Timestamp {
        Timestamp::new(1_700_000_000, 0).plus(s)
    }

    #[test]
    fn answered_probes_the_prober_did_not_hear_are_one_episode() {
        // Probes 75 s apart, each answered on the wire (TS val 500, 600),
        // but every probe echoes TS ecr 100: the answers never arrived.
        let mut k = Tracker::default();
        k.probe(0, 1, t(0.0), Some(7200.0), Some((10, 100)));
        k.answered(1, t(0.001), Some(500));
        let note = k.probe(0, 3, t(75.0), Some(75.0), Some((85, 100)));
        assert!(matches!(
            note,
            Note::Probe {
                number: 2,
                unheard: true,
                ..
            }
        ));
        k.answered(1, t(75.001), Some(600));
        assert!(matches!(
            k.rst(0, t(150.0)),
            Note::GaveUp {
                count: 2,
                unheard: true,
                ..
            }
        ));
        let run = k.sides[0].run;
        assert!(run.deaf());
        assert_eq!((run.probes, run.answered, run.unheard), (2, 2, 1));
        assert_eq!(run.first_idle, Some(7200.0));
        assert!((run.gap().unwrap() - 75.0).abs() < 1e-6);
    }

    #[test]
    fn a_heard_answer_moves_ts_ecr_and_is_no_evidence() {
        let mut k = Tracker::default();
        k.probe(0, 1, t(0.0), Some(2.0), Some((10, 100)));
        k.answered(1, t(0.001), Some(500));
        let note = k.probe(0, 3, t(2.0), Some(2.0), Some((12, 500)));
        assert!(matches!(
            note,
            Note::Probe {
                number: 1,
                unheard: false,
                ..
            }
        ));
        k.answered(1, t(2.001), Some(700));
        assert!(!k.sides[0].run.deaf());
    }

    #[test]
    fn without_timestamps_the_probers_rst_after_answered_probes_is_the_evidence() {
        let mut k = Tracker::default();
        for i in 0..3 {
            let at = 75.0 * f64::from(i);
            k.probe(0, 1, t(at), Some(75.0), None);
            k.answered(1, t(at + 0.001), None);
        }
        assert!(matches!(
            k.rst(0, t(225.0)),
            Note::GaveUp {
                count: 3,
                unheard: true,
                ..
            }
        ));
        assert!(k.sides[0].run.deaf());
        // An application's abort long after an answered probe is not.
        let mut k = Tracker::default();
        k.probe(0, 1, t(0.0), Some(2.0), None);
        k.answered(1, t(0.001), None);
        k.probe(0, 3, t(2.0), Some(2.0), None);
        k.answered(1, t(2.001), None);
        assert!(matches!(k.rst(0, t(30.0)), Note::None));
        assert!(!k.sides[0].run.deaf());
    }
}

mod defaults {
    use super::super::*;

    #[test]
    fn only_settings_that_differ_are_named_and_unknown_ones_never() {
        let d = LINUX_DEFAULTS;
        assert_eq!(
            d.differing(Some(20.48), Some(1.02), Some(9)),
            [true, true, false]
        );
        assert_eq!(
            d.differing(Some(7210.0), Some(75.3), None),
            [false, false, false]
        );
        assert_eq!(d.differing(None, None, None), [false, false, false]);
    }
}
