//! 128-bit names in descriptions: decoders write them as markers, and the
//! printer renders each marker either in its protocol's own spelling (legacy
//! `V1.V2`, ipcz 32 lower-case hex digits) or as a short alias (`N1`, `p3`,
//! `B2`, `T1`) from one [`Aliases`] table per run, so that the same value
//! gets the same alias in every file and in both protocols.

use std::collections::HashMap;
use std::fmt::Write as _;

use mojo_wire_kit::Guid;

/// Starts a marker: kind, spelling, 32 hex digits, then [`END`].
const START: char = '\u{1}';
/// Ends a marker.
const END: char = '\u{2}';
/// Hex digits of a marker's value.
const HEX_DIGITS: usize = 32;

/// What a 128-bit value names; decides the alias prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// A node (`N`).
    Node,
    /// A legacy port (`p`).
    Port,
    /// A shared memory region's GUID (`B`).
    Buffer,
    /// An invitation or peer token (`T`).
    Token,
}

impl Kind {
    fn code(self) -> char {
        match self {
            Self::Node => 'N',
            Self::Port => 'p',
            Self::Buffer => 'B',
            Self::Token => 'T',
        }
    }

    fn from_code(c: char) -> Option<Self> {
        Some(match c {
            'N' => Self::Node,
            'p' => Self::Port,
            'B' => Self::Buffer,
            'T' => Self::Token,
            _ => return None,
        })
    }
}

/// How a value is spelled in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spelling {
    /// Chromium's legacy log form: upper-case hex of `high`, `.` and the
    /// hex of `low` if it is not zero.
    Legacy,
    /// ipcz's form: 32 lower-case hex digits, `high` first.
    Ipcz,
    /// [`Guid`]'s own display.
    Guid,
}

impl Spelling {
    fn code(self) -> char {
        match self {
            Self::Legacy => 'L',
            Self::Ipcz => 'I',
            Self::Guid => 'G',
        }
    }

    fn from_code(c: char) -> Option<Self> {
        Some(match c {
            'L' => Self::Legacy,
            'I' => Self::Ipcz,
            'G' => Self::Guid,
            _ => return None,
        })
    }

    fn spell(self, high: u64, low: u64) -> String {
        match self {
            Self::Legacy if low == 0 => format!("{high:X}"),
            Self::Legacy => format!("{high:X}.{low:X}"),
            Self::Ipcz if high == 0 && low == 0 => "none".into(),
            Self::Ipcz => format!("{high:016x}{low:016x}"),
            Self::Guid => Guid::new(high, low).to_string(),
        }
    }
}

/// A marker for one value, to be placed in a description.
pub(crate) fn mark(kind: Kind, spelling: Spelling, high: u64, low: u64) -> String {
    format!(
        "{START}{}{}{high:016x}{low:016x}{END}",
        kind.code(),
        spelling.code()
    )
}

/// Replaces every 32-hex-digit run that stands alone in `text` (ipcz's
/// spelling of a node name) with a node marker.
pub(crate) fn mark_ipcz_nodes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let is_name = word.len() == HEX_DIGITS
            && word
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match value(word) {
            Some((high, low)) if is_name => {
                out.push_str(&mark(Kind::Node, Spelling::Ipcz, high, low));
            }
            _ => out.push_str(word),
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn value(hex: &str) -> Option<(u64, u64)> {
    let high = u64::from_str_radix(hex.get(..16)?, 16).ok()?;
    let low = u64::from_str_radix(hex.get(16..32)?, 16).ok()?;
    Some((high, low))
}

/// The run's alias table: first come, first numbered, per kind.
#[derive(Debug, Default)]
pub(crate) struct Aliases {
    table: HashMap<(Kind, u64, u64), usize>,
    counts: HashMap<Kind, usize>,
}

impl Aliases {
    /// The alias of a value, and whether it was new.
    pub(crate) fn alias(&mut self, kind: Kind, high: u64, low: u64) -> (String, bool) {
        if high == 0 && low == 0 {
            return ("none".into(), false);
        }
        let mut new = false;
        let number = *self.table.entry((kind, high, low)).or_insert_with(|| {
            new = true;
            let count = self.counts.entry(kind).or_default();
            *count += 1;
            *count
        });
        (format!("{}{number}", kind.code()), new)
    }
}

impl Aliases {
    /// The aliases already given to a value, of any kind.
    pub(crate) fn aliases_of(&self, high: u64, low: u64) -> Vec<String> {
        let mut found: Vec<String> = self
            .table
            .iter()
            .filter(|((_, h, l), _)| (*h, *l) == (high, low))
            .map(|((kind, _, _), number)| format!("{}{number}", kind.code()))
            .collect();
        found.sort();
        found
    }
}

/// A full name as a user types it: the legacy `V1.V2` (or `V1`) form, or
/// 32 hex digits (ipcz names, GUIDs), either case.
pub(crate) fn parse_full(text: &str) -> Option<(u64, u64)> {
    let hex = |t: &str| {
        (!t.is_empty() && t.len() <= 16)
            .then(|| u64::from_str_radix(t, 16).ok())
            .flatten()
    };
    if let Some((high, low)) = text.split_once('.') {
        return Some((hex(high)?, hex(low)?));
    }
    if text.len() == HEX_DIGITS {
        return value(&text.to_ascii_lowercase());
    }
    Some((hex(text)?, 0))
}

/// A description rendered for printing.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// The text.
    pub text: String,
    /// Aliases first used here, each with its full spelling.
    pub introduced: Vec<(String, String)>,
}

