//! Which frames the view shows (`--channel`, `--dir`, `--type`, `--name`),
//! and the message type of a frame as the filter and `--summary` name it.

use mojo_transcript::{Direction, StreamKey};

use crate::names::{Aliases, parse_full};

/// The filter of one run; an empty list lets everything through.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    /// Channels to show.
    pub channels: Vec<u32>,
    /// Direction to show.
    pub direction: Option<Direction>,
    /// Message types to show (case-insensitive).
    pub types: Vec<String>,
    /// Names to show: aliases (`N1`, `p3`, `B1`) or full spellings.
    pub names: Vec<String>,
}

impl Filter {
    /// Whether a frame of stream `key`, of type `kind`, whose description
    /// rendered with aliases is `text`, is shown. Aliases of full names are
    /// looked up in `aliases`, which already holds the frame's own.
    pub(crate) fn shows(&self, key: StreamKey, kind: &str, text: &str, aliases: &Aliases) -> bool {
        if !self.channels.is_empty() && !self.channels.contains(&key.channel) {
            return false;
        }
        if self.direction.is_some_and(|d| d != key.direction) {
            return false;
        }
        if !self.types.is_empty() && !self.types.iter().any(|t| t.eq_ignore_ascii_case(kind)) {
            return false;
        }
        if self.names.is_empty() {
            return true;
        }
        let words: Vec<&str> = text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        self.names.iter().any(|name| {
            let wanted = if is_alias(name) {
                vec![name.clone()]
            } else {
                parse_full(name).map_or_else(Vec::new, |(h, l)| aliases.aliases_of(h, l))
            };
            wanted.iter().any(|w| words.contains(&w.as_str()))
        })
    }
}

/// `N1`, `p3`, `B2`, `T1`.
fn is_alias(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('N' | 'p' | 'B' | 'T'))
        && !chars.as_str().is_empty()
        && chars.all(|c| c.is_ascii_digit())
}

/// The message type of a view description: the ports event type for
/// legacy events, else the NodeChannel, broker, control or ipcz message.
pub(crate) fn message_type(text: &str) -> &str {
    let rest = [
        "NodeChannel EVENT_MESSAGE | ",
        "NodeChannel BROADCAST_EVENT | ",
    ]
    .iter()
    .find_map(|p| text.strip_prefix(p))
    .or_else(|| {
        ["NodeChannel ", "Broker ", "Control "]
            .iter()
            .find_map(|p| text.strip_prefix(p))
    })
    .unwrap_or(text);
    rest.split_whitespace().next().unwrap_or("?")
}

/// Whether a message type belongs to connection setup (the `--summary`
/// handshake timeline).
pub(crate) fn is_handshake(kind: &str) -> bool {
    const LEGACY: &[&str] = &[
        "INIT",
        "ACCEPT_INVITEE",
        "ACCEPT_INVITATION",
        "ADD_BROKER_CLIENT",
        "BROKER_CLIENT_ADDED",
        "ACCEPT_BROKER_CLIENT",
        "BIND_BROKER_HOST",
        "REQUEST_PORT_MERGE",
        "REQUEST_INTRODUCTION",
        "INTRODUCE",
        "ACCEPT_PEER",
        "UPGRADE_OFFER",
        "MergePort",
    ];
    const IPCZ_PREFIXES: &[&str] = &[
        "Connect",
        "ReferNonBroker",
        "NonBrokerReferral",
        "RequestIntroduction",
        "AcceptIntroduction",
        "RejectIntroduction",
        "RequestIndirectIntroduction",
    ];
    LEGACY.contains(&kind) || IPCZ_PREFIXES.iter().any(|p| kind.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{Kind, Spelling, mark, render};

    #[test]
    fn message_types_are_the_innermost_message() {
        for (text, kind) in [
            (
                "NodeChannel EVENT_MESSAGE | UserMessage port=p1",
                "UserMessage",
            ),
            ("NodeChannel ACCEPT_INVITEE inviter=N1", "ACCEPT_INVITEE"),
            ("Broker INIT", "INIT"),
            ("Control UPGRADE_OFFER version=1", "UPGRADE_OFFER"),
            ("AcceptParcel v0 sublink=1", "AcceptParcel"),
            ("", "?"),
        ] {
            assert_eq!(message_type(text), kind, "{text}");
        }
        assert!(is_handshake("ConnectFromBrokerToNonBroker"));
        assert!(is_handshake("ACCEPT_INVITEE"));
        assert!(!is_handshake("UserMessage"));
    }

    #[test]
    fn the_filter_matches_channel_direction_type_and_names() {
        let mut aliases = Aliases::default();
        let text = format!(
            "NodeChannel EVENT_MESSAGE | ObserveProxy port={} proxy={}:{}",
            mark(Kind::Port, Spelling::Legacy, 1, 1),
            mark(Kind::Node, Spelling::Legacy, 0xAB, 0xCD),
            mark(Kind::Port, Spelling::Legacy, 2, 2),
        );
        let text = render(&text, Some(&mut aliases)).text;
        let kind = message_type(&text);
        let key = StreamKey {
            channel: 1,
            direction: Direction::AToB,
        };
        let shows = |f: &Filter| f.shows(key, kind, &text, &aliases);
        assert!(shows(&Filter::default()));
        let only = |f: Filter| shows(&f);
        assert!(only(Filter {
            channels: vec![1],
            ..Filter::default()
        }));
        assert!(!only(Filter {
            channels: vec![0],
            ..Filter::default()
        }));
        assert!(!only(Filter {
            direction: Some(Direction::BToA),
            ..Filter::default()
        }));
        assert!(only(Filter {
            types: vec!["observeproxy".into()],
            ..Filter::default()
        }));
        assert!(!only(Filter {
            types: vec!["UserMessage".into()],
            ..Filter::default()
        }));
        for (name, want) in [
            ("N1", true),
            ("p2", true),
            ("p3", false),
            ("AB.CD", true),
            ("AB.CE", false),
        ] {
            let f = Filter {
                names: vec![name.into()],
                ..Filter::default()
            };
            assert_eq!(only(f), want, "{name}");
        }
    }
}
