//! Recognizing an application protocol by its first bytes, where more than
//! one analysis needs to (HTTP/1.x is followed by `http` and set aside by
//! `app`).

/// Whether `b` starts like an HTTP/1.x request line: an upper-case method,
/// a space, and — when the line ends within `b` — `HTTP/1.0` or `HTTP/1.1`
/// as its last word. (The HTTP/2 preface `PRI * HTTP/2.0` and a line of
/// some other protocol, `GET / chatty`, are not HTTP/1.x requests.)
pub fn looks_like_request(b: &[u8]) -> bool {
    let method_len = b.iter().take(17).position(|&c| c == b' ');
    let method_ok = match method_len {
        Some(n) if n > 0 => b[..n].iter().all(|c| c.is_ascii_uppercase()),
        _ => false,
    };
    if !method_ok {
        return false;
    }
    match b.iter().position(|&c| c == b'\n') {
        Some(end) => {
            let line = b[..end].strip_suffix(b"\r").unwrap_or(&b[..end]);
            let version = line.rsplit(|&c| c == b' ').next().unwrap_or(&[]);
            version_of(version).is_some()
        }
        // The line goes on in a later segment: the method must do.
        None => true,
    }
}

/// `HTTP/1.1` → `1.1`, `HTTP/1.0` → `1.0`.
pub fn version_of(proto: &[u8]) -> Option<&'static str> {
    match proto {
        b"HTTP/1.1" => Some("1.1"),
        b"HTTP/1.0" => Some("1.0"),
        _ => None,
    }
}