/// Renders `text`'s markers in full (`aliases` `None`) or as aliases.
pub(crate) fn render(text: &str, mut aliases: Option<&mut Aliases>) -> Rendered {
    let mut rendered = Rendered::default();
    let mut rest = text;
    while let Some(start) = rest.find(START) {
        rendered.text.push_str(&rest[..start]);
        let after = &rest[start + START.len_utf8()..];
        let Some(end) = after.find(END) else {
            rendered.text.push_str(&rest[start..]);
            return rendered;
        };
        let body = &after[..end];
        let mut chars = body.chars();
        let parsed = match (
            chars.next().and_then(Kind::from_code),
            chars.next().and_then(Spelling::from_code),
            value(chars.as_str()),
        ) {
            (Some(kind), Some(spelling), Some((high, low))) => Some((kind, spelling, high, low)),
            _ => None,
        };
        match (parsed, aliases.as_deref_mut()) {
            (Some((kind, spelling, high, low)), Some(table)) => {
                let (alias, new) = table.alias(kind, high, low);
                if new {
                    rendered
                        .introduced
                        .push((alias.clone(), spelling.spell(high, low)));
                }
                rendered.text.push_str(&alias);
            }
            (Some((_, spelling, high, low)), None) => {
                rendered.text.push_str(&spelling.spell(high, low));
            }
            (None, _) => rendered.text.push_str(body),
        }
        rest = &after[end + END.len_utf8()..];
    }
    rendered.text.push_str(rest);
    rendered
}

/// The introduced aliases as one detail line, `N1=… p1=…`.
pub(crate) fn legend(introduced: &[(String, String)]) -> String {
    let mut s = String::new();
    for (alias, full) in introduced {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "{alias}={full}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_rendering_is_each_protocols_spelling() {
        let text = format!(
            "a={} b={}:{} c={}",
            mark(Kind::Node, Spelling::Legacy, 0xD72C, 0x3387),
            mark(Kind::Node, Spelling::Legacy, 0xAB, 0),
            mark(Kind::Port, Spelling::Legacy, 1, 2),
            mark(Kind::Node, Spelling::Ipcz, 0xd72c, 0x3387),
        );
        assert_eq!(
            render(&text, None).text,
            "a=D72C.3387 b=AB:1.2 c=000000000000d72c0000000000003387"
        );
    }

    #[test]
    fn the_same_value_gets_the_same_alias_in_both_spellings() {
        let mut aliases = Aliases::default();
        let legacy = format!(
            "{}:{} {}",
            mark(Kind::Node, Spelling::Legacy, 5, 6),
            mark(Kind::Port, Spelling::Legacy, 7, 8),
            mark(Kind::Node, Spelling::Legacy, 9, 9),
        );
        let r = render(&legacy, Some(&mut aliases));
        assert_eq!(r.text, "N1:p1 N2");
        assert_eq!(r.introduced.len(), 3);
        assert_eq!(legend(&r.introduced[..1]), "N1=5.6");
        // ipcz spells node 5.6 in hex: same alias, nothing new.
        let ipcz = mark_ipcz_nodes("broker_name=00000000000000050000000000000006 x");
        let r = render(&ipcz, Some(&mut aliases));
        assert_eq!(r.text, "broker_name=N1 x");
        assert!(r.introduced.is_empty());
        // Kinds are numbered separately; a port that equals a node's value
        // is still a port.
        let r = render(
            &mark(Kind::Port, Spelling::Legacy, 5, 6),
            Some(&mut aliases),
        );
        assert_eq!(r.text, "p2");
        let r = render(
            &mark(Kind::Buffer, Spelling::Guid, 1, 1),
            Some(&mut aliases),
        );
        assert_eq!(r.text, "B1");
        assert_eq!(
            render(
                &mark(Kind::Node, Spelling::Legacy, 0, 0),
                Some(&mut aliases)
            )
            .text,
            "none"
        );
    }

    #[test]
    fn only_whole_32_digit_runs_are_ipcz_names() {
        let name = "0123456789abcdef0123456789abcdef";
        for text in [
            format!("x{name}"),
            format!("{name}0"),
            format!("{name}g"),
            "0123456789abcdef".to_string(),
            "0123456789ABCDEF0123456789ABCDEF".to_string(),
        ] {
            assert_eq!(mark_ipcz_nodes(&text), text);
        }
        let marked = mark_ipcz_nodes(&format!("n={name}, m=[{name}]"));
        assert_eq!(render(&marked, None).text, format!("n={name}, m=[{name}]"));
        let mut aliases = Aliases::default();
        assert_eq!(render(&marked, Some(&mut aliases)).text, "n=N1, m=[N1]");
    }

    #[test]
    fn full_names_parse_in_every_spelling_and_find_their_aliases() {
        assert_eq!(parse_full("D72C.3387"), Some((0xD72C, 0x3387)));
        assert_eq!(parse_full("ab"), Some((0xAB, 0)));
        assert_eq!(
            parse_full("000000000000D72C0000000000003387"),
            Some((0xD72C, 0x3387))
        );
        assert_eq!(parse_full("N1"), None);
        assert_eq!(parse_full("1.2.3"), None);
        let mut aliases = Aliases::default();
        render(
            &mark(Kind::Node, Spelling::Ipcz, 0xD72C, 0x3387),
            Some(&mut aliases),
        );
        render(
            &mark(Kind::Buffer, Spelling::Guid, 0xD72C, 0x3387),
            Some(&mut aliases),
        );
        assert_eq!(aliases.aliases_of(0xD72C, 0x3387), ["B1", "N1"]);
        assert!(aliases.aliases_of(1, 1).is_empty());
    }

    #[test]
    fn a_broken_marker_is_printed_as_it_is() {
        let text = format!("{START}Zq{END} {START}N");
        let r = render(&text, None);
        assert_eq!(r.text, format!("Zq {START}N"));
    }
}
