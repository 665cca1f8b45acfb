//! The `analyses!` macro: from the registry's list, the records that hold
//! every analysis's part (per-flow state, notes, findings, marks, tallies)
//! and the loops the pipeline and every output run over, in the list's
//! order. Used once, in `registry.rs`.

/// Declares the analyses kacap runs, in order. See the module's account.
macro_rules! analyses {
    ($($(#[$doc:meta])* $name:ident: $ty:ty,)+) => {
        use $crate::analyses::Analysis as _;
        use $crate::analyses::describe::{Describe as _, FindingsOf, MarkOf, NoteOf};
        use $crate::analyses::event::{Event, Shared, Step, Summary};

        /// Every analysis's state for one connection.
        #[derive(Clone, Debug, Default)]
        pub struct PerFlow {
            $($(#[$doc])* pub $name: $ty,)+
        }

        /// Every analysis's note on one segment.
        #[derive(Clone, Copy, Debug, Default)]
        pub struct Notes {
            $($(#[$doc])* pub $name: <$ty as $crate::analyses::Analysis>::Note,)+
        }

        /// Every analysis's summary of one connection.
        #[derive(Clone, Debug)]
        pub struct Findings {
            $($(#[$doc])* pub $name: <$ty as $crate::analyses::Analysis>::Summary,)+
        }

        /// What a kept step holds of every analysis's note.
        #[derive(Clone, Copy, Debug, Default)]
        pub struct Marks {
            $($(#[$doc])* pub $name: <$ty as $crate::analyses::describe::Describe>::Mark,)+
        }

        /// What `--metrics` keeps of every analysis over the run.
        #[derive(Debug, Default)]
        pub struct Tallies {
            $(pub $name: <$ty as $crate::analyses::describe::Describe>::Tally,)+
        }

        /// What `--metrics` keeps of every analysis per server.
        #[derive(Clone, Copy, Debug, Default)]
        pub struct ServerTallies {
            $(pub $name: <$ty as $crate::analyses::describe::Describe>::ServerTally,)+
        }

        /// What the text report gathers for its advice after the table.
        #[derive(Debug, Default)]
        pub struct Evidence {
            $(pub $name: <$ty as $crate::analyses::describe::Describe>::Evidence,)+
        }

        /// One segment as the reports see it.
        pub type PacketEvent<'a> = Event<'a, Notes>;
        /// A reported connection.
        pub type FlowSummary = Summary<Findings>;
        /// A kept step.
        pub type FlowStep = Step<Marks>;

        /// The analyses' names, in order.
        pub const NAMES: &[&str] = &[$(stringify!($name)),+];

        $(
            impl NoteOf<$ty> for Notes {
                #[inline(always)]
                fn note(&self) -> &<$ty as $crate::analyses::Analysis>::Note {
                    &self.$name
                }
            }
            impl FindingsOf<$ty> for Findings {
                #[inline(always)]
                fn found(&self) -> &<$ty as $crate::analyses::Analysis>::Summary {
                    &self.$name
                }
            }
            impl MarkOf<$ty> for Marks {
                #[inline(always)]
                fn mark(&self) -> &<$ty as $crate::analyses::describe::Describe>::Mark {
                    &self.$name
                }
            }
        )+

        impl PerFlow {
            /// Runs every analysis on one segment, in the order listed.
            #[inline]
            pub fn segment(&mut self, cx: &$crate::analyses::Ctx) -> Notes {
                Notes { $($name: self.$name.segment(cx),)+ }
            }

            /// Every analysis's account of a revised segment.
            pub fn revise(&mut self, cx: &$crate::analyses::Ctx) -> Notes {
                Notes { $($name: self.$name.revise(cx),)+ }
            }

            /// Earlier segments an analysis reads differently after the
            /// segment whose notes are `notes` (see `Analysis::relabel`):
            /// its notes for them, the other analyses' left empty.
            #[inline(always)]
            pub fn relabel(
                &mut self,
                notes: &Notes,
            ) -> Option<$crate::analyses::Relabel<Notes>> {
                $(
                    if let Some(r) = self.$name.relabel(&notes.$name) {
                        return Some($crate::analyses::Relabel {
                            from: r.from,
                            items: r.items.map(|(n, note)| {
                                (n, Notes { $name: note, ..Notes::default() })
                            }),
                        });
                    }
                )+
                None
            }

            /// Every analysis's summary of the connection that ended.
            pub fn finish(
                &mut self,
                flow: &$crate::core::flows::Flow,
                now: $crate::core::time::Timestamp,
            ) -> Findings {
                Findings { $($name: self.$name.finish(flow, now),)+ }
            }
        }

        impl Notes {
            /// The first analysis's words for what the segment is, when one
            /// has them (`false`: the core's words say it).
            #[inline]
            pub fn lead(ev: &PacketEvent, out: &mut Vec<u8>) -> std::io::Result<bool> {
                $(if <$ty>::lead(ev, out)? { return Ok(true); })+
                Ok(false)
            }
            /// Every analysis's words after what the segment is.
            #[inline]
            pub fn words(ev: &PacketEvent, out: &mut Vec<u8>) -> std::io::Result<()> {
                $(<$ty>::words(ev, out)?;)+
                Ok(())
            }
            /// The first analysis's colour for the words.
            #[inline]
            pub fn color(ev: &PacketEvent) -> Option<&'static str> {
                $(if let Some(c) = <$ty>::color(ev) { return Some(c); })+
                None
            }
            /// Live: what every analysis expects next.
            pub fn expect(ev: &PacketEvent, out: &mut Vec<u8>) -> std::io::Result<()> {
                $(<$ty>::expect(ev, out)?;)+
                Ok(())
            }
            /// Some analysis says more than the segment's kind.
            pub fn telling(&self) -> bool {
                false $(|| <$ty>::telling(&self.$name))+
            }
            /// Every analysis's members of the JSON packet record.
            #[inline]
            pub fn json(ev: &PacketEvent, out: &mut Vec<u8>) {
                $(<$ty>::json_packet(ev, out);)+
            }
            /// Every analysis's members of a JSON revise record.
            pub fn json_revise(&self, out: &mut Vec<u8>) {
                $(<$ty>::json_revise(&self.$name, out);)+
            }
            /// What the revised segment is now, in a word.
            pub fn revised(&self) -> Option<String> {
                $(if let Some(w) = <$ty>::revised(&self.$name) { return Some(w); })+
                None
            }
            /// What a kept step holds of these notes.
            pub fn marks(&self) -> Marks {
                Marks { $($name: <$ty>::mark(&self.$name),)+ }
            }
        }

        impl Marks {
            /// A diagram arrow's label, from the first analysis that has one.
            pub fn label(s: &FlowStep) -> Option<String> {
                $(if let Some(l) = <$ty>::label(s) { return Some(l); })+
                None
            }
            /// The diagram's right margin.
            pub fn remark(s: &FlowStep, all: &[FlowStep]) -> Option<String> {
                $(if let Some(r) = <$ty>::remark(s, all) { return Some(r); })+
                None
            }
            /// Nothing arrived.
            pub fn lost(s: &FlowStep, all: &[FlowStep]) -> bool {
                false $(|| <$ty>::lost(s, all))+
            }
            /// The HTML mark's shape, when an analysis has one.
            pub fn shape(s: &FlowStep, all: &[FlowStep]) -> Option<&'static str> {
                $(if let Some(k) = <$ty>::shape(s, all) { return Some(k); })+
                None
            }
        }

        impl Findings {
            /// What every analysis tells the others' words.
            pub fn share(&self) -> Shared {
                let mut shared = Shared::default();
                $(<$ty>::share(&self.$name, &mut shared);)+
                shared
            }
            /// The JSON flow record's members of the analyses among the
            /// core's (`core`), or of the others.
            pub fn json(f: &FlowSummary, core: bool, out: &mut Vec<u8>) {
                $(if <$ty>::CORE == core { <$ty>::json_flow(f, out); })+
            }
            /// The HTML report's members.
            pub fn html(f: &FlowSummary, out: &mut String) {
                $(<$ty>::html(f, out);)+
            }
            /// Which analyses have a table column over `flows` (those among
            /// the core's always).
            pub fn shown_in(flows: &[FlowSummary]) -> [bool; NAMES.len()] {
                [$(<$ty>::CORE || flows.iter().any(|f| <$ty>::shown(f))),+]
            }
            /// The full table's headers of the analyses shown (`core`: among
            /// the core's).
            pub fn columns(
                shown: &[bool; NAMES.len()],
                core: bool,
            ) -> Vec<$crate::analyses::describe::Column> {
                let mut c = Vec::new();
                let mut i = 0;
                $(
                    if shown[i] && <$ty>::CORE == core {
                        c.extend_from_slice(<$ty>::COLUMNS);
                    }
                    i += 1;
                )+
                let _ = i;
                c
            }
            /// The full table's cells of the analyses shown.
            pub fn cells(f: &FlowSummary, shown: &[bool; NAMES.len()], core: bool) -> Vec<String> {
                let mut c = Vec::new();
                let mut i = 0;
                $(
                    if shown[i] && <$ty>::CORE == core {
                        c.extend(<$ty>::cells(f));
                    }
                    i += 1;
                )+
                let _ = i;
                c
            }
            /// The compact table's headers of the analyses shown.
            pub fn compact_columns(shown: &[bool; NAMES.len()], core: bool) -> Vec<&'static str> {
                let mut c = Vec::new();
                let mut i = 0;
                $(
                    if shown[i] && <$ty>::CORE == core && !<$ty>::COMPACT.is_empty() {
                        c.push(<$ty>::COMPACT);
                    }
                    i += 1;
                )+
                let _ = i;
                c
            }
            /// The compact table's cells of the analyses shown.
            pub fn compact_cells(f: &FlowSummary, shown: &[bool; NAMES.len()], core: bool) -> Vec<String> {
                let mut c = Vec::new();
                let mut i = 0;
                $(
                    if shown[i] && <$ty>::CORE == core && !<$ty>::COMPACT.is_empty() {
                        c.push(<$ty>::compact_cell(f));
                    }
                    i += 1;
                )+
                let _ = i;
                c
            }
            /// The Zeek log's fields of the analyses among the core's, or
            /// of the others.
            pub fn zeek_fields(core: bool) -> Vec<(&'static str, &'static str)> {
                let mut c = Vec::new();
                $(if <$ty>::CORE == core { c.extend_from_slice(<$ty>::ZEEK); })+
                c
            }
            /// Their values.
            pub fn zeek(f: &FlowSummary, core: bool, out: &mut Vec<$crate::analyses::describe::Field>) {
                $(if <$ty>::CORE == core { <$ty>::zeek(f, out); })+
            }
            /// `flow N ended: VERDICT: …`: the verdict's owner's words.
            pub fn ended(f: &FlowSummary) -> String {
                let owner = f.verdict.row().owner;
                $(if stringify!($name) == owner { if let Some(w) = <$ty>::ended(f) { return w; } })+
                String::new()
            }
            /// `--explain`: what every analysis saw, then the account of
            /// how the connection fared — its verdict's owner's, else the
            /// first analysis that gives one.
            pub fn explain(f: &FlowSummary, steps: &[FlowStep], context: &mut String, account: &mut String) {
                $(<$ty>::context(f, steps, context);)+
                let owner = f.verdict.row().owner;
                $(if stringify!($name) == owner && <$ty>::account(f, steps, account) { return; })+
                $(if stringify!($name) != owner && <$ty>::account(f, steps, account) { return; })+
            }
            /// What every analysis inferred of the connection's
            /// configuration (`--annotate`, on its last frame).
            pub fn inferred(f: &FlowSummary) -> Vec<String> {
                let mut c = Vec::new();
                $(c.extend(<$ty>::inferred(f));)+
                c
            }
            /// `--sockets`: every analysis's checks against the sockets.
            pub fn checks(f: &FlowSummary) -> Vec<String> {
                let mut c = Vec::new();
                $(c.extend(<$ty>::checks(f));)+
                c
            }
            /// Live, after the table.
            pub fn live_notes(
                flows: &[FlowSummary],
                sysctls: Option<$crate::host::sysctls::Sysctls>,
                now: $crate::core::time::Timestamp,
            ) -> Vec<String> {
                let mut o = Vec::new();
                $(<$ty>::live_notes(flows, sysctls, now, &mut o);)+
                o
            }
            /// `--html`: the notes across the connections shown.
            pub fn overview(
                flows: &[(&FlowSummary, &[FlowStep])],
                sysctls: Option<$crate::host::sysctls::Sysctls>,
            ) -> Vec<String> {
                let mut o = Vec::new();
                $(<$ty>::overview(flows, sysctls, &mut o);)+
                o
            }
            /// `--html`: a band on the connection's lane.
            pub fn band(flows: &[&FlowSummary], f: &FlowSummary) -> Option<(f64, f64)> {
                $(if let Some(b) = <$ty>::band(flows, f) { return Some(b); })+
                None
            }
            /// `--explain`, after the connections.
            pub fn afterword(flows: &[&FlowSummary]) -> Vec<String> {
                let mut o = Vec::new();
                $(<$ty>::afterword(flows, &mut o);)+
                o
            }
            /// `--explain`, last.
            pub fn footnotes(flows: &[&FlowSummary]) -> Vec<String> {
                let mut o = Vec::new();
                $(o.extend(<$ty>::footnote(flows));)+
                o
            }
        }

        impl Evidence {
            /// Gathers from a reported connection.
            pub fn gather(&mut self, f: &FlowSummary) {
                $(<$ty>::gather(&mut self.$name, f);)+
            }
            /// Every analysis's advice after the table.
            pub fn advice(&self) -> String {
                let mut o = String::new();
                $(o.push_str(&<$ty>::advice(&self.$name));)+
                o
            }
        }

        impl Tallies {
            /// Counts a reported connection (its server's part in `server`).
            pub fn tally(&mut self, server: &mut ServerTallies, f: &FlowSummary) {
                $(<$ty>::tally(&mut self.$name, &mut server.$name, f);)+
            }
            /// Every analysis's metric families over the run.
            pub fn render(&self, o: &mut String) {
                $(<$ty>::render(&self.$name, o);)+
            }
            /// Every analysis's metric families per server.
            pub fn render_servers(servers: &[(&str, &ServerTallies)], o: &mut String) {
                $(
                    let mine: Vec<(&str, &<$ty as $crate::analyses::describe::Describe>::ServerTally)> =
                        servers.iter().map(|(s, t)| (*s, &t.$name)).collect();
                    <$ty>::render_servers(&mine, o);
                )+
            }
        }
    };
}
pub(crate) use analyses;
