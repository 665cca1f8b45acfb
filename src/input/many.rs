//! Several inputs: `-r` repeated, a directory, or a quoted glob, analyzed in
//! parallel on all cores. Each file's connections are independent (flows are
//! numbered per file). Each worker writes its file's output to a temporary
//! file; the main thread copies them to stdout in the order given, each
//! behind a header (`==> FILE <==` in text, `{"type":"file",…}` in JSON).

use crate::error::Error;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Most bytes of finished outputs waiting for their turn (in unlinked
/// temporary files, RAM on tmpfs) before workers wait for the reader.
pub const WAITING_BYTES: u64 = 256 << 20;

/// How [`run_parallel`] spreads the work.
#[derive(Clone, Copy, Debug)]
pub struct Parallel {
    pub threads: usize,
    /// Most bytes of finished outputs waiting for the reader ([`WAITING_BYTES`]).
    pub waiting_bytes: u64,
}
use std::sync::mpsc;

/// Expands `-r` arguments: directories to the files in them (sorted), and a
/// name with `*` or `?` that is not an existing file to the matching names
/// in its directory (sorted). Anything else stays as given.
pub fn expand(args: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            out.extend(listing(
                arg,
                arg,
                looks_like_capture,
                "directory holds no .pcap, .pcapng or .cap files (plain or .gz, .zst, .xz, .bz2)",
            )?);
        } else if !arg.exists() && is_glob(arg) {
            let dir = arg
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let pattern = arg
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.extend(listing(
                arg,
                dir,
                |p| {
                    p.file_name()
                        .is_some_and(|n| glob_match(pattern.as_bytes(), n.as_encoded_bytes()))
                },
                "no file matches",
            )?);
        } else {
            out.push(arg.clone());
        }
    }
    Ok(out)
}

/// The files in `dir` that `keep` accepts, sorted; `none` when there are
/// none. Errors name `arg`, what the user typed.
fn listing(
    arg: &Path,
    dir: &Path,
    keep: impl Fn(&Path) -> bool,
    none: &str,
) -> Result<Vec<PathBuf>, Error> {
    let fail = |msg: String| Error::Input {
        file: arg.display().to_string(),
        msg,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| fail(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| keep(p) && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(fail(none.into()));
    }
    Ok(files)
}

/// Capture file names: `.pcap`, `.pcapng`, `.cap`, `.dmp`, tcpdump -C
/// rotations (`.pcap1`, `.pcap2`, …), and these compressed (`.pcap.gz`,
/// `.pcapng.zst`, `.xz`, `.bz2`).
fn looks_like_capture(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name = [".gz", ".zst", ".xz", ".bz2"]
        .iter()
        .find_map(|z| name.strip_suffix(z))
        .unwrap_or(&name);
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    ext.starts_with("pcap") || ext == "cap" || ext == "dmp"
}

/// Whether `files` look like the pieces of one rotated capture (tcpdump
/// `-C` / `-G` / `-W`): names that differ only in their digits.
pub fn looks_like_rotation(files: &[PathBuf]) -> bool {
    let stem = |p: &PathBuf| -> String {
        p.to_string_lossy()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect()
    };
    files.len() > 1 && files.iter().all(|f| stem(f) == stem(&files[0]))
}

fn is_glob(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.as_encoded_bytes().iter().any(|&b| b == b'*' || b == b'?'))
}

/// Shell-style matching of `*` and `?` (no character classes), in
/// O(pattern × name) at worst: on a mismatch only the latest `*` is
/// retried, one character further.
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// What one worker produced for one file.
struct Done {
    index: usize,
    output: io::Result<std::fs::File>,
    messages: Vec<u8>,
    result: Result<(), Error>,
}

