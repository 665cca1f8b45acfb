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

impl Emit for Vec<u8> {
    fn s(&mut self, s: &str) -> &mut Self {
        self.extend_from_slice(s.as_bytes());
        self
    }

    fn n<I: itoa::Integer>(&mut self, i: I) -> &mut Self {
        let mut b = itoa::Buffer::new();
        self.extend_from_slice(b.format(i).as_bytes());
        self
    }

    fn zn(&mut self, n: u64, width: usize) -> &mut Self {
        let mut b = itoa::Buffer::new();
        let digits = b.format(n);
        for _ in digits.len()..width {
            self.push(b'0');
        }
        self.extend_from_slice(digits.as_bytes());
        self
    }

    fn ip(&mut self, ip: IpAddr) -> &mut Self {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                self.n(a).s(".").n(b).s(".").n(c).s(".").n(d)
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
