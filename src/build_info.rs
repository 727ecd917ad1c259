//! What this binary was built from (recorded by build.rs), for every result it writes.

use std::collections::BTreeMap;

/// The git commit, with "-dirty" when the work tree had uncommitted changes; "unknown"
/// outside a git checkout.
pub fn git_commit() -> &'static str {
    env!("INFERBENCH_GIT_COMMIT")
}

/// Versions of the crates that do the measured work, from Cargo.lock.
pub fn crate_versions() -> BTreeMap<String, String> {
    env!("INFERBENCH_CRATE_VERSIONS")
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, version)| (name.to_string(), version.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_the_measured_crates() {
        let versions = super::crate_versions();
        for name in ["candle-core", "tokenizers", "criterion"] {
            assert!(versions.contains_key(name), "{versions:?}");
        }
        assert!(!super::git_commit().is_empty());
    }
}
