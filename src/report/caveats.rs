//! What the text report says beside its verdicts about how far to trust
//! them: the capture's own drops, and the kernel's account (`--kernel`).

use crate::pipeline::event::Stats;
use crate::pipeline::summary::FlowSummary;

/// The capture's own drops, beside the verdicts they may touch: those
/// that rest on a packet not seen.
pub fn drops_note(stats: &Stats, flows: &[FlowSummary]) -> Option<String> {
    let dropped = stats.capture_dropped.filter(|&d| d > 0)?;
    let touched: Vec<&FlowSummary> = flows
        .iter()
        .filter(|f| f.verdict.rests_on_silence())
        .collect();
    let mut names: Vec<&str> = touched.iter().map(|f| f.verdict.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let which = if touched.is_empty() {
        "No verdict here rests on a packet not seen.".to_string()
    } else {
        format!(
            "{} on packets not seen ({}): an answer the capture dropped looks like no answer; check {} before acting.",
            if touched.len() == 1 {
                "1 connection's verdict rests".to_string()
            } else {
                format!("{} connections' verdicts rest", touched.len())
            },
            names.join(", "),
            if touched.len() == 1 { "it" } else { "them" },
        )
    };
    Some(format!(
        "The capture itself dropped {} (its own count: the kernel's for a live capture, the pcapng file's interface statistics). {which}",
        crate::core::text::plural(dropped, "packet")
    ))
}

/// `--kernel`: what the kernel said of the connection's end, and loudly
/// when the packets' verdict contradicts it.
pub fn kernel_words(f: &FlowSummary) -> String {
    let Some(e) = f.kernel.as_deref().and_then(|k| k.telling()) else {
        return String::new();
    };
    let words = crate::report::kernel::words(e);
    match crate::report::kernel::agrees(f.verdict, e.cause) {
        Some(false) => format!(
            " — KERNEL DISAGREES: the kernel says {words} (the {} socket), the packets {}",
            if e.local == f.client {
                "client's"
            } else {
                "server's"
            },
            f.verdict.as_str()
        ),
        Some(true) => format!(" — kernel agrees: {words}"),
        None => format!(" — kernel: {words}"),
    }
}

/// After the table: how the kernel's accounts went (`--kernel`), from
/// the counts of connections it agreed with, contradicted, or said nothing
/// about.
pub fn kernel_tally([agree, disagree, neutral]: [u64; 3]) -> Option<String> {
    (agree + disagree + neutral > 0).then(|| {
        format!(
            "The kernel's account: {agree} agreed with the verdict, {disagree} contradicted it{}, {neutral} said nothing about it (a clean close or a local abort).",
            if disagree > 0 { " (see KERNEL DISAGREES above)" } else { "" }
        )
    })
}
