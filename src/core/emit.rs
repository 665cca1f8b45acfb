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
    fn frac(&mut self, nsec: u32, nano: bool) -> &mut Self {
        if nano {
            self.s(".").zn(u64::from(nsec), 9)
        } else {
            self.s(".").zn(u64::from(nsec / 1000), 6)
        }
    }
}

/// Appends a few bytes: strings on a packet line are mostly 1 to 10 bytes,
/// for which a call to `memcpy` (what `extend_from_slice` becomes) costs
/// more than the copy.
#[inline]
fn put(v: &mut Vec<u8>, b: &[u8]) {
    if b.len() > 16 {
        v.extend_from_slice(b);
        return;
    }
    v.reserve(16);
    let len = v.len();
    // SAFETY: 16 bytes of spare capacity were reserved and `b` holds at
    // most 16; every byte up to the new length is written before it is set.
    unsafe {
        let dst = v.as_mut_ptr().add(len);
        for (i, &byte) in b.iter().enumerate() {
            dst.add(i).write(byte);
        }
        v.set_len(len + b.len());
    }
}

/// An octet in decimal (IPv4 addresses).
#[inline]
fn octet(v: &mut Vec<u8>, o: u8) {
    if o >= 100 {
        v.extend_from_slice(&[b'0' + o / 100, b'0' + o / 10 % 10, b'0' + o % 10]);
    } else if o >= 10 {
        v.extend_from_slice(&[b'0' + o / 10, b'0' + o % 10]);
    } else {
        v.push(b'0' + o);
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

    fn ip(&mut self, ip: IpAddr) -> &mut Self {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                self.reserve(15);
                octet(self, a);
                self.push(b'.');
                octet(self, b);
                self.push(b'.');
                octet(self, c);
                self.push(b'.');
                octet(self, d);
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
