//! A tracepoint's record layout, read at run time from its tracefs
//! `format` file (`ID:` and one `field:` line per member), so that no
//! kernel headers are needed and older layouts (a field missing) are
//! told apart from newer ones.

/// One tracepoint's layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub id: u64,
    fields: Vec<(String, usize, usize)>,
}

impl Format {
    /// Parses a `format` file's text; `None` when it has no `ID:`.
    pub fn parse(text: &str) -> Option<Format> {
        let mut id = None;
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("ID:") {
                id = v.trim().parse().ok();
            } else if let Some(rest) = line.strip_prefix("field:") {
                // "const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;"
                let mut parts = rest.split(';');
                let decl = parts.next().unwrap_or("").trim();
                let name = decl
                    .rsplit(|c: char| c.is_whitespace() || c == '*')
                    .next()
                    .unwrap_or("");
                let name = name.split('[').next().unwrap_or(name).to_string();
                let num = |key: &str, parts: &[&str]| {
                    parts.iter().find_map(|p| {
                        p.trim()
                            .strip_prefix(key)
                            .and_then(|v| v.trim().parse::<usize>().ok())
                    })
                };
                let parts: Vec<&str> = parts.collect();
                if let (Some(offset), Some(size)) = (num("offset:", &parts), num("size:", &parts)) {
                    fields.push((name, offset, size));
                }
            }
        }
        Some(Format { id: id?, fields })
    }

    /// A field's offset and size in a record.
    pub fn field(&self, name: &str) -> Option<(usize, usize)> {
        self.fields
            .iter()
            .find(|(n, ..)| n == name)
            .map(|&(_, o, s)| (o, s))
    }

    /// The bytes of field `name` in `raw`, when it has them.
    pub fn bytes<'a>(&self, raw: &'a [u8], name: &str) -> Option<&'a [u8]> {
        let (o, s) = self.field(name)?;
        raw.get(o..o + s)
    }

    /// An unsigned integer field (1 to 8 bytes, this host's byte order).
    pub fn uint(&self, raw: &[u8], name: &str) -> Option<u64> {
        let b = self.bytes(raw, name)?;
        let mut v = [0u8; 8];
        if b.len() > 8 {
            return None;
        }
        if cfg!(target_endian = "little") {
            v[..b.len()].copy_from_slice(b);
            Some(u64::from_le_bytes(v))
        } else {
            v[8 - b.len()..].copy_from_slice(b);
            Some(u64::from_be_bytes(v))
        }
    }

    /// A signed 32-bit field.
    pub fn int(&self, raw: &[u8], name: &str) -> Option<i32> {
        self.uint(raw, name).map(|v| v as u32 as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux 6.18's `tcp:tcp_send_reset`, which carries the reason.
    pub const SEND_RESET_6_18: &str = "name: tcp_send_reset
ID: 2280
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;
\tfield:__u8 saddr[28];\toffset:32;\tsize:28;\tsigned:0;
\tfield:__u8 daddr[28];\toffset:60;\tsize:28;\tsigned:0;

print fmt: \"skbaddr=%p skaddr=%p src=%pISpc dest=%pISpc state=%s reason=%s\"
";

    /// Linux 5.15's, before reasons (and before the state).
    pub const SEND_RESET_5_15: &str = "name: tcp_send_reset
ID: 1402
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;
";

    #[test]
    fn this_kernels_layout_and_an_older_one_without_reason() {
        let new = Format::parse(SEND_RESET_6_18).unwrap();
        assert_eq!(new.id, 2280);
        assert_eq!(new.field("common_type"), Some((0, 2)));
        assert_eq!(new.field("skaddr"), Some((16, 8)));
        assert_eq!(new.field("reason"), Some((28, 4)));
        assert_eq!(new.field("saddr"), Some((32, 28)));
        let old = Format::parse(SEND_RESET_5_15).unwrap();
        assert_eq!(old.id, 1402);
        assert_eq!(old.field("reason"), None);
        assert_eq!(old.field("saddr_v6"), Some((40, 16)));
        assert_eq!(old.field("sport"), Some((28, 2)));
        let mut raw = vec![0u8; 72];
        raw[28..30].copy_from_slice(&2333u16.to_ne_bytes());
        assert_eq!(old.uint(&raw, "sport"), Some(2333));
        assert_eq!(Format::parse("no id here"), None);
    }
}
