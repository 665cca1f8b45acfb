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
    /// Seconds or another measure in JSON, to the microsecond, as
    /// `core::text::Num` prints it (`null` for none).
    fn num(&mut self, v: Option<f64>) -> &mut Self;
    /// A JSON string that needs no escaping, or `null`.
    fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.s("\"").s(s).s("\""),
            None => self.s("null"),
        }
    }
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

/// Appends a few bytes: strings on a packet line are mostly 1 to 32 bytes,
/// for which a call to `memcpy` (what `extend_from_slice` becomes when the
/// length is not known) costs more than the copy. Up to 32 bytes are
/// copied as two overlapping words, whatever the length (16..=32: two
/// u128, 8..16: two u64, 4..8: two u32, 1..4: three bytes).
#[inline]
fn put(v: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if n > 32 {
        v.extend_from_slice(b);
        return;
    }
    v.reserve(32);
    let len = v.len();
    // SAFETY: 32 bytes of spare capacity were reserved and every write
    // below lands in `len..len + n` (n ≤ 32); every read is in `b`. Each
    // byte up to the new length is written before it is set.
    unsafe {
        let src = b.as_ptr();
        let dst = v.as_mut_ptr().add(len);
        if n >= 16 {
            let first = src.cast::<u128>().read_unaligned();
            let last = src.add(n - 16).cast::<u128>().read_unaligned();
            dst.cast::<u128>().write_unaligned(first);
            dst.add(n - 16).cast::<u128>().write_unaligned(last);
        } else if n >= 8 {
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

    fn num(&mut self, v: Option<f64>) -> &mut Self {
        let Some(v) = v.filter(|v| v.is_finite()) else {
            return self.s("null");
        };
        let micros = (v * 1e6).round();
        // Whole microseconds below 10^15 have at most 15 significant
        // digits, so the shortest decimal that reads back as the rounded
        // value (what `Display` prints) is those digits, trailing zeros
        // cut; anything else (negative, huge) goes the long way.
        if micros > 0.0 && micros < 1e15 {
            let m = micros as u64;
            self.n(m / 1_000_000);
            let frac = (m % 1_000_000) as u32;
            if frac > 0 {
                let mut digits = 6;
                let mut f = frac;
                while f.is_multiple_of(10) {
                    f /= 10;
                    digits -= 1;
                }
                point_fixed(self, f, digits);
            }
            return self;
        }
        if micros == 0.0 && micros.is_sign_positive() {
            return self.s("0");
        }
        use std::io::Write;
        let _ = write!(self, "{}", micros / 1e6);
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

/// The last whole second written, as text: a capture's stamps share their
/// second with the records before them, so its digits are copied, not
/// made again.
#[derive(Clone, Debug, Default)]
pub struct SecText {
    sec: Option<i64>,
    len: u8,
    text: [u8; 20],
}

impl SecText {
    /// Appends `sec` in decimal.
    #[inline]
    pub fn put(&mut self, out: &mut Vec<u8>, sec: i64) {
        if self.sec != Some(sec) {
            let mut b = itoa::Buffer::new();
            let digits = b.format(sec).as_bytes();
            self.text[..digits.len()].copy_from_slice(digits);
            self.len = digits.len() as u8;
            self.sec = Some(sec);
        }
        put(out, &self.text[..usize::from(self.len)]);
    }
}

/// The text of recent segments' addresses and ports, by connection and
/// direction: a line's endpoints are the same for every segment one way
/// of a connection, so they are formatted once and copied after. Direct
/// mapped, each slot checked against the endpoints themselves (a slot's
/// index only decides where to look): 76 % of the benchmark's segments
/// find theirs.
#[derive(Clone, Debug, Default)]
pub struct EndsText {
    /// Allocated on first use (a printer made and never used costs none).
    slots: Vec<EndsSlot>,
}

/// Slots in an [`EndsText`]: a power of two.
const ENDS_SLOTS: usize = 256;
/// Bytes a slot holds: two bracketed IPv6 addresses with ports and what
/// goes between them fit; longer text is formatted every time.
const ENDS_BYTES: usize = 112;

#[derive(Clone, Debug)]
struct EndsSlot {
    key: Option<(IpAddr, u16, IpAddr, u16)>,
    len: u8,
    text: [u8; ENDS_BYTES],
}

impl EndsText {
    /// Appends the text `write` makes for these endpoints, copied from the
    /// slot of (`flow`, `dir`) when it holds them, else made and kept.
    #[inline]
    pub fn put(
        &mut self,
        out: &mut Vec<u8>,
        (flow, dir): (u32, usize),
        key: (IpAddr, u16, IpAddr, u16),
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        if self.slots.is_empty() {
            self.slots = vec![
                EndsSlot {
                    key: None,
                    len: 0,
                    text: [0; ENDS_BYTES],
                };
                ENDS_SLOTS
            ];
        }
        let slot = &mut self.slots[(flow as usize * 2 + dir) & (ENDS_SLOTS - 1)];
        if slot.key == Some(key) {
            out.reserve(ENDS_BYTES);
            let len = out.len();
            // SAFETY: ENDS_BYTES of spare capacity were reserved; the whole
            // slot is copied (one fixed-size copy), only its text counted,
            // every byte of which was written before the length is set.
            unsafe {
                out.as_mut_ptr()
                    .add(len)
                    .cast::<[u8; ENDS_BYTES]>()
                    .write_unaligned(slot.text);
                out.set_len(len + usize::from(slot.len));
            }
            return;
        }
        let start = out.len();
        write(out);
        let made = &out[start..];
        if made.len() <= ENDS_BYTES {
            slot.text[..made.len()].copy_from_slice(made);
            slot.len = made.len() as u8;
            slot.key = Some(key);
        } else {
            slot.key = None;
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
        let text: String = (0..40u8).map(|i| char::from(b'A' + i)).collect();
        for start in 0..7 {
            for n in 0..=36 {
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
    fn ends_text_is_the_endpoints_own_whichever_slot_they_share() {
        let mut ends = EndsText::default();
        // The longest pair, written twice: longer than a slot holds.
        let long = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
        let write = |out: &mut Vec<u8>, k: (IpAddr, u16, IpAddr, u16)| {
            let times = if k.0.to_string() == long { 2 } else { 1 };
            for _ in 0..times {
                out.ip(k.0).s(".").n(k.1).s(" > ").ip(k.2).s(".").n(k.3);
            }
        };
        let v4 = |a: &str, p, b: &str, q| (a.parse().unwrap(), p, b.parse().unwrap(), q);
        let keys = [
            v4("10.0.0.1", 1, "10.0.0.2", 2),
            v4("10.0.0.2", 2, "10.0.0.1", 1),
            v4("192.168.100.200", 65535, "1.2.3.4", 80),
            v4("2001:db8::1", 443, "2001:db8::2", 50000),
            v4(long, 65535, long, 65535),
        ];
        // Flows 0 and 128 (and 64 the other way) share a slot; every key
        // through every slot, twice, in changing order.
        for round in 0..3 {
            for (i, &k) in keys.iter().enumerate() {
                for at in [(0, 0), (128, 0), (64, 1), (7, 1)] {
                    let mut want = b"x ".to_vec();
                    write(&mut want, k);
                    want.extend_from_slice(b" y");
                    let mut out = b"x ".to_vec();
                    ends.put(&mut out, at, k, |o| write(o, k));
                    out.extend_from_slice(b" y");
                    assert_eq!(out, want, "round {round} key {i} at {at:?}");
                }
            }
        }
        let mut full = Vec::new();
        write(&mut full, keys[4]);
        assert!(full.len() > ENDS_BYTES, "the long key is never kept");
    }

    #[test]
    fn sec_text_is_the_seconds_own() {
        let mut kept = SecText::default();
        for sec in [
            0,
            0,
            1_700_000_000,
            1_700_000_000,
            1_700_000_001,
            -5,
            i64::MIN,
            i64::MAX,
            7,
            7,
        ] {
            let mut out = b"ts ".to_vec();
            kept.put(&mut out, sec);
            assert_eq!(out, format!("ts {sec}").into_bytes());
        }
    }

    #[test]
    fn num_prints_what_num_displays() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut values = vec![
            0.0,
            -0.0,
            1e-7,
            -1e-7,
            4e-7,
            5e-7,
            0.5,
            1.0,
            7200.0,
            75.000001,
            0.1 + 0.2,
            1e9,
            123_456_789.123_456,
            999_999_999.999_999_5,
            1e15,
            1e16,
            3e20,
            -1.5,
            -7200.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for _ in 0..20_000 {
            let r = next();
            let v = match r % 4 {
                0 => (r >> 11) as f64 / (1u64 << 53) as f64 * 10_000.0,
                1 => f64::from((r >> 32) as u32) / 1e6,
                2 => (r >> 20) as f64 / 1e3,
                _ => f64::from_bits(r),
            };
            values.push(v);
        }
        for v in values {
            let mut got = b"[".to_vec();
            got.num(Some(v)).s("]");
            let want = format!("[{}]", crate::core::text::Num(Some(v)));
            assert_eq!(String::from_utf8(got).unwrap(), want, "{v:e}");
        }
        let mut none = Vec::new();
        none.num(None)
            .s(",")
            .opt_str(None)
            .s(",")
            .opt_str(Some("client"));
        assert_eq!(none, b"null,null,\"client\"");
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
