//! Tracepoints read through `perf_event_open` (PERF_TYPE_TRACEPOINT, raw
//! samples stamped with CLOCK_MONOTONIC, handed on in wall time): one ring
//! buffer per CPU, every
//! tracepoint of that CPU writing into it (PERF_EVENT_IOC_SET_OUTPUT).
//! No BPF and no kernel headers: the samples' layout comes from tracefs
//! (`format`).

use std::io;

const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_SAMPLE_TIME: u64 = 1 << 2;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_OUTPUT: libc::c_ulong = 0x2405;
const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
/// Data pages per ring (a power of two): 1 MiB with 4 KiB pages, enough
/// for a burst of about 9,000 events per CPU while the reader is not
/// scheduled; a quarter of that beyond 64 CPUs.
fn data_pages(cpus: usize) -> usize {
    if cpus <= 64 { 256 } else { 64 }
}
const PERF_EVENT_IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;

/// One CPU's ring and the descriptors writing into it.
struct Ring {
    fds: Vec<libc::c_int>,
    base: *mut u8,
    len: usize,
    page: usize,
    /// Data pages (after the control page).
    pages: usize,
}

// SAFETY: the mapping is owned by the ring and only read through `&mut`.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: our mapping and descriptors.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
            for &fd in &self.fds {
                libc::close(fd);
            }
        }
    }
}

/// Every CPU's ring for a set of tracepoints.
pub struct Rings {
    rings: Vec<Ring>,
    /// Samples the kernel dropped because a ring was full.
    pub lost: u64,
}

/// The online CPUs (`/sys/devices/system/cpu/online`: "0-3,5").
fn online_cpus() -> Vec<i32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.split('-').filter_map(|v| v.parse::<i32>().ok());
        match (ends.next(), ends.next()) {
            (Some(a), Some(b)) => cpus.extend(a..=b),
            (Some(a), None) => cpus.push(a),
            _ => {}
        }
    }
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}

fn open_one(id: u64, cpu: i32, watermark: u32) -> io::Result<libc::c_int> {
    // perf_event_attr, PERF_ATTR_SIZE_VER7 (128 bytes), by offset.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&PERF_TYPE_TRACEPOINT.to_ne_bytes());
    attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&id.to_ne_bytes());
    attr[16..24].copy_from_slice(&1u64.to_ne_bytes()); // sample_period
    attr[24..32].copy_from_slice(&(PERF_SAMPLE_TIME | PERF_SAMPLE_RAW).to_ne_bytes());
    // flags: disabled (0), watermark (14), use_clockid (25): enabled once
    // every CPU's ring is set; a wake-up per quarter ring, not per sample
    // (the reader also looks every 100 ms).
    attr[40..48].copy_from_slice(&((1u64 << 0) | (1u64 << 14) | (1u64 << 25)).to_ne_bytes());
    attr[48..52].copy_from_slice(&watermark.to_ne_bytes()); // wakeup_watermark
    // CLOCK_MONOTONIC (tracepoints refuse clocks that are not NMI-safe,
    // CLOCK_REALTIME among them): turned into wall time by `Rings::read`.
    attr[92..96].copy_from_slice(&libc::CLOCK_MONOTONIC.to_ne_bytes()); // clockid
    // SAFETY: a valid attr of the size it says; the kernel reads it only.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::pid_t,
            cpu,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd as libc::c_int)
}

