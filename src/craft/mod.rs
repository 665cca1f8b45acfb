//! Crafted packets and captures, for tests, benchmarks and fuzz seeds (the
//! `kacap` binary does not use it): the one TCP/IP packet builder and
//! checksum of the project, a tiny pcap / pcapng writer, and TCP
//! conversations built segment by segment with explicit time, over any link
//! type — for what loopback cannot produce (two-hour timers, Windows probes,
//! other link types, hostile bytes).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

pub use crate::core::decode::flags::{ACK, FIN, PSH, RST, SYN};
pub use frag::{fragment, rewrite_pcap, to_v6};
pub use pcap::{PcapOpts, pcap_header, pcap_record, write_pcap, write_pcapng};

mod frag;
mod pcap;

/// Link-layer framing (with the pcap LINKTYPE written in the file header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// Ethernet with an 802.1Q tag (VLAN 10).
    Vlan,
    /// BSD loopback, host byte order (little-endian here).
    Null,
    /// OpenBSD loopback, network byte order.
    Loop,
    /// LINKTYPE_RAW (101).
    Raw,
    /// LINKTYPE_IPV4 (228) / LINKTYPE_IPV6 (229), by address family.
    IpOnly,
    /// Linux cooked v1 (113).
    Sll,
    /// Linux cooked v2 (276).
    Sll2,
}

