//! Fast line building: the hot path writes packet lines into a reused byte
//! buffer with these helpers instead of `format!` machinery (integers via
//! itoa, IPv4 addresses by hand). The buffer goes to the output in one write.

use std::net::IpAddr;

pub trait Emit {
    fn s(&mut self, s: &str) -> &mut Self;
    fn n<I: itoa::Integer>(&mut self, i: I) -> &mut Self;
    /// `n` left-padded with zeros to `width` digits.
    fn zn(&mut self, n: u64, width: usize) -> &mut Self;
    /// An address as tcpdump and std print it (IPv6 per RFC 5952).
    fn ip(&mut self, ip: IpAddr) -> &mut Self;
    /// A timestamp's fraction of a second: `.ffffff`, or `.fffffffff` with
    /// `nano` (`--nano`).
    fn frac(&mut self, nsec: u32, nano: bool) -> &mut Self;
}

/// "00" to "99": two digits at a time.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `.` and `n` in exactly `width` digits (zeros in front), for `n` below
/// 10^`width` and `width` ≤ 9: a stamp's fraction, two digits a step.
#[inline]
fn point_fixed(v: &mut Vec<u8>, mut n: u32, width: usize) {
    let mut buf = *b".0000000000";
    let mut i = buf.len();
    while n >= 10 {
        let p = (n % 100) as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[p..p + 2]);
        n /= 100;
    }
    if n > 0 {
        buf[i - 1] = b'0' + n as u8;
    }
    let start = buf.len() - width - 1;
    buf[start] = b'.';
    put(v, &buf[start..]);
}

/// Appends a few bytes: strings on a packet line are mostly 1 to 16 bytes,
/// for which a call to `memcpy` (what `extend_from_slice` becomes when the
/// length is not known) costs more than the copy. Up to 16 bytes are
/// copied as two overlapping words (8..=16: two u64, 4..8: two u32, 1..4:
/// three bytes), whatever the length.
#[inline]
fn put(v: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if n > 16 {
        v.extend_from_slice(b);
        return;
    }
    v.reserve(16);
    let len = v.len();
    // SAFETY: 16 bytes of spare capacity were reserved and every write
    // below lands in `len..len + n` (n ≤ 16); every read is in `b`. Each
    // byte up to the new length is written before it is set.
    unsafe {
        let src = b.as_ptr();
        let dst = v.as_mut_ptr().add(len);
        if n >= 8 {
            let first = src.cast::<u64>().read_unaligned();
            let last = src.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(first);
            dst.add(n - 8).cast::<u64>().write_unaligned(last);
        } else if n >= 4 {
            let first = src.cast::<u32>().read_unaligned();
            let last = src.add(n - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(first);
            dst.add(n - 4).cast::<u32>().write_unaligned(last);
        } else if n > 0 {
            dst.write(*src);
            dst.add(n / 2).write(*src.add(n / 2));
            dst.add(n - 1).write(*src.add(n - 1));
        }
        v.set_len(len + n);
    }
}

/// Each octet's decimal digits and a dot, in four bytes, with how many of
/// them count (IPv4 addresses: one unaligned store an octet).
const OCTETS: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut o = 0;
    while o < 256 {
        let d = o as u8;
        t[o] = if o >= 100 {
            ([b'0' + d / 100, b'0' + d / 10 % 10, b'0' + d % 10, b'.'], 4)
        } else if o >= 10 {
            ([b'0' + d / 10, b'0' + d % 10, b'.', 0], 3)
        } else {
            ([b'0' + d, b'.', 0, 0], 2)
        };
        o += 1;
    }
    t
};

/// An IPv4 address in dotted decimal.
#[inline]
fn ipv4(v: &mut Vec<u8>, octets: [u8; 4]) {
    v.reserve(16);
    let len = v.len();
    let mut at = 0;
    // SAFETY: 16 bytes of spare capacity were reserved; each octet writes
    // 4 bytes at `at` ≤ 12. The address is at most 15 bytes, each written
    // before the length is set (the last octet's dot is not counted).
    unsafe {
        let dst = v.as_mut_ptr().add(len);
        for o in octets {
            let (digits, n) = OCTETS[usize::from(o)];
            dst.add(at).cast::<[u8; 4]>().write_unaligned(digits);
            at += usize::from(n);
        }
        v.set_len(len + at - 1);
    }
}

