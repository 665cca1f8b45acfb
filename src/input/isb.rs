//! pcapng Interface Statistics Blocks: how many packets the capture itself
//! dropped (`isb_ifdrop`, option 5: by the interface; `isb_osdrop`, 7: by
//! the capturing OS), read by the fast path as it passes them.

/// The interface a whole ISB `block` is about and its drops, when it
/// carries a drop counter; `swapped`: the section is big-endian here.
pub fn drops(block: &[u8], swapped: bool) -> Option<(usize, u64)> {
    let len = block.len();
    if len < 24 {
        return None;
    }
    let u16_at = |at: usize| {
        let b = [block[at], block[at + 1]];
        if swapped {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |at: usize| {
        let b = [block[at], block[at + 1], block[at + 2], block[at + 3]];
        if swapped {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let u64_at = |at: usize| {
        let (a, b) = (u64::from(u32_at(at)), u64::from(u32_at(at + 4)));
        if swapped { a << 32 | b } else { b << 32 | a }
    };
    let iface = u32_at(8) as usize;
    let (mut at, end) = (20, len - 4);
    let mut dropped: Option<u64> = None;
    while at + 4 <= end {
        let (code, olen) = (u16_at(at), usize::from(u16_at(at + 2)));
        if code == 0 || at + 4 + olen > end {
            break;
        }
        if (code == 5 || code == 7) && olen == 8 {
            dropped = Some(dropped.unwrap_or(0).saturating_add(u64_at(at + 4)));
        }
        at += 4 + olen.div_ceil(4) * 4;
    }
    (iface < 1 << 16).then_some(iface).zip(dropped)
}
