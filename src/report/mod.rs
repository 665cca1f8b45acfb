//! Report: the sinks of the event stream (text timeline and table with
//! `--explain` / `--diagram`, JSON Lines), and what they share.

pub mod annotate;
pub mod emit;
pub mod idle;
pub mod json;
pub mod svg;
pub mod table;
pub mod tcpdump;
pub mod teach;
pub mod text;

/// `1 flow`, `2 flows`: a count and a regular English noun.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
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
    fn prose_folds_at_spaces_with_a_hanging_indent() {
        let text = "  evidence: flow 1 died after 7.00s of silence\nshort\n";
        assert_eq!(
            wrap_prose(text, Some(24)),
            "  evidence: flow 1 died\n    after 7.00s of\n    silence\nshort\n"
        );
        assert_eq!(wrap_prose(text, None), text);
    }
}
