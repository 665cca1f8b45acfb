//! `kacap lab SCENARIO`: the walkthrough from the seed notes, live, in a
//! few seconds, without touching the host's network.
//!
//! The process moves into a private network namespace of its own
//! (unshare(CLONE_NEWNET)), brings its `lo` up, captures there with libpcap,
//! and runs a server on 127.0.0.1:2333 and a keepalive client itself (see
//! [`crate::lab::traffic`]): the peer is silenced with a SO_ATTACH_FILTER drop-all
//! (dead peer) or vanishes with a TCP_REPAIR close (peer reboot). When the
//! process ends, the namespace and everything in it go with it.

pub mod path;
pub mod traffic;

use crate::error::Error;
use crate::host::signal;
use std::io;
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;
use traffic::{Scenario, Timers};

/// The lab's server port, as in the walkthrough.
pub const PORT: u16 = 2333;

/// The scenario starts this long after its thread (for the capture to open).
const START_DELAY_SECS: f64 = 0.2;
/// By this long after its thread starts, a scenario's connection is set up
/// and idle (`--capture-after` counts from there).
pub const SETTLE_SECS: f64 = START_DELAY_SECS + 0.3;

/// Says what the scenario does and what to expect, in a few lines.
pub fn describe(name: &str, scenario: Scenario, t: Timers) -> String {
    let setup = format!(
        "kacap lab {name}: a client with SO_KEEPALIVE, TCP_KEEPIDLE {}, TCP_KEEPINTVL {}, TCP_KEEPCNT {} \
         connects to a server on 127.0.0.1:{PORT}, in a private network namespace.",
        t.idle, t.interval, t.count
    );
    let what = match scenario {
        Scenario::Healthy { answered } => format!(
            "The server answers: expect a probe every {} s, each ACKed ({answered} of them).",
            t.idle
        ),
        Scenario::DeadPeer => format!(
            "After the handshake the server's socket is silenced (SO_ATTACH_FILTER drop-all, as if the \
             host vanished): expect probes {} s apart going unanswered, then the client's RST after {} of \
             them, {} s in.",
            t.interval,
            t.count,
            t.idle + t.count * t.interval
        ),
        Scenario::PeerReboot => format!(
            "After the handshake the server's socket vanishes without FIN or RST (TCP_REPAIR close, as if \
             the host rebooted): expect the first probe, {} s in, to be answered by RST.",
            t.idle
        ),
        Scenario::ServerSide { answered } => format!(
            "Here the server's accepted socket has keepalive on instead: expect the server to probe every \
             {} s and the client to answer ({answered} of them).",
            t.idle
        ),
        Scenario::AcksDropped => format!(
            "After the handshake the client's own socket is silenced (SO_ATTACH_FILTER drop-all on the \
             prober, as an INPUT firewall rule or conntrack would drop them): the server answers every \
             probe, the answers never reach the client, so it keeps probing {} s apart and resets after \
             {} probes, {} s in.",
            t.interval,
            t.count,
            t.idle + t.count * t.interval
        ),
        Scenario::RetransmitTimeout => format!(
            "The server's socket is silenced; the client (no keepalive, TCP_USER_TIMEOUT {} s) pauses {} s, \
             sends data, retransmits it with exponential backoff, and gives up without a RST.",
            t.interval * t.count,
            t.idle
        ),
        Scenario::IdleTimeout => format!(
            "Between them a router NATs with conntrack and forgets a connection idle for {} s (its \
             established timeout; what it no longer knows it drops, as a cloud NAT or firewall does). The \
             client (no keepalive, TCP_USER_TIMEOUT {} s) pauses {} and lives, then pauses {} s: expect \
             its next data to go unanswered, retransmitted until it gives up, and the timeout bounded \
             between the two pauses.",
            t.idle,
            t.interval * t.count,
            crate::core::text::Secs(f64::from(t.idle) / 2.0),
            t.idle + 2
        ),
        Scenario::StalePool => format!(
            "An HTTP/1.1 server that closes a keep-alive connection idle for {} s (its keep-alive timeout, \
             as nginx's keepalive_timeout), and a client whose pool reuses the connection {} s after its last \
             response without looking: expect the server's FIN, then the reused request answered by RST \
             (ECONNRESET: the keep-alive race), then the retry on a new connection.",
            t.idle,
            t.idle + 1
        ),
    };
    let setup = match scenario {
        Scenario::ServerSide { .. } => setup.replace("a client with SO_KEEPALIVE", "a client"),
        Scenario::IdleTimeout => format!(
            "kacap lab {name}: a client (192.0.2.2), a router (192.0.2.1 / 198.51.100.1) and a server \
             ({}) in three private network namespaces, captured on the client's {}.",
            path::SERVER,
            path::CLIENT_IFACE
        ),
        Scenario::StalePool => format!(
            "kacap lab {name}: an HTTP/1.1 server on 127.0.0.1:{PORT} and a client with a connection pool \
             (no TCP keepalive), in a private network namespace."
        ),
        Scenario::RetransmitTimeout => setup.replace(
            &format!(
                "a client with SO_KEEPALIVE, TCP_KEEPIDLE {}, TCP_KEEPINTVL {}, TCP_KEEPCNT {}",
                t.idle, t.interval, t.count
            ),
            "a client",
        ),
        _ => setup,
    };
    format!("{setup}\n{what}")
}

