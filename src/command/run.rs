//! Carrying out a [`Plan`]: open the inputs, make the sink, analyze.

use crate::command::capture::{Host, quiet_pipe, run_capture};
use crate::command::plan::{CapturePlan, Input, LabPlan, Output, Plan};
use crate::error::Error;
use crate::host::signal;
use crate::host::sysctls::Sysctls;
use crate::input::many as inputs;
use crate::input::open::list_interfaces;
use crate::input::source::Source;
use crate::lab;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `kacap sockets`: enter the namespace, read the table, print it.
fn run_sockets(plan: &crate::command::plan::SocketsPlan, mut out: impl Write) -> Result<(), Error> {
    use crate::host::sockets::{self, RealHost};
    // The host's own sysctls, before leaving its namespace.
    let host_sysctls = match &plan.netns {
        Some(ns) => {
            let host = sockets::proc::sysctls().ok();
            sockets::netns::enter(&ns.spec, &ns.path).map_err(Error::Host)?;
            host
        }
        None => None,
    };
    let (sysctls, found) = sockets::collect(&RealHost, &|d| plan.filter.matches(d))
        .map_err(|e| Error::Host(format!("cannot read the socket table (sock_diag): {e}")))?;
    let table = sockets::Table {
        sysctls,
        host_sysctls: host_sysctls.filter(|h| *h != sysctls),
        netns: sockets::proc::netns_id(),
        sockets: found,
    };
    let written = if plan.json {
        crate::report::sockets::json(&mut out, &table)
    } else {
        crate::report::sockets::text(&mut out, &table, &plan.filter_words, plan.width)
    };
    quiet_pipe(written.and_then(|()| out.flush()).map_err(Error::Output))
}

/// Carries out `plan`, writing to `out`, messages to `err`.
pub fn run(plan: &Plan, out: impl Write, err: &mut impl Write) -> Result<(), Error> {
    let result = dispatch(plan, out, err);
    // A file's analysis cut short by a signal: 128 + the signal's number.
    if result.is_ok() && signal::PARTIAL.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Error::Reported(signal::exit_status().unwrap_or(130)));
    }
    result
}

fn dispatch(plan: &Plan, mut out: impl Write, err: &mut impl Write) -> Result<(), Error> {
    match plan {
        Plan::ListInterfaces => {
            quiet_pipe(list_interfaces(&mut out).and_then(|()| out.flush().map_err(Error::Output)))
        }
        Plan::Lab(lab, capture) => run_lab(lab, capture, out, err),
        Plan::Sockets(plan) => run_sockets(plan, out),
        Plan::Watch(plan) => crate::command::watch::run(plan, out, err),
        Plan::Completions(shell) => {
            use clap::CommandFactory;
            let mut cmd = crate::command::cli::Args::command();
            clap_complete::generate(*shell, &mut cmd, "kacap", &mut out);
            quiet_pipe(out.flush().map_err(Error::Output))
        }
        Plan::Man => {
            use clap::CommandFactory;
            // The synopsis as the usage says it (clap_mangen's own leaves the
            // options' values out: `[-r ]`).
            let cmd = crate::command::cli::Args::command().override_usage(
                "kacap -r FILE [OPTIONS] [FILTER...]\n       kacap -i IFACE [OPTIONS] [FILTER...]\n       kacap lab SCENARIO [OPTIONS]\n       kacap sockets [OPTIONS] [FILTER...]",
            );
            let man = clap_mangen::Man::new(cmd);
            quiet_pipe(
                man.render(&mut out)
                    .and_then(|()| out.flush())
                    .map_err(Error::Output),
            )
        }
        Plan::Capture(capture) => match &capture.input {
            Input::Live(iface) => {
                let mut host = Host::default();
                if let Some(ns) = &capture.netns {
                    host.sysctls_outside = Sysctls::read().ok();
                    crate::host::sockets::netns::enter(&ns.spec, &ns.path).map_err(Error::Host)?;
                }
                let src = Source::live(iface, capture.filter.as_deref(), &capture.live)?;
                if let Some(addr) = capture.metrics {
                    // Bound now: a port in use fails before the capture runs.
                    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
                        Error::Host(format!(
                            "--metrics {addr}: cannot listen there: {e} (choose a free ADDR:PORT)"
                        ))
                    })?;
                    let metrics = std::sync::Arc::new(std::sync::Mutex::new(
                        crate::report::metrics::Metrics::default(),
                    ));
                    crate::report::metrics::serve(listener, metrics.clone());
                    host.metrics = Some(metrics);
                }
                run_capture(capture, src, None, &host, out, err, true)
            }
            Input::Bundled(name) => {
                // An unlinked temporary file libpcap can open by name.
                let data = lab::bundled(name).unwrap_or_default();
                let mut tmp = tempfile::tempfile().map_err(|e| Error::Write {
                    file: "a temporary file".into(),
                    msg: e.to_string(),
                })?;
                tmp.write_all(data).map_err(|e| Error::Write {
                    file: "a temporary file".into(),
                    msg: e.to_string(),
                })?;
                use std::os::fd::AsRawFd;
                let path = PathBuf::from(format!("/proc/self/fd/{}", tmp.as_raw_fd()));
                let mut src = Source::file(&path, None)?;
                src.name = format!("{name} (the capture shipped inside kacap)");
                let _ = writeln!(
                    err,
                    "replaying {name}, recorded by `sudo kacap lab {name} --idle 2 --interval 1 --count 2 -w FILE`"
                );
                let result = run_capture(
                    capture,
                    src,
                    Some(std::slice::from_ref(&path)),
                    &Host::default(),
                    out,
                    err,
                    true,
                );
                drop(tmp);
                result
            }
            Input::Merged(files) => {
                let src = Source::merged(files, capture.filter.as_deref())?;
                run_capture(capture, src, Some(files), &Host::default(), out, err, true)
            }
            Input::Files(files) => match &files[..] {
                [file] => {
                    let src = Source::file(file, capture.filter.as_deref())?;
                    run_capture(
                        capture,
                        src,
                        Some(std::slice::from_ref(file)),
                        &Host::default(),
                        out,
                        err,
                        true,
                    )
                }
                _ => {
                    if inputs::looks_like_rotation(files) {
                        let _ = writeln!(
                            err,
                            "kacap: note: these files look like pieces of one rotated capture (tcpdump -C/-G/-W); each is analyzed alone — --merge reads them as one, so that a connection spanning files is one connection"
                        );
                    }
                    run_many(capture, files, out, err)
                }
            },
        },
    }
}

