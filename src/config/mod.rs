//! Run configuration: presets (fixtures/presets/*.toml, built into the binary) and the user's
//! own files, with `extends = "other"` inheritance. A child's tables merge into its parent's
//! key by key; any other value (arrays included) replaces the parent's.

pub mod presets;
pub mod regress;
mod schema;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

pub use crate::targets::TargetRule;
pub use regress::RegressSection;
pub use schema::{Config, ModelSection, ScenarioSection, TargetsSection, TelemetrySection};

/// A configuration after `extends:` resolution, with the files it came from.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    pub config: Config,
    /// A short name for run ids and reports: the preset's name, or the file's stem.
    pub name: String,
    /// Every file of the chain, the one asked for first: "preset quick", "path/to/my.toml".
    pub sources: Vec<String>,
}

impl ResolvedConfig {
    /// Where a value came from, for error messages: "preset cpu_only (extends quick)".
    pub fn origin(&self) -> String {
        match self.sources.split_first() {
            Some((first, [])) => first.clone(),
            Some((first, rest)) => format!("{first} (extends {})", rest.join(" -> ")),
            None => self.name.clone(),
        }
    }
}

/// One config file in an `extends` chain.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Preset(&'static str),
    File(PathBuf),
}

impl Source {
    fn label(&self) -> String {
        match self {
            Source::Preset(name) => format!("preset {name}"),
            Source::File(path) => path.display().to_string(),
        }
    }

    /// The same config however its path was written (`sub/../self.toml`, a symlink): what
    /// a cycle is detected on.
    fn identity(&self) -> Source {
        match self {
            Source::File(path) => {
                Source::File(path.canonicalize().unwrap_or_else(|_| path.clone()))
            }
            preset => preset.clone(),
        }
    }

    fn text(&self) -> Result<String> {
        match self {
            Source::Preset(name) => Ok(presets::text(name)
                .ok_or_else(|| anyhow!("no preset named {name}"))?
                .to_string()),
            Source::File(path) => std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the config file", path.display())),
        }
    }

    /// What `extends = "NAME"` in this file points at: a preset name, or a path relative to
    /// this file's folder (user files only; presets extend presets).
    fn resolve_extends(&self, target: &str) -> Result<Source> {
        if let Some(name) = presets::name(target) {
            return Ok(Source::Preset(name));
        }
        match self {
            Source::Preset(_) => bail!(
                "{}: extends = {target:?}: no such preset (presets: {})",
                self.label(),
                presets::names().join(", ")
            ),
            Source::File(path) => {
                let base = path.parent().unwrap_or(Path::new("."));
                let candidate = base.join(target);
                if !candidate.is_file() {
                    bail!(
                        "{}: extends = {target:?}: neither a preset ({}) nor a file ({} does not exist)",
                        self.label(),
                        presets::names().join(", "),
                        candidate.display()
                    );
                }
                Ok(Source::File(candidate))
            }
        }
    }
}

/// Load a built-in preset by name.
pub fn load_preset(name: &str) -> Result<ResolvedConfig> {
    let preset = presets::name(name).ok_or_else(|| {
        crate::exit::usage(format!(
            "--preset {name}: no such preset; the presets are: {}",
            presets::names().join(", ")
        ))
    })?;
    resolve(Source::Preset(preset), preset.to_string())
}

/// Load the user's config file (which may extend a preset or another file).
pub fn load_file(path: &Path) -> Result<ResolvedConfig> {
    if !path.is_file() {
        return Err(crate::exit::usage(format!(
            "--config {}: no such file",
            path.display()
        )));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    resolve(Source::File(path.to_path_buf()), name)
}

fn resolve(start: Source, name: String) -> Result<ResolvedConfig> {
    let mut chain: Vec<Source> = Vec::new();
    let mut seen: Vec<Source> = Vec::new();
    let mut tables: Vec<toml::Table> = Vec::new();
    let mut next = Some(start);
    while let Some(source) = next.take() {
        if seen.contains(&source.identity()) {
            let cycle: Vec<String> = chain
                .iter()
                .chain(std::iter::once(&source))
                .map(Source::label)
                .collect();
            bail!("extends cycle: {}", cycle.join(" -> "));
        }
        let mut table = parse_one(&source)?;
        if let Some(parent) = table.remove("extends") {
            let parent = parent.as_str().ok_or_else(|| {
                anyhow!(
                    "{}: extends: expected the name of a preset or a file",
                    source.label()
                )
            })?;
            next = Some(source.resolve_extends(parent)?);
        }
        seen.push(source.identity());
        chain.push(source);
        tables.push(table);
    }
    // Fold from the root of the chain down, so each child overrides its parent.
    let mut merged = toml::Table::new();
    for table in tables.into_iter().rev() {
        merge(&mut merged, table);
    }
    let sources: Vec<String> = chain.iter().map(Source::label).collect();
    let origin = sources.join(" extending ");
    let config: Config = toml::Value::Table(merged)
        .try_into()
        .with_context(|| format!("{origin}: after applying extends"))?;
    let resolved = ResolvedConfig {
        config,
        name,
        sources,
    };
    resolved
        .config
        .validate()
        .with_context(|| resolved.origin())?;
    Ok(resolved)
}

/// Parse one file on its own, so an unknown field or a wrong type is reported with the file,
/// line and column where it is.
fn parse_one(source: &Source) -> Result<toml::Table> {
    let text = source.text()?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow!("{}: {}", source.label(), e.to_string().trim()))?;
    let _: Config = toml::from_str(&text)
        .map_err(|e| anyhow!("{}: {}", source.label(), e.to_string().trim()))?;
    Ok(table)
}

