//! Connection churn for `bench/watch.sh`: RATE connections a second for
//! SECONDS to a listener of its own on 127.0.0.1, each connected, accepted
//! and then reset by the client (SO_LINGER 0: two ends for the kernel's
//! tracepoints, nothing left in TIME_WAIT). RATE 0: as fast as it goes.
//! Prints one tab-separated line: connections, seconds taken, connections a
//! second, and the connect latency's median, 99th percentile and maximum in
//! microseconds.
//!
//!   cargo run --release --example churn -- RATE SECONDS

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("churn RATE SECONDS (numbers)"))
        .collect();
    let (rate, seconds) = match args[..] {
        [r, s] => (r, s),
        _ => panic!("churn RATE SECONDS"),
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A deep accept queue: an overflow drops SYNs, retried a second later,
    // which would be the churn's own noise.
    // SAFETY: listen(2) again on our listening socket only resizes its queue.
    unsafe { libc::listen(listener.as_raw_fd(), 4096) };
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
        }
    });
    let total = if rate == 0 { 20_000 } else { rate * seconds };
    let mut latencies = Vec::with_capacity(total as usize);
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let start = Instant::now();
    for i in 0..total {
        if let Some(at) = (i * 1_000_000_000).checked_div(rate) {
            let due = start + Duration::from_nanos(at);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let t = Instant::now();
        let c = TcpStream::connect(addr).unwrap();
        latencies.push(t.elapsed().as_micros() as u64);
        // SAFETY: a valid option of the right size on our socket.
        unsafe {
            libc::setsockopt(
                c.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as u32,
            )
        };
        drop(c);
    }
    let took = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{total}\t{took:.3}\t{:.0}\t{}\t{}\t{}",
        total as f64 / took,
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
