//! `cargo xtask corpus [--check]`: the one generator of every fuzz seed
//! corpus: the wire crates' parsers, the nodes and the invitations. It
//! reads the golden vectors (and adds constructed inputs the recordings
//! lack, from the crates' `fuzzing` seed functions), picks seeds by fixed
//! rules, and
//! writes `fuzz/corpus/<target>/` for every target: the same files on every
//! run. `--check` writes nothing and fails if the checked-in corpus differs
//! from what would be written (CI runs it). Both fail when a fuzz target
//! gets no seeds or `fuzz/corpus/` holds a folder the generator does not write.

mod ipcz;
mod legacy;
mod nodes;

use std::collections::BTreeMap;
use std::path::Path;

/// The seeds of every target: target name (`legacy_deframer`) to file
/// name to contents.
#[derive(Default)]
pub(crate) struct Seeds {
    targets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl Seeds {
    /// The files of one target, created empty on first use.
    fn target(&mut self, name: &str) -> &mut BTreeMap<String, Vec<u8>> {
        self.targets.entry(name.to_string()).or_default()
    }

    /// Total bytes of the targets whose names start with `prefix`.
    fn total_bytes(&self, prefix: &str) -> usize {
        self.targets
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .flat_map(|(_, files)| files.values())
            .map(Vec::len)
            .sum()
    }
}

/// Every seed of every target.
fn generate() -> Result<Seeds, String> {
    let mut seeds = Seeds::default();
    legacy::add_seeds(&mut seeds);
    ipcz::add_seeds(&mut seeds);
    nodes::add_seeds(&mut seeds)?;
    // Keep the checked-in corpus small.
    for (prefix, limit) in [("legacy_", 300 * 1024), ("ipcz_", 300 * 1024)] {
        let total = seeds.total_bytes(prefix);
        if total >= limit {
            return Err(format!("{prefix}* corpus is {total} bytes, over {limit}"));
        }
    }
    Ok(seeds)
}

/// The files of one corpus folder as they are on disk.
fn read_folder(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((name, std::fs::read(e.path()).ok()?))
        })
        .collect()
}

/// Writes (or with `check`, compares) `<root>/fuzz/corpus/<target>/`.
pub(crate) fn run(root: &Path, check: bool) -> Result<(), String> {
    let seeds = generate()?;
    let corpus = root.join("fuzz/corpus");
    // Every target gets seeds from here, and every folder comes from here.
    let unseeded: Vec<String> = crate::fuzz::targets()?
        .into_iter()
        .filter(|t| seeds.targets.get(t).is_none_or(BTreeMap::is_empty))
        .collect();
    if !unseeded.is_empty() {
        return Err(format!(
            "fuzz targets without seeds from the generator: {} (add them to xtask/src/corpus/)",
            unseeded.join(", ")
        ));
    }
    let strays: Vec<String> = std::fs::read_dir(&corpus)
        .map_err(|e| format!("{}: {e}", corpus.display()))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !seeds.targets.contains_key(name))
        .collect();
    if !strays.is_empty() {
        return Err(format!(
            "fuzz/corpus folders the generator does not write: {} (remove them)",
            strays.join(", ")
        ));
    }
    let mut stale = Vec::new();
    for (target, files) in &seeds.targets {
        let dir = corpus.join(target);
        if check {
            if read_folder(&dir) != *files {
                stale.push(target.clone());
            }
            continue;
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        eprintln!("{target}: {} files", files.len());
    }
    if !stale.is_empty() {
        return Err(format!(
            "fuzz/corpus differs from the generator for {}: run `cargo xtask corpus`",
            stale.join(", ")
        ));
    }
    if check {
        eprintln!("fuzz/corpus: {} targets up to date", seeds.targets.len());
    }
    Ok(())
}
