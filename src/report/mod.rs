//! Report: the sinks of the event stream — the text timeline and table
//! (with `--explain`, `--diagram`, `--diagram-svg`), JSON Lines, Zeek logs,
//! the HTML report, Prometheus metrics, the host's sockets — and what they
//! share (`Kept`, prose folding). A sink writes the core's words and runs
//! over the registry's loops for every analysis's; it never reads an
//! analysis's findings.

pub mod annotate;
pub mod caveats;
pub mod community_id;
pub mod html;
pub mod json;
pub mod kernel;
pub mod metrics;
pub mod outputs;
pub mod parquet;
pub mod pcapng;
pub mod sockets;
pub mod svg;
pub mod table;
pub mod tcpdump;
pub mod teach;
pub mod text;
pub mod zeek;

use crate::analyses::verdict::Verdict;

/// At most `cap` items, the most telling kept (by `Verdict::rank`, then the
/// earliest connection, by `key`: its id): a long capture's report stays
/// bounded; what is left out is counted by verdict. What is kept does not
/// depend on the order items come in (connections are reported as they end;
/// with `--threads`, shard by shard).
#[derive(Debug)]
pub struct Kept<T> {
    cap: usize,
    /// Per rank, a max-heap by key: the first to leave is on top.
    by_rank: [std::collections::BinaryHeap<Keyed<T>>; 3],
    /// Items pushed, by verdict.
    seen: Vec<(Verdict, u64)>,
}

#[derive(Debug)]
struct Keyed<T> {
    key: u32,
    verdict: Verdict,
    item: T,
}

impl<T> PartialEq for Keyed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<T> Eq for Keyed<T> {}
impl<T> PartialOrd for Keyed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Keyed<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

impl<T> Kept<T> {
    pub fn new(cap: usize) -> Kept<T> {
        Kept {
            cap,
            by_rank: Default::default(),
            seen: Vec::new(),
        }
    }

    pub fn push(&mut self, verdict: Verdict, key: u32, item: T) {
        self.push_with(verdict, key, || item);
    }

    /// `push`, the item made only when it is kept (most of a large
    /// capture's connections are only counted: no copy of each).
    pub fn push_with(&mut self, verdict: Verdict, key: u32, item: impl FnOnce() -> T) {
        match self.seen.iter_mut().find(|(v, _)| *v == verdict) {
            Some((_, n)) => *n += 1,
            None => self.seen.push((verdict, 1)),
        }
        let r = verdict.rank();
        let kept: usize = self.by_rank.iter().map(|h| h.len()).sum();
        if kept < self.cap {
            self.by_rank[r].push(Keyed {
                key,
                verdict,
                item: item(),
            });
            return;
        }
        // Full: the new item replaces the last of the lowest rank kept, if
        // it comes before it.
        let Some(worst) = (0..3).rev().find(|&q| !self.by_rank[q].is_empty()) else {
            return;
        };
        let last = self.by_rank[worst].peek().map_or(0, |k| k.key);
        if (r, key) < (worst, last) {
            self.by_rank[worst].pop();
            self.by_rank[r].push(Keyed {
                key,
                verdict,
                item: item(),
            });
        }
    }

    /// No item with this key can be kept any more: the collection is full
    /// of the most telling rank, every one with a lower key. It stays so:
    /// an item only ever replaces one of a higher key. (The recorders stop
    /// recording such connections: what they would keep is never shown.)
    pub fn closed_to(&self, key: u32) -> bool {
        let [best, mid, low] = &self.by_rank;
        mid.is_empty()
            && low.is_empty()
            && best.len() >= self.cap
            && best.peek().is_some_and(|worst| key > worst.key)
    }

    /// Everything kept, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.by_rank.iter().flatten().map(|k| &k.item)
    }

    /// Everything kept (in no order), leaving the collection empty.
    pub fn take(&mut self) -> Vec<T> {
        self.by_rank
            .iter_mut()
            .flat_map(std::mem::take)
            .map(|k| k.item)
            .collect()
    }

    /// What was left out, most telling verdicts first: `12 no-keepalive,
    /// 3 alive`, or `None`.
    pub fn omitted(&self) -> Option<String> {
        let mut left: Vec<(Verdict, u64)> = self
            .seen
            .iter()
            .map(|&(v, n)| {
                let kept = self.by_rank[v.rank()]
                    .iter()
                    .filter(|k| k.verdict == v)
                    .count() as u64;
                (v, n - kept)
            })
            .filter(|&(_, n)| n > 0)
            .collect();
        left.sort_by_key(|&(v, _)| (v.rank(), v.as_str()));
        (!left.is_empty()).then(|| {
            left.iter()
                .map(|(v, n)| format!("{n} {}", v.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// Prose folded to a terminal's `width` at spaces; a folded line continues
/// two columns deeper than it began. Lines that fit are left as they are.
pub fn wrap_prose(text: &str, width: Option<u16>) -> String {
    let Some(width) = width.map(usize::from) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if body.chars().count() <= width {
            out.push_str(line);
            continue;
        }
        let indent = body.len() - body.trim_start().len() + 2;
        let mut column = 0;
        for (i, word) in body.split(' ').enumerate() {
            let w = word.chars().count();
            if i > 0 {
                if column + 1 + w > width && column > indent {
                    out.push('\n');
                    out.extend(std::iter::repeat_n(' ', indent));
                    column = indent;
                } else {
                    out.push(' ');
                    column += 1;
                }
            }
            out.push_str(word);
            column += w;
        }
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap_prose;

    #[test]
    fn a_key_closed_to_stays_closed_and_would_not_have_been_kept() {
        use crate::analyses::verdict::Verdict;
        // Connections reported out of id order, as they end; a quarter dead.
        let verdicts = [
            Verdict::NoKeepalive,
            Verdict::Alive,
            Verdict::DeadPeer,
            Verdict::Alive,
        ];
        let mut kept = super::Kept::new(5);
        let mut closed: Vec<u32> = Vec::new();
        for i in 0..400u32 {
            let id = (i * 7919) % 400 + 1;
            let v = verdicts[(id as usize * 31) % 4];
            // Whatever was closed before stays closed …
            assert!(closed.iter().all(|&k| kept.closed_to(k)));
            let before: Vec<u32> = {
                let mut k: Vec<u32> = kept.iter().copied().collect();
                k.sort();
                k
            };
            let was_closed = kept.closed_to(id);
            kept.push(v, id, id);
            let mut after: Vec<u32> = kept.iter().copied().collect();
            after.sort();
            // … and a closed key is not taken, whatever its verdict.
            if was_closed {
                assert_eq!(before, after, "closed to {id}, yet it was kept");
                closed.push(id);
            }
        }
        assert!(!closed.is_empty(), "the test never reached a closed key");
        // Keys above the kept dead connections' ids are closed; below, not.
        let top = kept.iter().copied().max().unwrap();
        assert!(kept.closed_to(top + 1) && !kept.closed_to(top));
    }

    #[test]
    fn prose_folds_at_spaces_with_a_hanging_indent() {
        let text = "  evidence: flow 1 died after 7.00s of silence\nshort\n";
        assert_eq!(
            wrap_prose(text, Some(24)),
            "  evidence: flow 1 died\n    after 7.00s of\n    silence\nshort\n"
        );
        assert_eq!(wrap_prose(text, None), text);
    }
}