impl Link {
    pub fn linktype(self, v6: bool) -> u32 {
        match self {
            Link::Ethernet | Link::Vlan => 1,
            Link::Null => 0,
            Link::Loop => 108,
            Link::Raw => 101,
            Link::IpOnly => {
                if v6 {
                    229
                } else {
                    228
                }
            }
            Link::Sll => 113,
            Link::Sll2 => 276,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Client,
    Server,
}
pub use Dir::{Client, Server};

/// One TCP conversation between a client and a server, frame by frame.
pub struct Conn {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub link: Link,
    /// Pad Ethernet frames to 60 bytes as NICs do.
    pub pad: bool,
    /// Insert an IPv6 hop-by-hop extension header.
    pub v6_ext: bool,
    pub t: f64,
    pub frames: Vec<(f64, Vec<u8>)>,
    /// snd_nxt of each side.
    pub next: [u32; 2],
    pub win: [u16; 2],
}

impl Conn {
    pub fn new(client: &str, server: &str, link: Link) -> Conn {
        Conn {
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
            link,
            pad: false,
            v6_ext: false,
            t: 1_700_000_000.0,
            frames: Vec::new(),
            next: [0, 0],
            win: [512, 512],
        }
    }

    fn idx(from: Dir) -> usize {
        match from {
            Client => 0,
            Server => 1,
        }
    }

    /// The same frames, Ethernet ones padded to 60 bytes as NICs do.
    pub fn padded(mut self) -> Conn {
        for (_, f) in &mut self.frames {
            if f.len() < 60 {
                f.resize(60, 0);
            }
        }
        self.pad = true;
        self
    }

    /// Advances time by `secs`.
    pub fn wait(&mut self, secs: f64) -> &mut Self {
        self.t += secs;
        self
    }

    /// Appends one segment with explicit fields.
    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        &mut self,
        from: Dir,
        flags: u8,
        seq: u32,
        ack: u32,
        win: u16,
        payload: &[u8],
        options: &[u8],
    ) -> &mut Self {
        let (src, dst) = match from {
            Client => (self.client, self.server),
            Server => (self.server, self.client),
        };
        let tcp = tcp_segment(src, dst, flags, seq, ack, win, payload, options);
        let ip = ip_packet(src.ip(), dst.ip(), &tcp, self.v6_ext);
        let frame = frame(self.link, src.is_ipv6(), &ip, self.pad, from == Server);
        self.frames.push((self.t, frame));
        self.t += 0.000_05;
        self
    }

    /// Segment from `from` at its snd_nxt, acknowledging the other side.
    pub fn seg(&mut self, from: Dir, flags: u8, payload: &[u8]) -> &mut Self {
        let i = Self::idx(from);
        let (seq, ack, win) = (self.next[i], self.next[1 - i], self.win[i]);
        let ack = if flags & ACK != 0 { ack } else { 0 };
        self.raw(from, flags, seq, ack, win, payload, &[]);
        let mut used = payload.len() as u32;
        if flags & (SYN | FIN) != 0 {
            used += 1;
        }
        self.next[i] = seq.wrapping_add(used);
        self
    }

    /// Three-way handshake with the given ISNs and Linux-like options.
    pub fn handshake(&mut self, c_isn: u32, s_isn: u32) -> &mut Self {
        let syn_opts = [2, 4, 0xff, 0xd7, 4, 2, 1, 3, 3, 7];
        self.next = [c_isn, s_isn];
        self.raw(Client, SYN, c_isn, 0, 65495, &[], &pad4(&syn_opts));
        self.next[0] = c_isn.wrapping_add(1);
        self.raw(
            Server,
            SYN | ACK,
            s_isn,
            self.next[0],
            65483,
            &[],
            &pad4(&syn_opts),
        );
        self.next[1] = s_isn.wrapping_add(1);
        self.seg(Client, ACK, &[])
    }

    /// Data from `from`, then the other side's ACK.
    pub fn exchange(&mut self, from: Dir, data: &[u8]) -> &mut Self {
        self.seg(from, PSH | ACK, data);
        let other = if from == Client { Server } else { Client };
        self.seg(other, ACK, &[])
    }

    /// A keepalive probe: seq = snd_nxt − 1, with 0 or 1 garbage byte.
    pub fn probe(&mut self, from: Dir, garbage: usize) -> &mut Self {
        let i = Self::idx(from);
        let seq = self.next[i].wrapping_sub(1);
        let (ack, win) = (self.next[1 - i], self.win[i]);
        let payload = vec![0u8; garbage];
        self.raw(from, ACK, seq, ack, win, &payload, &[])
    }

    /// The active RST Linux sends when it gives up: [R.] at snd_nxt.
    pub fn give_up(&mut self, from: Dir) -> &mut Self {
        self.seg(from, RST | ACK, &[])
    }

    /// Writes a classic pcap file.
    pub fn write_pcap(&self, path: &Path, opts: PcapOpts) {
        write_pcap(
            path,
            self.link.linktype(self.client.is_ipv6()),
            &self.frames,
            opts,
        );
    }
}

fn pad4(opts: &[u8]) -> Vec<u8> {
    let mut v = opts.to_vec();
    while !v.len().is_multiple_of(4) {
        v.push(1);
    }
    v
}

/// The Internet checksum (RFC 1071) over `chunks`, as if concatenated.
pub fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        let mut it = chunk.chunks(2);
        for pair in &mut it {
            let word = if pair.len() == 2 {
                u16::from_be_bytes([pair[0], pair[1]])
            } else {
                u16::from_be_bytes([pair[0], 0])
            };
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A TCP header (with `options`, a multiple of 4 bytes) and payload, its
/// checksum filled in for the given addresses.
#[allow(clippy::too_many_arguments)]
pub fn tcp_segment(
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    win: u16,
    payload: &[u8],
    options: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let hlen = 20 + options.len();
    let mut t = Vec::with_capacity(hlen + payload.len());
    t.extend_from_slice(&src.port().to_be_bytes());
    t.extend_from_slice(&dst.port().to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(((hlen / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&win.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(options);
    t.extend_from_slice(payload);
    let (s, d) = (ip_bytes(src.ip()), ip_bytes(dst.ip()));
    let len = t.len() as u32;
    let pseudo: Vec<u8> = if src.is_ipv4() {
        let mut p = Vec::new();
        p.extend_from_slice(&s);
        p.extend_from_slice(&d);
        p.extend_from_slice(&[0, 6]);
        p.extend_from_slice(&(len as u16).to_be_bytes());
        p
    } else {
        let mut p = Vec::new();
        p.extend_from_slice(&s);
        p.extend_from_slice(&d);
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 6]);
        p
    };
    let c = checksum(&[&pseudo, &t]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// A whole IPv4 or IPv6 packet carrying one TCP segment without options
/// (TTL 64; link type RAW, or wrap it with [`frame`]).
pub fn tcp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    win: u16,
    payload: &[u8],
) -> Vec<u8> {
    let tcp = tcp_segment(src, dst, flags, seq, ack, win, payload, &[]);
    ip_packet(src.ip(), dst.ip(), &tcp, false)
}

/// An IP packet (TTL 64) around `tcp`.
pub fn ip_packet(src: IpAddr, dst: IpAddr, tcp: &[u8], v6_ext: bool) -> Vec<u8> {
    ip_packet_proto(src, dst, 6, tcp, v6_ext)
}

pub fn ip_packet_proto(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &[u8],
    v6_ext: bool,
) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = 20 + payload.len();
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&(total as u16).to_be_bytes());
            h.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let c = checksum(&[&h]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend_from_slice(payload);
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ext: Vec<u8> = if v6_ext {
                // Hop-by-hop options: next header, length 0, PadN(4).
                vec![proto, 0, 1, 4, 0, 0, 0, 0]
            } else {
                Vec::new()
            };
            let first = if v6_ext { 0 } else { proto };
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
            h.push(first);
            h.push(64);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            h.extend_from_slice(&ext);
            h.extend_from_slice(payload);
            h
        }
        _ => panic!("mixed address families"),
    }
}

pub fn frame(link: Link, v6: bool, ip: &[u8], pad: bool, inbound: bool) -> Vec<u8> {
    let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let mut f = Vec::new();
    match link {
        Link::Ethernet | Link::Vlan => {
            f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]);
            if link == Link::Vlan {
                f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
            }
            f.extend_from_slice(&ethertype);
        }
        Link::Null => f.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_le_bytes()),
        Link::Loop => f.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_be_bytes()),
        Link::Raw | Link::IpOnly => {}
        Link::Sll => {
            f.extend_from_slice(&(if inbound { 0u16 } else { 4 }).to_be_bytes());
            f.extend_from_slice(&772u16.to_be_bytes());
            f.extend_from_slice(&6u16.to_be_bytes());
            f.extend_from_slice(&[0; 8]);
            f.extend_from_slice(&ethertype);
        }
        Link::Sll2 => {
            f.extend_from_slice(&ethertype);
            f.extend_from_slice(&[0, 0]);
            f.extend_from_slice(&1u32.to_be_bytes());
            f.extend_from_slice(&772u16.to_be_bytes());
            f.push(if inbound { 0 } else { 4 });
            f.push(6);
            f.extend_from_slice(&[0; 8]);
        }
    }
    f.extend_from_slice(ip);
    if pad && matches!(link, Link::Ethernet | Link::Vlan) {
        while f.len() < 60 {
            f.push(0);
        }
    }
    f
}

