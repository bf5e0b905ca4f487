//! NodeLinkMemory: the shared-memory half of a node link (spec ipcz.md §5).