impl Emit for Vec<u8> {
    #[inline]
    fn s(&mut self, s: &str) -> &mut Self {
        put(self, s.as_bytes());
        self
    }

    #[inline]
    fn n<I: itoa::Integer>(&mut self, i: I) -> &mut Self {
        let mut b = itoa::Buffer::new();
        put(self, b.format(i).as_bytes());
        self
    }

    fn zn(&mut self, n: u64, width: usize) -> &mut Self {
        let mut b = itoa::Buffer::new();
        let digits = b.format(n);
        for _ in digits.len()..width {
            self.push(b'0');
        }
        put(self, digits.as_bytes());
        self
    }

    #[inline]
    fn frac(&mut self, nsec: u32, nano: bool) -> &mut Self {
        // A stamp's nanoseconds are below 10^9 (`core::time`); a larger
        // value would be cut to its last digits, so it goes the long way.
        if nsec >= 1_000_000_000 {
            return if nano {
                self.s(".").zn(u64::from(nsec), 9)
            } else {
                self.s(".").zn(u64::from(nsec / 1000), 6)
            };
        }
        if nano {
            point_fixed(self, nsec, 9);
        } else {
            point_fixed(self, nsec / 1000, 6);
        }
        self
    }

    fn ip(&mut self, ip: IpAddr) -> &mut Self {
        match ip {
            IpAddr::V4(v4) => {
                ipv4(self, v4.octets());
                self
            }
            IpAddr::V6(v6) => {
                use std::io::Write;
                let _ = write!(self, "{v6}");
                self
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_octet_and_short_and_long_strings() {
        for o in 0..=255u8 {
            let mut v = Vec::new();
            v.ip(std::net::Ipv4Addr::new(o, 0, 255, o).into());
            assert_eq!(String::from_utf8(v).unwrap(), format!("{o}.0.255.{o}"));
            let mut v = b"at ".to_vec();
            let a = std::net::Ipv4Addr::new(7, o, o / 3, 255 - o);
            v.ip(a.into()).s(".");
            assert_eq!(String::from_utf8(v).unwrap(), format!("at {a}."));
        }
        // Every length up to and past the word copies, at every offset.
        let text: String = (0..40u8).map(|i| char::from(b'a' + i % 26)).collect();
        for start in 0..7 {
            for n in 0..=20 {
                let mut v = "p".repeat(start).into_bytes();
                v.s(&text[..n]).s("|");
                assert_eq!(
                    v,
                    format!("{}{}|", "p".repeat(start), &text[..n]).into_bytes()
                );
            }
        }
        let mut v = b"x".to_vec();
        v.s("")
            .s("0123456789abcdef")
            .s("0123456789abcdefg")
            .n(0u8)
            .n(u64::MAX);
        assert_eq!(
            String::from_utf8(v).unwrap(),
            format!("x0123456789abcdef0123456789abcdefg0{}", u64::MAX)
        );
    }

    #[test]
    fn fractions_have_every_digit() {
        for nsec in [
            0,
            1,
            9,
            10,
            99,
            100,
            999,
            1000,
            9999,
            123_456_789,
            999_999_999,
            1_000_000_000,
            u32::MAX,
        ]
        .into_iter()
        .chain((0..2000).map(|i| i * 499_979))
        {
            for nano in [false, true] {
                let mut v = b"t".to_vec();
                v.frac(nsec, nano);
                let want = if nano {
                    format!("t.{nsec:09}")
                } else {
                    format!("t.{:06}", nsec / 1000)
                };
                assert_eq!(String::from_utf8(v).unwrap(), want, "{nsec} {nano}");
            }
        }
    }

    #[test]
    fn matches_std_formatting() {
        let mut v = Vec::new();
        v.ip("10.200.0.7".parse().unwrap())
            .s(" ")
            .zn(42, 6)
            .s(" ")
            .n(u32::MAX);
        v.s(" ").ip("2001:db8::1".parse().unwrap());
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "10.200.0.7 000042 4294967295 2001:db8::1"
        );
    }
}
