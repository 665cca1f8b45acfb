//! The resolution of sources and the one-line verdicts, on a host made up
//! in the test (no privileges, no real sockets).

use super::*;

struct FakeHost {
    sockets: Vec<DiagSocket>,
    owners: HashMap<u64, Owner>,
    opts: HashMap<u32, Result<SockOpts, String>>,
}

impl Host for FakeHost {
    fn sockets(&self) -> io::Result<Vec<DiagSocket>> {
        Ok(self.sockets.clone())
    }
    fn owners(&self) -> HashMap<u64, Owner> {
        self.owners.clone()
    }
    fn sockopts(&self, o: &Owner) -> Result<SockOpts, String> {
        self.opts.get(&o.pid).cloned().unwrap_or(Err("gone".into()))
    }
    fn sysctls(&self) -> io::Result<Sysctls> {
        Ok(LINUX)
    }
}

const LINUX: Sysctls = Sysctls {
    time: 7200,
    intvl: 75,
    probes: 9,
    retries2: Some(15),
};

fn established(local: &str, inode: u64, timer: Option<TimerKind>) -> DiagSocket {
    DiagSocket {
        local: local.parse().unwrap(),
        remote: "10.0.0.1:5432".parse().unwrap(),
        state: TcpState::Established,
        timer: Timer {
            kind: timer,
            expires: 14.0,
            probes: 0,
        },
        uid: 0,
        inode,
        probes: Some(0),
        lastsnd: Some(1.0),
        lastrcv: Some(1.0),
    }
}

fn owner(pid: u32) -> Owner {
    Owner {
        pid,
        fd: 3,
        comm: format!("app{pid}"),
    }
}

fn host() -> FakeHost {
    let opts = |keepalive, idle, interval, count, ut| SockOpts {
        keepalive,
        idle,
        interval,
        count,
        user_timeout_ms: ut,
    };
    FakeHost {
        sockets: vec![
            established("10.0.0.2:40001", 1, None),
            established("10.0.0.2:40002", 2, Some(TimerKind::Keepalive)),
            established("10.0.0.2:40003", 3, Some(TimerKind::Keepalive)),
            established("10.0.0.2:40004", 4, Some(TimerKind::Keepalive)),
            established("10.0.0.2:40005", 5, None),
        ],
        owners: (1..=5).map(|i| (i, owner(100 + i as u32))).collect(),
        opts: [
            (101, Ok(opts(false, 7200, 75, 9, 0))),
            (102, Ok(opts(true, 7200, 75, 9, 0))),
            (103, Ok(opts(true, 20, 75, 3, 30_000))),
            (
                104,
                Err("reading pid 104's socket options needs root or CAP_SYS_PTRACE".into()),
            ),
            (
                105,
                Err("reading pid 105's socket options needs root or CAP_SYS_PTRACE".into()),
            ),
        ]
        .into_iter()
        .collect(),
    }
}

fn all() -> Vec<Socket> {
    collect(&host(), &|_| true).unwrap().1
}

#[test]
fn values_equal_to_the_sysctl_come_from_it_others_from_the_socket() {
    let s = all();
    assert_eq!(s[0].keepalive, Some(false));
    assert_eq!(s[1].keepalive, Some(true));
    assert_eq!(
        s[1].idle,
        Setting {
            value: 7200,
            source: Source::Sysctl
        }
    );
    assert_eq!(
        s[2].idle,
        Setting {
            value: 20,
            source: Source::Socket
        }
    );
    assert_eq!(s[2].interval.source, Source::Sysctl);
    assert_eq!(
        s[2].count,
        Setting {
            value: 3,
            source: Source::Socket
        }
    );
    assert_eq!(s[2].user_timeout, Some(30.0));
    assert!(s.iter().take(3).all(|s| s.exact));
}

#[test]
fn unreadable_options_are_inferred_and_said_so() {
    let s = all();
    // A running keepalive timer: SO_KEEPALIVE is on.
    assert_eq!((s[3].keepalive, s[3].exact), (Some(true), false));
    assert_eq!(s[3].idle.source, Source::Sysctl);
    // No timer: unknown.
    assert_eq!(s[4].keepalive, None);
    assert!(s[4].why.as_deref().unwrap().contains("CAP_SYS_PTRACE"));
}

#[test]
fn one_line_says_why_no_probe_will_come_and_which_namespace_rules() {
    let sockets = all();
    let t = Table {
        sysctls: LINUX,
        host_sysctls: Some(Sysctls { time: 600, ..LINUX }),
        netns: None,
        sockets: sockets.clone(),
    };
    let off = verdict(&sockets[0], &t).unwrap();
    assert!(
        off.contains("(pid 101 app101): no keepalive probe will ever come: SO_KEEPALIVE is off"),
        "{off}"
    );
    let on = verdict(&sockets[1], &t).unwrap();
    assert!(
        on.contains("first probe after 7200 s idle (the namespace's tcp_keepalive_time)"),
        "{on}"
    );
    assert!(
        on.contains("the host's tcp_keepalive_time is 600 but this namespace's is 7200"),
        "{on}"
    );
    let own = verdict(&sockets[2], &t).unwrap();
    assert!(
        own.contains("after 20 s idle (TCP_KEEPIDLE, set on the socket)"),
        "{own}"
    );
    assert!(!own.contains("the host's"), "{own}");
    let inferred = verdict(&sockets[3], &t).unwrap();
    assert!(inferred.contains("inferred"), "{inferred}");
    let unknown = verdict(&sockets[4], &t).unwrap();
    assert!(unknown.contains("SO_KEEPALIVE unknown"), "{unknown}");
}

#[test]
fn the_filter_picks_sockets_before_owners_are_looked_up() {
    let f = filter::Filter::parse(&["sport".into(), "40003".into()]).unwrap();
    let (_, s) = collect(&host(), &|d| f.matches(d)).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].owner.as_ref().unwrap().pid, 103);
}

#[test]
fn a_connection_is_joined_by_its_two_ends_and_the_table_is_read_when_needed() {
    let mut j = join::Joiner::new(Box::new(host()), Some(Sysctls { time: 600, ..LINUX }));
    let client: SocketAddr = "10.0.0.2:40003".parse().unwrap();
    let server: SocketAddr = "10.0.0.1:5432".parse().unwrap();
    let got = j.lookup(client, server, false).unwrap();
    let c = got.client.as_ref().unwrap();
    assert_eq!(c.owner.as_ref().unwrap().pid, 103);
    assert!(got.server.is_none(), "the server end is not on this host");
    assert_eq!(got.host_sysctls.unwrap().time, 600);
    assert!(join::describe(c).contains("TCP_KEEPIDLE 20 (socket) / TCP_KEEPINTVL 75 (sysctl) / TCP_KEEPCNT 3 (socket), TCP_USER_TIMEOUT 30 s"));
    // The same connection seen from its server's side of the capture.
    assert!(j.lookup(server, client, false).unwrap().server.is_some());
    assert!(
        j.lookup("10.9.9.9:1".parse().unwrap(), server, false)
            .is_none()
    );
}
