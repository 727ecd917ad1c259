//! The `k8s` config file (TOML): the image, where pods go, and what they run: a load split
//! over an Indexed Job's workers, and/or a GPU matrix of `inferbench run` presets × node
//! pools.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::exit::usage;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sConfig {
    /// The container image; `inferbench` must be on its PATH.
    pub image: String,
    #[serde(default = "default_pull_policy")]
    pub image_pull_policy: String,
    /// The run's id (the namespace is inferbench-ID); default k8s-YYYYMMDDTHHMMSSZ.
    pub run_id: Option<String>,
    /// Time from rendering to the workers' common start: pods must be scheduled and their
    /// image pulled by then (a late worker says by how much).
    #[serde(default = "default_start_delay", with = "humantime_serde_str")]
    pub start_delay: Duration,
    /// Longest the Jobs may run after the start (their activeDeadlineSeconds, and how long
    /// `k8s run` waits).
    #[serde(default = "default_timeout", with = "humantime_serde_str")]
    pub timeout: Duration,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    #[serde(default)]
    pub resources: Resources,
    pub load: Option<LoadJob>,
    pub gpu: Option<GpuMatrix>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    pub key: Option<String>,
    pub operator: Option<String>,
    pub value: Option<String>,
    pub effect: Option<String>,
}

/// `inferbench load` split over `workers` pods.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadJob {
    pub workers: u32,
    /// The whole load as `inferbench load` flags (each worker sends its share).
    pub args: Vec<String>,
    /// The API key from a Secret, as OPENAI_API_KEY in every pod; never in the manifests.
    pub api_key_secret: Option<SecretRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// One `inferbench run` Job per preset × node pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuMatrix {
    pub presets: Vec<String>,
    /// nvidia.com/gpu each pod requests.
    #[serde(default = "one")]
    pub gpus: u32,
    pub pools: Vec<NodePool>,
    /// More `inferbench run` flags for every Job.
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePool {
    pub name: String,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
}

fn default_pull_policy() -> String {
    "IfNotPresent".into()
}
fn default_start_delay() -> Duration {
    Duration::from_secs(60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}
fn one() -> u32 {
    1
}

/// Durations written as "90s", "30m".
mod humantime_serde_str {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e} (write e.g. 90s or 30m)")))
    }
}

/// Flags the Jobs set themselves; a config that gives them is refused.
const RESERVED_LOAD_FLAGS: &[&str] = &[
    "--plan",
    "--worker-index",
    "--workers",
    "--output",
    "-o",
    "--run-id",
    "--result-markers",
    "--dashboard",
    "--report",
    "--baseline",
];

impl K8sConfig {
    pub fn read(path: &Path) -> Result<K8sConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--config {}: cannot read it: {e}", path.display())))?;
        let config: K8sConfig = toml::from_str(&text)
            .map_err(|e| usage(format!("--config {}: {e}", path.display())))?;
        config
            .check()
            .map_err(|e| usage(format!("--config {}: {e:#}", path.display())))?;
        Ok(config)
    }

    /// What no cluster would accept, or no worker could run, named by its field.
    pub fn check(&self) -> Result<()> {
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            bail!(
                "image {:?}: give an image reference such as ghcr.io/you/inferbench:0.1",
                self.image
            );
        }
        if !["Always", "IfNotPresent", "Never"].contains(&self.image_pull_policy.as_str()) {
            bail!(
                "image_pull_policy {:?}: Always, IfNotPresent or Never",
                self.image_pull_policy
            );
        }
        if let Some(id) = &self.run_id {
            namespace_for(id).context("run_id")?;
        }
        if self.timeout.is_zero() {
            bail!("timeout: give a time above 0, e.g. 30m");
        }
        if self.load.is_none() && self.gpu.is_none() {
            bail!("nothing to run: give a [load] table, a [gpu] table, or both");
        }
        if let Some(load) = &self.load {
            let most = crate::http::plan::MAX_WORKERS;
            if load.workers == 0 || load.workers > most {
                bail!("load.workers {}: from 1 to {most}", load.workers);
            }
            for arg in &load.args {
                let name = arg.split('=').next().unwrap_or(arg);
                if name == "--api-key" {
                    bail!("load.args: no --api-key in a config (it would be written into the manifests); put the key in a Secret and name it in load.api_key_secret");
                }
                if RESERVED_LOAD_FLAGS.contains(&name) {
                    bail!("load.args: {name} is set by the Job itself; leave it out");
                }
            }
        }
        if let Some(gpu) = &self.gpu {
            if gpu.presets.is_empty() || gpu.pools.is_empty() {
                bail!("gpu: give at least one preset and one pool");
            }
            for preset in &gpu.presets {
                crate::results::check_plain_name("gpu.presets:", preset)?;
            }
            for pool in &gpu.pools {
                job_name(&format!("run-x-{}", pool.name))
                    .with_context(|| format!("gpu.pools name {:?}", pool.name))?;
            }
        }
        Ok(())
    }
}

/// The run's namespace: `inferbench-ID`, lower-cased, a valid DNS label.
pub fn namespace_for(run_id: &str) -> Result<String> {
    let name = format!("inferbench-{}", dns_label(run_id));
    check_dns_label(&name)?;
    Ok(name)
}

/// A Job's name from its parts, a valid DNS label.
pub fn job_name(name: &str) -> Result<String> {
    let label = dns_label(name);
    check_dns_label(&label)?;
    Ok(label)
}

/// Lower case, with every character Kubernetes names refuse made a '-'.
fn dns_label(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn check_dns_label(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 || name.starts_with('-') || name.ends_with('-') {
        bail!("{name:?} is not a Kubernetes name (1 to 63 letters, digits and '-', not starting or ending with '-')");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<K8sConfig> {
        let c: K8sConfig = toml::from_str(text)?;
        c.check()?;
        Ok(c)
    }

    const OK: &str = r#"
image = "ghcr.io/x/inferbench:0.1"
[load]
workers = 3
args = ["--url", "http://vllm:8000", "-c", "48"]
"#;

    #[test]
    fn a_config_reads_with_its_defaults() {
        let c = parse(OK).unwrap();
        assert_eq!(c.load.unwrap().workers, 3);
        assert_eq!(c.start_delay, Duration::from_secs(60));
        assert_eq!(c.image_pull_policy, "IfNotPresent");
    }

    #[test]
    fn bad_configs_name_their_field() {
        for (edit, says) in [
            (OK.replace("workers = 3", "workers = 0"), "load.workers 0"),
            (
                OK.replace("\"-c\"", "\"--api-key\", \"sk\", \"-c\""),
                "Secret",
            ),
            (
                OK.replace("\"-c\"", "\"--run-id\", \"r\", \"-c\""),
                "--run-id is set by the Job",
            ),
            (OK.replace("ghcr.io/x/inferbench:0.1", "a b"), "image"),
            (format!("run_id = \"{}\"\n{OK}", "x".repeat(80)), "run_id"),
            (OK.replace("[load]", "[lode]"), "lode"),
            ("image = \"i\"\n".to_string(), "nothing to run"),
            (format!("timeout = \"soon\"\n{OK}"), "soon"),
        ] {
            let e = format!("{:#}", parse(&edit).unwrap_err());
            assert!(e.contains(says), "{edit}\n=> {e}");
        }
    }

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(
            namespace_for("K8s-20261130T221500Z").unwrap(),
            "inferbench-k8s-20261130t221500z"
        );
        assert!(namespace_for("_x").is_ok());
        assert!(job_name("-x").is_err());
    }
}
