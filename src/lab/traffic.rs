//! Real kernel keepalive traffic on this machine, for the live tests (and
//! the lab): a server socket and a client with SO_KEEPALIVE and short
//! timers, with the peer healthy, silenced, or vanished.
//!
//! - Dead peer: a one-instruction classic BPF program (`ret #0`) attached
//!   with SO_ATTACH_FILTER to the server's accepted socket makes its kernel
//!   drop every segment for it, so the client's probes go unanswered.
//!   Needs no privilege.
//! - Peer reboot: the accepted socket is closed in TCP_REPAIR mode, so it
//!   vanishes without FIN or RST and the next probe is answered by RST.
//!   Needs CAP_NET_ADMIN.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

const TCP_REPAIR: libc::c_int = 19;
const TCP_USER_TIMEOUT: libc::c_int = 18;

/// Keepalive timers, in seconds (TCP_KEEPIDLE, TCP_KEEPINTVL) and probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub idle: u32,
    pub interval: u32,
    pub count: u32,
}

/// What happens to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// The peer answers: `answered` probes go by, then the client closes.
    Healthy { answered: u32 },
    /// The server's socket is silenced; the client's kernel gives up.
    DeadPeer,
    /// The server's socket vanishes; the next probe is answered by RST.
    PeerReboot,
    /// Keepalive on the server's accepted socket instead; the client answers.
    ServerSide { answered: u32 },
    /// The client's own socket is silenced: the server answers every probe,
    /// the answers never reach the client, which gives up (ETIMEDOUT).
    AcksDropped,
    /// No keepalive; TCP_USER_TIMEOUT on the client. The server is silenced,
    /// the client pauses, sends data, retransmits it with backoff and gives
    /// up without a RST (ETIMEDOUT).
    RetransmitTimeout,
    /// HTTP/1.1 keep-alive: the server closes a connection idle for its
    /// keep-alive timeout (TCP_KEEPIDLE's value, seconds); the client's pool
    /// reuses it a second later and its request is answered by RST; it
    /// retries on a new connection.
    StalePool,
    /// A middlebox between client and server forgets a connection idle for
    /// TCP_KEEPIDLE's value (seconds; see `lab::path`); the client (no
    /// keepalive, TCP_USER_TIMEOUT interval × count) pauses half that and
    /// lives, then pauses longer and its next data is dropped.
    IdleTimeout,
}

/// setsockopt(2) with `value` as the option (a `c_int` for flags and
/// timers, a `sock_fprog` for SO_ATTACH_FILTER).
fn setsockopt<T>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a valid T for the call; the kernel copies
    // size_of::<T>() bytes and keeps no pointer (SO_ATTACH_FILTER copies
    // the instructions too).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns keepalive on with the given timers.
pub fn enable_keepalive(sock: &impl AsRawFd, t: Timers) -> io::Result<()> {
    setsockopt(
        sock,
        libc::SOL_SOCKET,
        libc::SO_KEEPALIVE,
        &1 as &libc::c_int,
    )?;
    for (name, value) in [
        (libc::TCP_KEEPIDLE, t.idle),
        (libc::TCP_KEEPINTVL, t.interval),
        (libc::TCP_KEEPCNT, t.count),
    ] {
        setsockopt(sock, libc::IPPROTO_TCP, name, &(value as libc::c_int))?;
    }
    Ok(())
}

