//! `kacap sockets [FILTER]`: a small filter in tcpdump's words —
//! `port N`, `src port N` / `sport N` (local), `dst port N` / `dport N`
//! (remote), `host ADDR` (either end), `state NAME` (`established`,
//! `listen`, `time-wait`, … as `ss` names them), joined by `and`. Every
//! condition must hold.

use super::{DiagSocket, TcpState};
use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    conds: Vec<Cond>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Cond {
    Port(u16),
    Local(u16),
    Remote(u16),
    Host(IpAddr),
    State(&'static str),
}

impl Filter {
    /// Parses the words; the error is one line saying what to write.
    pub fn parse(words: &[String]) -> Result<Filter, String> {
        let words: Vec<&str> = words
            .iter()
            .flat_map(|w| w.split_whitespace())
            .filter(|w| *w != "and" && *w != "tcp")
            .collect();
        let mut conds = Vec::new();
        let mut i = 0;
        let value = |i: usize, what: &str| -> Result<&str, String> {
            words.get(i).copied().ok_or_else(|| {
                format!("sockets filter: '{what}' needs a value (e.g. '{what} 2333')")
            })
        };
        let port = |s: &str| -> Result<u16, String> {
            s.parse()
                .map_err(|_| format!("sockets filter: '{s}' is not a port (1 to 65535)"))
        };
        while i < words.len() {
            let w = words[i];
            let (cond, used) = match w {
                "port" => (Cond::Port(port(value(i + 1, "port")?)?), 2),
                "sport" => (Cond::Local(port(value(i + 1, "sport")?)?), 2),
                "dport" => (Cond::Remote(port(value(i + 1, "dport")?)?), 2),
                "src" | "dst" if words.get(i + 1) == Some(&"port") => {
                    let p = port(value(i + 2, "port")?)?;
                    (
                        if w == "src" {
                            Cond::Local(p)
                        } else {
                            Cond::Remote(p)
                        },
                        3,
                    )
                }
                "host" => {
                    let v = value(i + 1, "host")?;
                    let ip = v
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse()
                        .map_err(|_| format!("sockets filter: '{v}' is not an IP address"))?;
                    (Cond::Host(ip), 2)
                }
                "state" => {
                    let v = value(i + 1, "state")?;
                    let v = if v == "listening" { "listen" } else { v };
                    let name = TcpState::NAMES.iter().find(|n| **n == v).ok_or_else(|| {
                        format!(
                            "sockets filter: no state '{v}'; one of: {}",
                            TcpState::NAMES.join(", ")
                        )
                    })?;
                    (Cond::State(name), 2)
                }
                other => {
                    return Err(format!(
                        "sockets filter: '{other}' is not understood; use port N, src port N, dst port N, host ADDR, state NAME, joined by 'and'"
                    ));
                }
            };
            conds.push(cond);
            i += used;
        }
        Ok(Filter { conds })
    }

    pub fn matches(&self, s: &DiagSocket) -> bool {
        self.conds.iter().all(|c| match *c {
            Cond::Port(p) => s.local.port() == p || s.remote.port() == p,
            Cond::Local(p) => s.local.port() == p,
            Cond::Remote(p) => s.remote.port() == p,
            Cond::Host(ip) => s.local.ip() == ip || s.remote.ip() == ip,
            Cond::State(name) => s.state.as_str() == name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn tcpdump_words_and_ss_states() {
        assert!(Filter::parse(&words("port 2333 and state established")).is_ok());
        assert!(Filter::parse(&words("tcp src port 80")).is_ok());
        assert!(Filter::parse(&words("host ::1")).is_ok());
        assert!(
            Filter::parse(&words("port"))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            Filter::parse(&words("port http"))
                .unwrap_err()
                .contains("not a port")
        );
        assert!(
            Filter::parse(&words("state up"))
                .unwrap_err()
                .contains("one of: established")
        );
        assert!(
            Filter::parse(&words("net 10.0.0.0/8"))
                .unwrap_err()
                .contains("not understood")
        );
    }
}
