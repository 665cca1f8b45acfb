//! `-x`, `-X`, `-A`: the packet's bytes, as tcpdump prints them
//! (print-ascii.c): sixteen bytes a line, `\t0x0000: ` offsets.

use crate::core::emit::Emit;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn graph(b: u8) -> u8 {
    if b.is_ascii_graphic() { b } else { b'.' }
}

fn byte_hex(out: &mut Vec<u8>, b: u8) {
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 15)]);
}

/// `hex_print` (`-x`) or `hex_and_ascii_print` (`-X`, with `ascii`): each
/// line starts with `\n\t`.
pub fn hex(out: &mut Vec<u8>, bytes: &[u8], ascii: bool) {
    for (i, line) in bytes.chunks(16).enumerate() {
        out.s("\n\t0x").zn_hex(i * 16);
        out.s(": ");
        let start = out.len();
        for pair in line.chunks(2) {
            out.push(b' ');
            for &b in pair {
                byte_hex(out, b);
            }
        }
        if ascii {
            // The hex part is padded to 40 columns, then two spaces.
            for _ in out.len() - start..40 {
                out.push(b' ');
            }
            out.s("  ");
            out.extend(line.iter().map(|&b| graph(b)));
        }
    }
}

/// `ascii_print` (`-A`): a newline, then the bytes, unprintable ones as
/// `.`; a CR before a newline (or at the very end) is left out.
pub fn ascii(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'\n');
    for (i, &b) in bytes.iter().enumerate() {
        let left = bytes.len() - i - 1;
        if b == b'\r' {
            if left > 1 && bytes[i + 1] != b'\n' {
                out.push(b'.');
            }
        } else if b.is_ascii_graphic() || matches!(b, b'\t' | b' ' | b'\n') {
            out.push(b);
        } else {
            out.push(b'.');
        }
    }
}

trait HexOffset {
    fn zn_hex(&mut self, v: usize) -> &mut Self;
}

impl HexOffset for Vec<u8> {
    /// At least four lowercase hex digits (`%04x`).
    fn zn_hex(&mut self, v: usize) -> &mut Self {
        let digits = format!("{v:04x}");
        self.extend_from_slice(digits.as_bytes());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_tcpdump_prints_them() {
        let mut out = Vec::new();
        hex(
            &mut out,
            &[
                0x45, 0, 0, 0x34, 0xbc, 0xfb, 0x40, 0, 0x40, 0x06, 0x7f, 0xc6, 0x7f, 0, 0, 1, 0x72,
            ],
            true,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\n\t0x0000:  4500 0034 bcfb 4000 4006 7fc6 7f00 0001  E..4..@.@.......\
             \n\t0x0010:  72                                       r"
        );
        let mut out = Vec::new();
        hex(&mut out, &[1, 2, 3], false);
        assert_eq!(String::from_utf8(out).unwrap(), "\n\t0x0000:  0102 03");
        let mut out = Vec::new();
        ascii(&mut out, b"GET /\r\nx\ry\x01\r\n");
        assert_eq!(String::from_utf8(out).unwrap(), "\nGET /\nx.y.\n");
    }
}
