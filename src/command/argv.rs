//! The command line before clap sees it, as tcpdump users type it:
//! options before, between or after the filter words, and a clear line for
//! the tcpdump flags kacap does not take.

use crate::command::cli::Args;
use std::ffi::OsString;

/// tcpdump flags kacap does not take, and what they do in tcpdump.
const NOT_SUPPORTED: [(char, &str, &str); 4] = [
    (
        'y',
        "choosing the data link type",
        "kacap captures with the link type the interface has",
    ),
    ('C', "rotating -w files by size", ROTATE),
    ('G', "rotating -w files by time", ROTATE),
    ('W', "limiting the number of rotated files", ROTATE),
];

const ROTATE: &str = "kacap writes one -w file; rotate with tcpdump (tcpdump -G 3600 -w 'ka-%H%M.pcap') \
                      and read the pieces as one capture with kacap --merge -r 'ka-*.pcap'";

/// A tcpdump flag kacap does not take, in `argv` (as `tcpdump_order` left
/// it), as one line that says so.
pub fn unsupported(argv: &[OsString]) -> Option<String> {
    use clap::CommandFactory;
    let cmd = Args::command();
    for arg in argv.iter().skip(1) {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" || cmd.find_subcommand(text).is_some() {
            return None;
        }
        let Some(cluster) = text.strip_prefix('-').filter(|c| !c.starts_with('-')) else {
            continue;
        };
        for c in cluster.chars() {
            match cmd.get_arguments().find(|a| a.get_short() == Some(c)) {
                Some(a) if a.get_action().takes_values() => break,
                Some(_) => {}
                None => {
                    let (_, what, instead) = NOT_SUPPORTED.iter().find(|(f, ..)| *f == c)?;
                    return Some(format!(
                        "-{c} ({what}) is not supported by kacap: {instead}"
                    ));
                }
            }
        }
    }
    None
}

/// tcpdump's command line: options may come before or after the filter
/// words, and `--` ends the options. Reorders `argv` so that clap sees the
/// options first and the filter words after `--`; an option kacap does not
/// know stays an option (clap names it in its error), never filter text.
/// A subcommand (`kacap lab …`) is left as it is.
pub fn tcpdump_order(argv: Vec<OsString>) -> Vec<OsString> {
    use clap::CommandFactory;
    let cmd = Args::command();
    let takes_value = |a: &clap::Arg| a.get_action().takes_values();
    let short = |c: char| cmd.get_arguments().find(|a| a.get_short() == Some(c));
    let long = |s: &str| {
        cmd.get_arguments()
            .find(|a| a.get_long() == Some(s))
            .map(takes_value)
    };
    let mut args = argv.into_iter();
    let Some(program) = args.next() else {
        return Vec::new();
    };
    let (mut options, mut words) = (vec![program], Vec::new());
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str().map(str::to_string) else {
            words.push(arg);
            continue;
        };
        if text == "--" {
            words.extend(args.by_ref());
            break;
        }
        if let Some(name) = text.strip_prefix("--") {
            let wants = !name.contains('=') && long(name).unwrap_or(false);
            options.push(arg);
            if wants {
                options.extend(args.next());
            }
            continue;
        }
        if let Some(cluster) = text.strip_prefix('-')
            && !cluster.is_empty()
        {
            // -nnS, -tt, -r FILE, -rFILE: a short option taking a value
            // takes the rest of the cluster, or the next word.
            let mut wants = false;
            for (i, c) in cluster.char_indices() {
                if short(c).is_some_and(takes_value) {
                    wants = i + c.len_utf8() == cluster.len();
                    break;
                }
            }
            options.push(arg);
            if wants {
                options.extend(args.next());
            }
            continue;
        }
        if words.is_empty() && cmd.find_subcommand(&text).is_some() {
            // A subcommand: its own arguments follow, and options given
            // before it (`kacap --netns 42 sockets`, `kacap --json lab …`)
            // go after it, where clap takes the global ones.
            let before = options.split_off(1);
            options.push(arg);
            options.extend(before);
            options.extend(args.by_ref());
            return options;
        }
        words.push(arg);
    }
    if !words.is_empty() {
        options.push("--".into());
        options.extend(words);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::tcpdump_order;

    fn order(args: &[&str]) -> Vec<String> {
        let argv = std::iter::once("kacap").chain(args.iter().copied());
        tcpdump_order(argv.map(Into::into).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn options_come_before_or_after_the_filter_words() {
        let want = ["kacap", "-r", "x.pcap", "--summary", "--", "port", "2333"];
        assert_eq!(order(&["-r", "x.pcap", "port", "2333", "--summary"]), want);
        assert_eq!(order(&["port", "2333", "-r", "x.pcap", "--summary"]), want);
        assert_eq!(
            order(&["--summary", "port", "-r", "x.pcap", "2333"]),
            ["kacap", "--summary", "-r", "x.pcap", "--", "port", "2333"]
        );
    }

    #[test]
    fn values_stay_with_their_options() {
        assert_eq!(
            order(&[
                "tcp",
                "-c",
                "3",
                "-rx.pcap",
                "--color",
                "never",
                "--linger=5",
                "-tt"
            ]),
            [
                "kacap",
                "-c",
                "3",
                "-rx.pcap",
                "--color",
                "never",
                "--linger=5",
                "-tt",
                "--",
                "tcp"
            ]
        );
        // A value that looks like a filter word is still the option's.
        assert_eq!(
            order(&["-w", "port", "-r", "-"]),
            ["kacap", "-w", "port", "-r", "-"]
        );
    }

    #[test]
    fn double_dash_ends_the_options_and_lab_keeps_its_own() {
        assert_eq!(
            order(&["-r", "x", "--", "tcp", "--summary"]),
            ["kacap", "-r", "x", "--", "tcp", "--summary"]
        );
        assert_eq!(
            order(&["lab", "dead-peer", "--idle", "3", "--json"]),
            ["kacap", "lab", "dead-peer", "--idle", "3", "--json"]
        );
    }

    #[test]
    fn unknown_options_stay_options() {
        // clap then names them ("unexpected argument '-v'"): never filter text.
        assert_eq!(
            order(&["-v", "-r", "x", "port", "1"]),
            ["kacap", "-v", "-r", "x", "--", "port", "1"]
        );
    }
}
