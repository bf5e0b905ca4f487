//! Legacy Mojo Core connectors (spec `legacy-core.md` §2–§3).