impl Rings {
    /// Opens `ids` (tracepoint IDs, each with the kernel-side filter to
    /// set on it, if any) on every online CPU and enables them. A filter
    /// the kernel refuses is left off (more events to read, none missed).
    pub fn open(ids: &[(u64, Option<&str>)]) -> io::Result<Rings> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let cpus = online_cpus();
        let pages = data_pages(cpus.len());
        let watermark = (pages * page / 4) as u32;
        let mut rings = Vec::new();
        for cpu in cpus {
            let mut fds = Vec::new();
            for &(id, filter) in ids {
                match open_one(id, cpu, watermark) {
                    Ok(fd) => {
                        if let Some(f) = filter.and_then(|f| std::ffi::CString::new(f).ok()) {
                            // SAFETY: a NUL-terminated string the kernel only reads.
                            unsafe { libc::ioctl(fd, PERF_EVENT_IOC_SET_FILTER as _, f.as_ptr()) };
                        }
                        fds.push(fd)
                    }
                    Err(e) => {
                        for fd in fds {
                            // SAFETY: ours.
                            unsafe { libc::close(fd) };
                        }
                        return Err(e);
                    }
                }
            }
            let len = page * (1 + pages);
            // SAFETY: mapping the first descriptor's ring, as perf does.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fds[0],
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                for fd in fds {
                    // SAFETY: ours.
                    unsafe { libc::close(fd) };
                }
                return Err(e);
            }
            let ring = Ring {
                fds,
                base: base.cast(),
                len,
                page,
                pages,
            };
            for &fd in &ring.fds[1..] {
                // SAFETY: redirecting our event into our ring.
                if unsafe { libc::ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT as _, ring.fds[0]) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            rings.push(ring);
        }
        for ring in &rings {
            for &fd in &ring.fds {
                // SAFETY: enabling our own event.
                if unsafe { libc::ioctl(fd, PERF_EVENT_IOC_ENABLE as _, 0) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(Rings { rings, lost: 0 })
    }

    /// Waits up to `timeout_ms` for samples, then hands every one waiting
    /// to `each` (its stamp in ns since the epoch, its raw bytes).
    pub fn read(&mut self, timeout_ms: i32, mut each: impl FnMut(u64, &[u8])) {
        let mut pfds: Vec<libc::pollfd> = self
            .rings
            .iter()
            .map(|r| libc::pollfd {
                fd: r.fds[0],
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: valid pollfds for the call.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        let mut record = Vec::new();
        let offset = realtime_minus_monotonic();
        let mut each = |t: u64, raw: &[u8]| each(t.wrapping_add(offset), raw);
        for ring in &mut self.rings {
            self.lost += drain(ring, &mut record, &mut each);
        }
    }
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC now, in ns (a sample's monotonic
/// stamp plus this is its wall time, to within a clock step).
fn realtime_minus_monotonic() -> u64 {
    let ns = |clock| {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the struct it is given.
        unsafe { libc::clock_gettime(clock, &mut t) };
        (t.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(t.tv_nsec as u64)
    };
    ns(libc::CLOCK_REALTIME).wrapping_sub(ns(libc::CLOCK_MONOTONIC))
}

/// Reads every record waiting in `ring`; returns the samples lost.
fn drain(ring: &mut Ring, record: &mut Vec<u8>, each: &mut impl FnMut(u64, &[u8])) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    let size = ring.page * ring.pages;
    // SAFETY: the control page's data_head (offset 1024) and data_tail
    // (1032), as the perf ABI lays them out; read and written atomically.
    let (head_at, tail_at) = unsafe {
        (
            &*(ring.base.add(1024) as *const AtomicU64),
            &*(ring.base.add(1032) as *const AtomicU64),
        )
    };
    let head = head_at.load(Ordering::Acquire);
    let mut tail = tail_at.load(Ordering::Relaxed);
    let mut lost = 0;
    // SAFETY: the data pages follow the control page.
    let data = unsafe { std::slice::from_raw_parts(ring.base.add(ring.page), size) };
    while tail + 8 <= head {
        let at = (tail as usize) % size;
        let byte = |i: usize| data[(at + i) % size];
        let kind = u32::from_ne_bytes([byte(0), byte(1), byte(2), byte(3)]);
        let len = usize::from(u16::from_ne_bytes([byte(6), byte(7)]));
        if len < 8 || tail + len as u64 > head {
            break;
        }
        record.clear();
        match data.get(at..at + len) {
            Some(whole) => record.extend_from_slice(whole),
            None => record.extend((0..len).map(byte)), // wraps round the end
        }
        match kind {
            PERF_RECORD_SAMPLE if len >= 20 => {
                let time = u64::from_ne_bytes(record[8..16].try_into().unwrap_or([0; 8]));
                let raw = u32::from_ne_bytes(record[16..20].try_into().unwrap_or([0; 4])) as usize;
                if let Some(raw) = record.get(20..20 + raw) {
                    each(time, raw);
                }
            }
            PERF_RECORD_LOST if len >= 24 => {
                lost += u64::from_ne_bytes(record[16..24].try_into().unwrap_or([0; 8]));
            }
            _ => {}
        }
        tail += len as u64;
    }
    tail_at.store(tail, Ordering::Release);
    lost
}