/// Deep-merge `child` into `base`: tables merge recursively, everything else replaces.
fn merge(base: &mut toml::Table, child: toml::Table) {
    for (key, value) in child {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(c)) => merge(b, c),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn every_preset_resolves_and_validates() {
        for name in presets::names() {
            let c = load_preset(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!c.config.scenarios.batch_sizes.is_empty(), "{name}");
        }
    }

    #[test]
    fn extends_merges_tables_and_replaces_arrays() {
        // cpu_only extends quick: keeps quick's batches and prompts, replaces output_tokens,
        // adds a device and target rules.
        let quick = load_preset("quick").unwrap().config;
        let cpu = load_preset("cpu_only").unwrap();
        assert_eq!(cpu.sources, ["preset cpu_only", "preset quick"]);
        assert_eq!(
            cpu.config.scenarios.batch_sizes,
            quick.scenarios.batch_sizes
        );
        assert_eq!(
            cpu.config.scenarios.prompt_tokens,
            quick.scenarios.prompt_tokens
        );
        assert_eq!(cpu.config.scenarios.output_tokens, vec![128]);
        assert_eq!(cpu.config.model.device, "cpu");
        assert_eq!(cpu.config.targets.rules.len(), 2);
    }

    #[test]
    fn user_file_extends_a_preset_and_a_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "base.toml",
            "extends = \"quick\"\n[scenarios]\nmeasured_runs = 7\nwarmup_runs = 0\n",
        );
        let top = write(
            dir.path(),
            "top.toml",
            "extends = \"base.toml\"\n[scenarios]\nbatch_sizes = [2]\n",
        );
        let c = load_file(&top).unwrap();
        assert_eq!(c.name, "top");
        assert_eq!(c.sources.len(), 3);
        assert_eq!(c.config.scenarios.batch_sizes, vec![2]);
        assert_eq!(c.config.scenarios.measured_runs, 7);
        assert_eq!(c.config.scenarios.warmup_runs, 0);
        assert_eq!(c.config.scenarios.prompt_tokens, vec![32, 128]);
    }

    #[test]
    fn bad_configs_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.toml", "extends = \"b.toml\"\n");
        write(dir.path(), "b.toml", "extends = \"a.toml\"\n");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let own = write(dir.path(), "self.toml", "extends = \"sub/../self.toml\"\n");
        let via = write(dir.path(), "via.toml", "extends = \"sub/../b2.toml\"\n");
        write(dir.path(), "b2.toml", "extends = \"./via.toml\"\n");
        let cases: Vec<(PathBuf, Vec<&str>)> = vec![
            (a, vec!["extends cycle", "a.toml", "b.toml"]),
            (own, vec!["extends cycle", "self.toml"]),
            (via, vec!["extends cycle", "via.toml", "b2.toml"]),
            (
                write(
                    dir.path(),
                    "unknown.toml",
                    "[scenarios]\nbatch_size = [1]\n",
                ),
                vec!["unknown.toml", "batch_size"],
            ),
            (
                write(
                    dir.path(),
                    "zero.toml",
                    "[scenarios]\nbatch_sizes = [1, 0]\n",
                ),
                vec!["zero.toml", "scenarios.batch_sizes", "at least 1"],
            ),
            (
                write(
                    dir.path(),
                    "neg.toml",
                    "[scenarios]\noutput_tokens = [-4]\n",
                ),
                vec!["neg.toml", "output_tokens"],
            ),
            (
                write(dir.path(), "runs.toml", "[scenarios]\nmeasured_runs = 0\n"),
                vec!["runs.toml", "scenarios.measured_runs"],
            ),
            (
                write(dir.path(), "dev.toml", "[model]\ndevice = \"tpu\"\n"),
                vec!["dev.toml", "model.device", "tpu"],
            ),
            (
                write(
                    dir.path(),
                    "metric.toml",
                    "[[targets.rules]]\nmetric = \"speed\"\nmin = 1.0\n",
                ),
                vec!["metric.toml", "targets.rules[0].metric", "speed"],
            ),
            (
                write(
                    dir.path(),
                    "bound.toml",
                    "[[targets.rules]]\nmetric = \"ttft_p50_ms\"\n",
                ),
                vec!["bound.toml", "targets.rules[0]", "min or max"],
            ),
            (
                write(dir.path(), "parent.toml", "extends = \"nowhere\"\n"),
                vec!["parent.toml", "nowhere"],
            ),
            (
                write(
                    dir.path(),
                    "profile.toml",
                    "[targets]\nprofile = \"a100\"\n",
                ),
                vec!["profile.toml", "targets.profile", "a100"],
            ),
            (
                write(dir.path(), "syntax.toml", "[scenarios\n"),
                vec!["syntax.toml"],
            ),
        ];
        for (path, expected) in cases {
            let err = format!("{:#}", load_file(&path).unwrap_err());
            for e in expected {
                assert!(err.contains(e), "{}: {err:?} lacks {e:?}", path.display());
            }
        }
        let err = format!("{:#}", load_preset("nope").unwrap_err());
        assert!(err.contains("nope") && err.contains("quick"), "{err}");
    }
}