/// The capture of each scenario shipped inside kacap (fixtures/, made by
/// `kacap lab NAME --idle 2 --interval 1 --count 2 -w FILE`), for
/// `kacap lab NAME --replay`: the walkthrough without root, from anywhere.
pub fn bundled(name: &str) -> Option<&'static [u8]> {
    Some(match name {
        "healthy" => include_bytes!("../../fixtures/healthy.pcap"),
        "dead-peer" => include_bytes!("../../fixtures/dead-peer.pcap"),
        "peer-reboot" => include_bytes!("../../fixtures/peer-reboot.pcap"),
        "server-side" => include_bytes!("../../fixtures/server-side.pcap"),
        "acks-dropped" => include_bytes!("../../fixtures/acks-dropped.pcap"),
        "retransmit-timeout" => include_bytes!("../../fixtures/retransmit-timeout.pcap"),
        "stale-pool" => include_bytes!("../../fixtures/stale-pool.pcap"),
        "idle-timeout" => include_bytes!("../../fixtures/idle-timeout.pcap"),
        _ => return None,
    })
}

/// Needs root: say so, and what to do instead.
pub fn check_root() -> Result<(), Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::Usage(
            "kacap lab needs root: it creates a private network namespace and closes a socket in \
             TCP_REPAIR mode (run: sudo kacap lab dead-peer); without root, replay the capture of a \
             scenario shipped inside kacap: kacap lab dead-peer --replay"
                .into(),
        ));
    }
    Ok(())
}

/// Moves this process (before it starts any thread) into a new network
/// namespace and brings its loopback interface up.
pub fn enter_private_network() -> Result<(), Error> {
    let fail = |what: &str| Error::Lab(format!("{what}: {}", io::Error::last_os_error()));
    // SAFETY: plain syscalls on values we own.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            return Err(fail("cannot create a network namespace (unshare)"));
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return Err(fail("socket"));
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let ok = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) == 0 && {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) == 0
        };
        libc::close(fd);
        if !ok {
            return Err(fail("cannot bring lo up in the new namespace"));
        }
    }
    Ok(())
}

/// Starts the scenario's sockets in a thread; when it is done (and a moment
/// later, for the last packets), the capture is told to stop.
pub fn start_traffic(
    scenario: Scenario,
    t: Timers,
) -> Result<JoinHandle<io::Result<Option<io::Error>>>, Error> {
    if scenario == Scenario::IdleTimeout {
        // Across the path `path::build` made (its server listens there).
        let server = path::SERVER
            .parse()
            .map_err(|_| Error::Lab("bad server address".into()))?;
        return Ok(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(START_DELAY_SECS));
            let result = traffic::idle_timeout(server, t);
            std::thread::sleep(Duration::from_millis(400));
            signal::STOP.store(true, Ordering::Relaxed);
            result
        }));
    }
    let listener = TcpListener::bind(("127.0.0.1", PORT))
        .map_err(|e| Error::Lab(format!("cannot listen on 127.0.0.1:{PORT}: {e}")))?;
    Ok(std::thread::spawn(move || {
        // Let the capture start first.
        std::thread::sleep(Duration::from_secs_f64(START_DELAY_SECS));
        let result = traffic::run(listener, t, scenario);
        std::thread::sleep(Duration::from_millis(400));
        signal::STOP.store(true, Ordering::Relaxed);
        result
    }))
}