/// Other traffic on a busy link: short connections (handshake, a request,
/// a response, FIN both ways: 10 frames each) from 10.9.x.y to
/// 10.8.0.1:443, about `fps` frames per second from `start` for `secs`
/// seconds, on Ethernet.
pub fn busy_link(start: f64, secs: f64, fps: f64) -> Vec<(f64, Vec<u8>)> {
    let flows = (secs * fps / 10.0).max(1.0) as u32;
    let spacing = secs / f64::from(flows);
    let mut out = Vec::with_capacity(flows as usize * 10);
    for i in 0..flows {
        let client = format!(
            "10.9.{}.{}:{}",
            (i >> 8) & 0xff,
            i & 0xff,
            20000 + (i % 40000)
        );
        let mut c = Conn::new(&client, "10.8.0.1:443", Link::Ethernet);
        c.t = start + f64::from(i) * spacing;
        c.handshake(i.wrapping_mul(7919), i.wrapping_mul(104_729))
            .exchange(Dir::Client, b"GET / HTTP/1.1\r\n\r\n")
            .exchange(Dir::Server, b"HTTP/1.1 204 No Content\r\n\r\n")
            .seg(Dir::Client, FIN | ACK, &[])
            .seg(Dir::Server, FIN | ACK, &[])
            .seg(Dir::Client, ACK, &[]);
        out.append(&mut c.frames);
    }
    out
}

/// Frames of several captures of one link type, merged by time (stable:
/// equal times keep their order).
pub fn merge(parts: Vec<Vec<(f64, Vec<u8>)>>) -> Vec<(f64, Vec<u8>)> {
    let mut all: Vec<(f64, Vec<u8>)> = parts.into_iter().flatten().collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all
}

/// A segment as `decode` would give it (raw IP, no options, TTL 64), to
/// drive one analysis directly: the unit tests, the proptests and the `app`
/// fuzz target.
pub fn decoded<'a>(
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &'a [u8],
) -> crate::core::decode::Segment<'a> {
    crate::core::decode::Segment {
        src: src.ip(),
        dst: dst.ip(),
        sport: src.port(),
        dport: dst.port(),
        seq: crate::core::seq::SeqNumber(seq),
        ack: crate::core::seq::SeqNumber(ack),
        flags,
        win: 512,
        urp: 0,
        header_len: 20,
        len: payload.len() as u32,
        options: &[],
        options_truncated: false,
        payload,
        ttl: 64,
        ip_id: 0,
        checksum: 0,
        link: crate::core::decode::LinkInfo {
            kind: crate::core::decode::LinkType::Raw,
            ifindex: 0,
            pkttype: None,
            vlan: 0,
        },
    }
}

/// What an analysis sees of `seg`, taken for data from `from` at `ts`
/// (no facts from the core state: not injected, answers no probe).
pub fn data_ctx<'a>(
    n: u64,
    ts: crate::core::time::Timestamp,
    seg: &'a crate::core::decode::Segment<'a>,
    from: crate::core::tcp::Side,
) -> crate::analyses::Ctx<'a> {
    crate::analyses::Ctx {
        n,
        ts,
        seg,
        from,
        kind: crate::core::tcp::Kind::Data,
        silence: None,
        heard: None,
        injected: false,
        answers_probe: false,
        late: false,
    }
}