/// Analyzes `files` on up to `threads` threads with `analyze(path, out,
/// messages)`, copying each file's output to `out` in order behind
/// `header(path)`. Messages (warnings, errors) go to `err` in order too.
/// Errors are reported as they come; the result is the first one's exit
/// status ([`Error::Reported`]), after every file was tried.
pub fn run_parallel<F>(
    files: &[PathBuf],
    Parallel {
        threads,
        waiting_bytes,
    }: Parallel,
    analyze: F,
    header: impl Fn(&Path) -> String,
    mut out: impl Write,
    err: &mut impl Write,
) -> Result<(), Error>
where
    F: Fn(&Path, &mut io::BufWriter<std::fs::File>, &mut Vec<u8>) -> Result<(), Error> + Sync,
{
    let next = AtomicUsize::new(0);
    // How many files were emitted: workers stay at most `window` files
    // ahead, so finished outputs waiting their turn (each an open temporary
    // file) stay few — and, in bytes, at most WAITING_BYTES (beyond the
    // files being analyzed): a slow reader holds the workers back.
    let emitted = AtomicUsize::new(0);
    let waiting = AtomicU64::new(0);
    let window = threads.max(1) * 4;
    let (tx, rx) = mpsc::channel::<Done>();
    let mut first_error = None;
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, files.len().max(1)) {
            let tx = tx.clone();
            let (next, analyze, emitted, waiting) = (&next, &analyze, &emitted, &waiting);
            scope.spawn(move || {
                loop {
                    // Stopped (SIGINT, SIGTERM): no new file is started, and
                    // files never started produce nothing.
                    if crate::host::signal::STOP.load(Ordering::Relaxed) {
                        break;
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(index) else { break };
                    while (index >= emitted.load(Ordering::Relaxed) + window
                        || waiting.load(Ordering::Relaxed) > waiting_bytes)
                        && index > emitted.load(Ordering::Relaxed)
                        && !crate::host::signal::OUTPUT_GONE.load(Ordering::Relaxed)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    if crate::host::signal::OUTPUT_GONE.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut messages = Vec::new();
                    let (output, result) = match tempfile::tempfile() {
                        Ok(file) => {
                            let mut w = io::BufWriter::new(file);
                            let result = analyze(path, &mut w, &mut messages);
                            let output = match result {
                                // Nothing to show: let the temporary file go now.
                                Err(_) => Err(io::Error::other("no output")),
                                Ok(()) => w.into_inner().map_err(|e| e.into_error()),
                            };
                            if let Ok(f) = &output {
                                let len = f.metadata().map_or(0, |m| m.len());
                                waiting.fetch_add(len, Ordering::Relaxed);
                            }
                            (output, result)
                        }
                        Err(e) => (Err(e), Ok(())),
                    };
                    if tx
                        .send(Done {
                            index,
                            output,
                            messages,
                            result,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Emit in order, holding results that arrive early.
        let mut pending: Vec<Option<Done>> = (0..files.len()).map(|_| None).collect();
        let mut emit_next = 0;
        for done in rx {
            let i = done.index;
            pending[i] = Some(done);
            while let Some(Some(done)) = pending.get_mut(emit_next).map(Option::take) {
                let path = &files[emit_next];
                emit_next += 1;
                emitted.store(emit_next, Ordering::Relaxed);
                let _ = err.write_all(&done.messages);
                if let Err(e) = &done.result {
                    let _ = writeln!(err, "kacap: {e}");
                    first_error.get_or_insert(Error::Reported(e.exit_code()));
                    continue;
                }
                let len = done
                    .output
                    .as_ref()
                    .map_or(0, |f| f.metadata().map_or(0, |m| m.len()));
                let copied =
                    out.write_all(header(path).as_bytes())
                        .and_then(|()| match done.output {
                            Ok(mut f) => f.rewind().and_then(|()| copy(&mut f, &mut out)),
                            Err(e) => Err(e),
                        });
                waiting.fetch_sub(len.min(waiting.load(Ordering::Relaxed)), Ordering::Relaxed);
                if let Err(e) = copied {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        // The reader is gone: stop the workers — also those
                        // in the middle of a file — quietly.
                        crate::host::signal::OUTPUT_GONE.store(true, Ordering::Relaxed);
                        next.store(files.len(), Ordering::Relaxed);
                        emitted.store(files.len(), Ordering::Relaxed);
                        return;
                    }
                    first_error.get_or_insert(Error::Output(e));
                }
            }
        }
    });
    if let Err(e) = out.flush()
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        first_error.get_or_insert(Error::Output(e));
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn copy(from: &mut std::fs::File, to: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::{Parallel, glob_match, looks_like_capture, looks_like_rotation, run_parallel};
    use std::path::{Path, PathBuf};

    #[test]
    fn globs() {
        assert!(glob_match(b"*.pcap", b"a.pcap"));
        assert!(glob_match(b"cap-??.pcap*", b"cap-01.pcapng"));
        assert!(!glob_match(b"*.pcap", b"a.pcapng"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
        assert!(!glob_match(b"a*b*c", b"aXbYbZ"));
        assert!(!glob_match(b"?", b""));
    }

    /// A reader that does not read (its first write blocks for a while):
    /// workers stop once finished outputs waiting for it pass the bound,
    /// instead of analyzing every file into temporary files.
    #[test]
    fn a_slow_reader_holds_the_workers_back() {
        use std::io::Write;
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Slow<'a>(&'a AtomicUsize, Option<usize>);
        impl Write for Slow<'_> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                if self.1.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    self.1 = Some(self.0.load(Ordering::SeqCst));
                }
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let files: Vec<PathBuf> = (0..20).map(|i| PathBuf::from(format!("f{i}"))).collect();
        let analyzed = AtomicUsize::new(0);
        // Files analyzed by the time the reader's first write returned.
        let mut at_first_write = Vec::new();
        for limit in [100_000u64, u64::MAX] {
            analyzed.store(0, Ordering::SeqCst);
            let mut out = Slow(&analyzed, None);
            run_parallel(
                &files,
                Parallel {
                    threads: 2,
                    waiting_bytes: limit,
                },
                |_, w, _| {
                    w.write_all(&[b'x'; 300_000]).unwrap();
                    analyzed.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
                |_| String::new(),
                &mut out,
                &mut Vec::new(),
            )
            .unwrap();
            at_first_write.push(out.1.unwrap());
        }
        let (bounded, unbounded) = (at_first_write[0], at_first_write[1]);
        assert!(
            bounded <= 3,
            "{bounded} files analyzed while the reader waited"
        );
        assert!(unbounded >= 8, "{unbounded}: the window alone allows more");
    }

    #[test]
    fn glob_time_is_not_exponential() {
        // Six stars against 200 dashes and no match: the recursive matcher
        // took over a minute.
        let name = format!("{}x", "-".repeat(200));
        let t = std::time::Instant::now();
        assert!(!glob_match(b"*-*-*-*-*-*.pcap", name.as_bytes()));
        assert!(t.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn capture_names_plain_rotated_and_compressed() {
        for n in [
            "a.pcap",
            "a.pcapng",
            "a.pcap3",
            "a.cap",
            "a.pcap.gz",
            "b.pcapng.zst",
            "c.pcap2.xz",
            "d.cap.bz2",
        ] {
            assert!(looks_like_capture(Path::new(n)), "{n}");
        }
        for n in ["a.txt", "a.gz", "pcap", "notes.pcap.txt"] {
            assert!(!looks_like_capture(Path::new(n)), "{n}");
        }
        let set = |names: &[&str]| names.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert!(looks_like_rotation(&set(&[
            "c/ka.pcap",
            "c/ka.pcap1",
            "c/ka.pcap2"
        ])));
        assert!(looks_like_rotation(&set(&["ka-1200.pcap", "ka-1300.pcap"])));
        assert!(!looks_like_rotation(&set(&["a.pcap", "b.pcap"])));
        assert!(!looks_like_rotation(&set(&["a.pcap"])));
    }
}
