//! The output files a capture writes beside its main output (`-w`,
//! `--diagram-svg`, `--html`, `--annotate`, `--parquet`), checked before anything is
//! opened: one input file, a directory to write in, not a directory, and
//! never the file being read.

use super::cli::Args;
use crate::error::Error;
use std::path::{Path, PathBuf};

/// `files`: the files read (none live); `merged`: read as one (`--merge`).
pub fn check(args: &Args, files: &[PathBuf], merged: bool) -> Result<(), Error> {
    if !merged
        && files.len() > 1
        && (args.write.is_some()
            || args.diagram_svg.is_some()
            || args.html.is_some()
            || args.annotate.is_some()
            || args.parquet.is_some())
    {
        return Err(Error::Usage(
            "-w, --diagram-svg, --html, --annotate and --parquet take a single input file (or --merge)"
                .into(),
        ));
    }
    for (option, out) in [
        ("-w", &args.write),
        ("--annotate", &args.annotate),
        ("--parquet", &args.parquet),
    ] {
        if let Some(w) = out
            && files.iter().any(|f| same_file(f, w))
        {
            return Err(Error::Usage(format!(
                "{option} {} is the file being read: it would be overwritten; write to another file",
                w.display()
            )));
        }
    }
    if let (Some(w), Some(a)) = (&args.write, &args.annotate)
        && (w == a || same_file(w, a))
    {
        return Err(Error::Usage(format!(
            "-w and --annotate name the same file {}: give each its own",
            a.display()
        )));
    }
    for (option, file) in [
        ("--diagram-svg", &args.diagram_svg),
        ("--html", &args.html),
        ("--annotate", &args.annotate),
        ("--parquet", &args.parquet),
    ] {
        let Some(path) = file else { continue };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "{option} {}: no directory {} to write it in",
                path.display(),
                dir.display()
            )));
        }
        if path.is_dir() {
            return Err(Error::Usage(format!(
                "{option} {} is a directory: give a file name",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Whether two paths name one existing file (same device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
