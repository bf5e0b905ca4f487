//! ipcz connectors (spec `ipcz.md` §4).
