//! The usual suspects: idle timeouts that well-known middleboxes have by
//! default, matched against the bound a capture measured ("between 340 s
//! and 360 s: AWS NAT Gateway's … default 350 s falls in it"). Each value
//! and its source is in docs/how-kacap-decides.md ("Middlebox idle
//! timeouts people meet"). A configured value can be anything: a match is
//! a place to look, never a finding, and nothing is named when the bound
//! has no lower end (every default under the upper one would do).

use crate::core::text::Secs;

/// A well-known default idle timeout.
pub struct Suspect {
    /// Who has it, as people search for it.
    pub who: &'static str,
    pub secs: f64,
}

/// The table (docs/how-kacap-decides.md gives each one's source).
pub const SUSPECTS: &[Suspect] = &[
    Suspect {
        who: "nginx's proxy_read_timeout",
        secs: 60.0,
    },
    Suspect {
        who: "Azure Load Balancer's and Azure NAT Gateway's (4 min)",
        secs: 240.0,
    },
    Suspect {
        who: "Cloudflare's proxy",
        secs: 270.0,
    },
    Suspect {
        who: "AWS NAT Gateway's, Network Load Balancer's and Network Firewall's",
        secs: 350.0,
    },
    Suspect {
        who: "Google Cloud load balancers' and VPC firewall's",
        secs: 600.0,
    },
    Suspect {
        who: "Docker swarm's / IPVS's",
        secs: 900.0,
    },
    Suspect {
        who: "Google Cloud NAT's (established)",
        secs: 1200.0,
    },
    Suspect {
        who: "Linux conntrack's under kube-proxy (nf_conntrack_tcp_timeout_established)",
        secs: 86_400.0,
    },
    Suspect {
        who: "Linux conntrack's own (nf_conntrack_tcp_timeout_established, 5 days)",
        secs: 432_000.0,
    },
];

/// The measured bound, widened by the measurement's slack: a middlebox
/// that forgets on a timer notices at its next sweep, and the silences are
/// measured between captured packets (1 s and 1 %, whichever is more).
fn slack(v: f64) -> f64 {
    (v * 0.01).max(1.0)
}

/// The suspects whose default lies between `lower` (the longest silence
/// survived) and `upper` (the shortest that killed).
pub fn within(lower: f64, upper: f64) -> Vec<&'static Suspect> {
    SUSPECTS
        .iter()
        .filter(|s| s.secs >= lower - slack(lower) && s.secs <= upper + slack(upper))
        .collect()
}

/// "Well-known defaults in that range: …" (with the caveat), or nothing
/// when no lower bound is known or no default fits.
pub fn named(lower: Option<f64>, upper: f64) -> Option<String> {
    let found = within(lower?, upper);
    if found.is_empty() {
        return None;
    }
    let each: Vec<String> = found
        .iter()
        .map(|s| format!("{} {}", s.who, Secs(s.secs)))
        .collect();
    Some(format!(
        "well-known defaults in that range: {} (a configured value can be anything: check the boxes on this path)",
        each.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_round_350_s_names_aws_and_nothing_else() {
        let n = named(Some(340.0), 360.0).unwrap();
        assert!(n.contains("AWS NAT Gateway's"), "{n}");
        assert!(!n.contains("Azure") && !n.contains("Google"), "{n}");
    }

    #[test]
    fn the_slack_lets_a_kill_just_after_the_timeout_match() {
        // Killed by the first packet 1.2 s after a 350 s timeout: 351.2 s.
        assert_eq!(within(300.0, 351.2).len(), 1);
        // Survived 349.5 s of a 350 s timeout.
        assert_eq!(within(349.5, 400.0).len(), 1);
    }

    #[test]
    fn nothing_is_named_without_a_lower_bound_or_a_match() {
        assert_eq!(named(None, 400.0), None);
        assert_eq!(named(Some(20.0), 40.0), None);
    }
}