/// Makes the kernel drop every segment for `sock` (SO_ATTACH_FILTER, `ret #0`).
pub fn silence(sock: &impl AsRawFd) -> io::Result<()> {
    let mut insn = [libc::sock_filter {
        code: 0x06, // BPF_RET | BPF_K
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: insn.as_mut_ptr(),
    };
    setsockopt(sock, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
}

/// Waits (up to a second) until everything `sock` sent is acknowledged, so
/// that silencing it cannot catch a late ACK and set off retransmissions.
pub fn wait_acked(sock: &impl AsRawFd) {
    for _ in 0..200 {
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ writes one c_int: bytes not yet acknowledged.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        if rc != 0 || queued == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Closes `sock` without FIN or RST (TCP_REPAIR, needs CAP_NET_ADMIN).
pub fn vanish(sock: TcpStream) -> io::Result<()> {
    setsockopt(&sock, libc::IPPROTO_TCP, TCP_REPAIR, &1 as &libc::c_int)?;
    drop(sock);
    Ok(())
}

/// Runs `scenario` against the server `listener`, with keepalive on the
/// client. Returns the client's final error, if the kernel reported one
/// (ETIMEDOUT for a dead peer, ECONNRESET after a peer reboot).
pub fn run(
    listener: TcpListener,
    timers: Timers,
    scenario: Scenario,
) -> io::Result<Option<io::Error>> {
    if scenario == Scenario::StalePool {
        return stale_pool(listener, timers);
    }
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    match scenario {
        Scenario::ServerSide { .. } => enable_keepalive(&server, timers)?,
        Scenario::RetransmitTimeout => {
            let ms = (timers.interval * timers.count * 1000) as libc::c_int;
            setsockopt(&client, libc::IPPROTO_TCP, TCP_USER_TIMEOUT, &ms)?;
        }
        _ => enable_keepalive(&client, timers)?,
    }
    client.write_all(b"hello\n")?;
    let mut buf = [0u8; 64];
    let _ = server.read(&mut buf)?;
    server.write_all(b"hi\n")?;
    let _ = client.read(&mut buf)?;
    // Longest a scenario may take: idle + count × interval, with slack.
    let patience = Duration::from_secs(u64::from(timers.idle + timers.count * timers.interval + 5));
    client.set_read_timeout(Some(patience))?;
    match scenario {
        Scenario::Healthy { answered } | Scenario::ServerSide { answered } => {
            // Probes come one idle time apart while answered.
            let wait = f64::from(timers.idle) * f64::from(answered) + f64::from(timers.idle) * 0.5;
            std::thread::sleep(Duration::from_secs_f64(wait));
            drop(client);
            std::thread::sleep(Duration::from_millis(100));
            drop(server);
            Ok(None)
        }
        Scenario::DeadPeer => {
            wait_acked(&server);
            silence(&server)?;
            let outcome = client.read(&mut buf).err();
            // The orphaned server socket now sends FIN and retransmits it;
            // the client's kernel answers each with RST.
            drop(server);
            std::thread::sleep(Duration::from_millis(700));
            Ok(outcome)
        }
        Scenario::PeerReboot => {
            wait_acked(&server);
            vanish(server)?;
            Ok(client.read(&mut buf).err())
        }
        Scenario::AcksDropped => {
            wait_acked(&client);
            silence(&client)?;
            let outcome = client.read(&mut buf).err();
            drop(server);
            std::thread::sleep(Duration::from_millis(300));
            Ok(outcome)
        }
        Scenario::StalePool | Scenario::IdleTimeout => Ok(None),
        Scenario::RetransmitTimeout => {
            wait_acked(&server);
            silence(&server)?;
            std::thread::sleep(Duration::from_secs(u64::from(timers.idle)));
            client.write_all(b"ping\n")?;
            let outcome = client.read(&mut buf).err();
            // Gone without a FIN, which the dead client would answer with a
            // RST that looks like giving up; then silence long enough to
            // show that the retransmissions stopped.
            vanish(server)?;
            let user_timeout = f64::from(timers.interval * timers.count);
            // The capture goes on through the silence (its end is when it
            // stops, not its last packet): long enough to show that the
            // retransmissions stopped.
            std::thread::sleep(Duration::from_secs_f64(user_timeout * 1.5));
            Ok(outcome)
        }
    }
}

/// One HTTP/1.1 request: its request line, a keep-alive ask, no body.
fn request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: lab\r\nConnection: keep-alive\r\n\r\n").into_bytes()
}

/// The server's answer, saying its keep-alive timeout.
fn response(keep: u32) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\nKeep-Alive: timeout={keep}\r\n\r\nok\n"
    )
    .into_bytes()
}

/// A server that answers requests on a connection until it has been idle
/// `keep` seconds, then closes it (as nginx's `keepalive_timeout` does).
fn serve(mut conn: TcpStream, keep: u32) {
    let mut buf = [0u8; 1024];
    let _ = conn.set_read_timeout(Some(Duration::from_secs(u64::from(keep))));
    loop {
        match conn.read(&mut buf) {
            Ok(n) if n > 0 => {
                if conn.write_all(&response(keep)).is_err() {
                    return;
                }
            }
            // Idle for its timeout (or the client closed): close.
            _ => return,
        }
    }
}

/// The keep-alive pool race (see [`Scenario::StalePool`]). Returns the
/// error the stale request got (ECONNRESET).
fn stale_pool(listener: TcpListener, t: Timers) -> io::Result<Option<io::Error>> {
    let keep = t.idle;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            match listener.accept() {
                Ok((conn, _)) => serve(conn, keep),
                Err(_) => return,
            }
        }
    });
    let mut buf = [0u8; 1024];
    let mut pooled = TcpStream::connect(addr)?;
    pooled.set_read_timeout(Some(Duration::from_secs(5)))?;
    pooled.write_all(&request("/a"))?;
    let _ = pooled.read(&mut buf)?;
    // Reused while the server still keeps it.
    std::thread::sleep(Duration::from_millis(300));
    pooled.write_all(&request("/b"))?;
    let _ = pooled.read(&mut buf)?;
    // Back in the pool past the server's timeout: the server has closed it
    // (its FIN came and was acknowledged by the kernel), but the pool does
    // not look before it reuses it.
    std::thread::sleep(Duration::from_secs_f64(f64::from(keep) + 1.0));
    pooled.write_all(&request("/c"))?;
    let outcome = match pooled.read(&mut buf) {
        Ok(0) => Some(io::Error::from(io::ErrorKind::UnexpectedEof)),
        Ok(_) => None,
        Err(e) => Some(e),
    };
    drop(pooled);
    // The retry, on a new connection, then closed by the client.
    let mut fresh = TcpStream::connect(addr)?;
    fresh.set_read_timeout(Some(Duration::from_secs(5)))?;
    fresh.write_all(&request("/c"))?;
    let _ = fresh.read(&mut buf)?;
    std::thread::sleep(Duration::from_millis(200));
    drop(fresh);
    let _ = server.join();
    Ok(outcome)
}

/// The client of [`Scenario::IdleTimeout`], toward `server` across the
/// lab's middlebox. Returns the error its last read got (ETIMEDOUT).
pub fn idle_timeout(server: std::net::SocketAddr, t: Timers) -> io::Result<Option<io::Error>> {
    let mut client = TcpStream::connect(server)?;
    let ms = (t.interval * t.count * 1000) as libc::c_int;
    setsockopt(&client, libc::IPPROTO_TCP, TCP_USER_TIMEOUT, &ms)?;
    client.set_read_timeout(Some(Duration::from_secs(u64::from(
        t.idle + t.interval * t.count + 10,
    ))))?;
    let mut buf = [0u8; 64];
    let timeout = f64::from(t.idle);
    for pause in [0.0, timeout / 2.0] {
        std::thread::sleep(Duration::from_secs_f64(pause));
        client.write_all(b"ping\n")?;
        let _ = client.read(&mut buf)?;
    }
    // Longer than the middlebox keeps it: the next data goes nowhere.
    std::thread::sleep(Duration::from_secs_f64(timeout + 2.0));
    client.write_all(b"ping\n")?;
    let outcome = client.read(&mut buf).err();
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    Ok(outcome)
}