/// Several files, in parallel, output in the order given.
fn run_many(
    plan: &CapturePlan,
    files: &[std::path::PathBuf],
    out: impl Write,
    err: &mut impl Write,
) -> Result<(), Error> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let json = matches!(plan.output, Output::Json(_));
    inputs::run_parallel(
        files,
        inputs::Parallel {
            threads,
            waiting_bytes: inputs::WAITING_BYTES,
        },
        |path, w, messages| {
            let src = Source::file(path, plan.filter.as_deref())?;
            let path = [path.to_path_buf()];
            run_capture(plan, src, Some(&path), &Host::default(), w, messages, false)
        },
        |path| match plan.output {
            // Zeek logs carry no file records: each file's log is whole.
            Output::Zeek { .. } => String::new(),
            _ => file_header(path, json),
        },
        out,
        err,
    )
}

/// What precedes one file's output when several are analyzed.
fn file_header(path: &Path, json: bool) -> String {
    if json {
        let name = crate::core::text::escape(&path.to_string_lossy());
        format!("{{\"type\":\"file\",\"path\":\"{name}\"}}\n")
    } else {
        format!("==> {} <==\n", shown(&path.to_string_lossy()))
    }
}

/// A file name as a terminal may show it: control characters as `\e`,
/// `\n`, `\t` or `\xNN` (like `ls -b`), so a name cannot move the cursor or
/// change colors.
fn shown(name: &str) -> String {
    let mut o = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\x1b' => o.push_str("\\e"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => o.push_str(&format!("\\x{:02x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// `kacap lab`: a private network, real sockets, the live analysis explained.
fn run_lab(
    lab: &LabPlan,
    capture: &CapturePlan,
    out: impl Write,
    err: &mut impl Write,
) -> Result<(), Error> {
    lab::check_root()?;
    lab::enter_private_network()?;
    let _ = writeln!(err, "{}", lab::describe(lab.name, lab.scenario, lab.timers));
    // idle-timeout: a client — router — server path, captured on the client's side.
    let (path, iface) = if lab.scenario == lab::traffic::Scenario::IdleTimeout {
        let path = lab::path::build(lab.timers.idle)
            .map_err(|e| Error::Lab(format!("cannot build the lab's path: {e}")))?;
        (Some(path), lab::path::CLIENT_IFACE)
    } else {
        (None, "lo")
    };
    let (src, traffic) = match lab.capture_after {
        None => {
            let src = Source::live(iface, capture.filter.as_deref(), &capture.live)?;
            (src, lab::start_traffic(lab.scenario, lab.timers)?)
        }
        Some(secs) => {
            // The connection starts (and goes idle) before the capture does.
            let traffic = lab::start_traffic(lab.scenario, lab.timers)?;
            std::thread::sleep(std::time::Duration::from_secs_f64(
                lab::SETTLE_SECS + f64::from(secs),
            ));
            (
                Source::live(iface, capture.filter.as_deref(), &capture.live)?,
                traffic,
            )
        }
    };
    let result = run_capture(capture, src, None, &Host::default(), out, err, false);
    if let Some(path) = path {
        path.close();
    }
    if !traffic.is_finished() {
        // Interrupted (Ctrl-C): the sockets and the namespace go with the process.
        return result;
    }
    let name = lab.name;
    match traffic.join() {
        Ok(Ok(_)) => result,
        Ok(Err(e)) => Err(Error::Lab(format!("the {name} scenario failed: {e}"))),
        Err(_) => Err(Error::Lab(format!("the {name} scenario crashed"))),
    }
}
