//! A connection's key in the flow table: its two endpoints, the lower
//! first, and its VLAN tags.

use crate::core::decode::Segment;

/// Canonical 4-tuple, the lower endpoint first, and the VLAN tags it was
/// seen with: the same 4-tuple on two VLANs (routed between them, or two
/// hosts behind one address plan) is not one stream of segments.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct FlowKey {
    lo: ([u8; 16], u16),
    hi: ([u8; 16], u16),
    vlan: u32,
}

/// An endpoint as the key orders it: its address as one number (IPv4
/// mapped into IPv6; big-endian, so the order of the key's bytes), then
/// its port. The key stores the address as 16 bytes: only 2-byte aligned,
/// so a key takes 40 bytes.
#[inline(always)]
pub(crate) fn end(ip: std::net::IpAddr, port: u16) -> (u128, u16) {
    let ip = match ip {
        std::net::IpAddr::V4(v4) => (0xffff << 32) | u128::from(u32::from(v4)),
        std::net::IpAddr::V6(v6) => u128::from(v6),
    };
    (ip, port)
}

impl FlowKey {
    #[inline]
    pub fn of(seg: &Segment) -> FlowKey {
        FlowKey::oriented(seg).0
    }

    /// The key, and whether the segment's source is its lower end (which
    /// tells the segment's side once the flow knows its client's end).
    /// Endpoints are compared as numbers, the same order as their bytes.
    #[inline]
    pub fn oriented(seg: &Segment) -> (FlowKey, bool) {
        let (a, b) = (end(seg.src, seg.sport), end(seg.dst, seg.dport));
        let vlan = seg.link.vlan;
        let bytes = |(ip, port): (u128, u16)| (ip.to_be_bytes(), port);
        if a <= b {
            (
                FlowKey {
                    lo: bytes(a),
                    hi: bytes(b),
                    vlan,
                },
                true,
            )
        } else {
            (
                FlowKey {
                    lo: bytes(b),
                    hi: bytes(a),
                    vlan,
                },
                false,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_is_the_mapped_bytes() {
        for ip in [
            "10.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let bytes = match ip {
                std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                std::net::IpAddr::V6(v6) => v6.octets(),
            };
            assert_eq!(end(ip, 0).0.to_be_bytes(), bytes, "{ip}");
        }
    }
}
