//! The manifests of one run: its namespace, the plan as a ConfigMap, an Indexed Job whose
//! pods each run one worker's share of the load, and one Job per GPU preset × node pool.

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::config::{job_name, namespace_for, K8sConfig, Resources, Toleration};
use super::yaml;
use crate::http::plan::{Plan, PLAN_VERSION};

/// Where the plan is mounted in a load pod.
const PLAN_DIR: &str = "/etc/inferbench";
pub const LOAD_JOB: &str = "load";
const CONFIG_MAP: &str = "inferbench-plan";

/// One manifest file.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub file_name: String,
    pub yaml: String,
}

/// A Job of the run, and what its pods hand back.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub name: String,
    /// Load workers (merged), or one `inferbench run` (kept as is).
    pub kind: JobKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    Load { workers: u32 },
    Run { preset: String, pool: String },
}

/// What `render` makes: the files, and the namespace and Jobs they create.
pub struct Rendered {
    pub namespace: String,
    pub manifests: Vec<Manifest>,
    pub jobs: Vec<JobSpec>,
    pub plan: Option<Plan>,
}

/// Render every manifest of run `run_id`, its workers starting at `start_at_unix_s`.
pub fn render(config: &K8sConfig, run_id: &str, start_at_unix_s: f64) -> Result<Rendered> {
    let namespace = namespace_for(run_id)?;
    let labels = json!({
        "app.kubernetes.io/name": "inferbench",
        "app.kubernetes.io/managed-by": "inferbench",
        "inferbench.dev/run-id": namespace.trim_start_matches("inferbench-"),
    });
    let mut manifests = vec![Manifest {
        file_name: "00-namespace.yaml".into(),
        yaml: yaml::document(&json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": labels},
        })),
    }];
    let mut jobs = Vec::new();
    let deadline = (config.start_delay + config.timeout).as_secs().max(1);
    let mut plan = None;
    if let Some(load) = &config.load {
        let p = Plan {
            plan_version: PLAN_VERSION,
            id: run_id.to_string(),
            workers: load.workers,
            start_at_unix_s,
            load_args: load.args.clone(),
        };
        manifests.push(Manifest {
            file_name: "01-configmap-plan.yaml".into(),
            yaml: yaml::document(&json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": CONFIG_MAP, "namespace": namespace, "labels": labels},
                "data": {"plan.json": p.to_json()},
            })),
        });
        let mut env = Vec::new();
        if let Some(secret) = &load.api_key_secret {
            env.push(json!({
                "name": "OPENAI_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }));
        }
        let mut container = container(
            config,
            [
                "load",
                "--plan",
                &format!("{PLAN_DIR}/plan.json"),
                "--result-markers",
            ],
            &[],
            None,
        );
        container.insert("env".into(), json!(env));
        container.insert(
            "volumeMounts".into(),
            json!([{"name": "plan", "mountPath": PLAN_DIR, "readOnly": true}]),
        );
        let pod = pod_spec(
            Value::Object(container),
            &config.node_selector,
            &config.tolerations,
            Some(json!([{"name": "plan", "configMap": {"name": CONFIG_MAP}}])),
        );
        manifests.push(Manifest {
            file_name: "02-job-load.yaml".into(),
            yaml: yaml::document(&json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": LOAD_JOB, "namespace": namespace, "labels": labels},
                "spec": {
                    "completionMode": "Indexed",
                    "completions": load.workers,
                    "parallelism": load.workers,
                    // A retried worker would send its share twice.
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": deadline,
                    "template": {"metadata": {"labels": labels}, "spec": pod},
                },
            })),
        });
        jobs.push(JobSpec {
            name: LOAD_JOB.into(),
            kind: JobKind::Load {
                workers: load.workers,
            },
        });
        plan = Some(p);
    }
    if let Some(gpu) = &config.gpu {
        for preset in &gpu.presets {
            for pool in &gpu.pools {
                let name = job_name(&format!("run-{preset}-{}", pool.name))?;
                let container = container(
                    config,
                    ["run", "--preset", preset, "--result-markers"],
                    &gpu.args,
                    Some(gpu.gpus),
                );
                let mut selector = config.node_selector.clone();
                selector.extend(pool.node_selector.clone());
                let mut tolerations = config.tolerations.clone();
                tolerations.extend(pool.tolerations.iter().cloned());
                if gpu.gpus > 0 {
                    // GPU nodes are commonly tainted so only GPU pods land there.
                    let gpu_taint = Toleration {
                        key: Some("nvidia.com/gpu".into()),
                        operator: Some("Exists".into()),
                        value: None,
                        effect: Some("NoSchedule".into()),
                    };
                    if !tolerations.contains(&gpu_taint) {
                        tolerations.push(gpu_taint);
                    }
                }
                let pod = pod_spec(Value::Object(container), &selector, &tolerations, None);
                manifests.push(Manifest {
                    file_name: format!("03-job-{name}.yaml"),
                    yaml: yaml::document(&json!({
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "metadata": {"name": name, "namespace": namespace, "labels": labels},
                        "spec": {
                            "backoffLimit": 0,
                            "activeDeadlineSeconds": deadline,
                            "template": {"metadata": {"labels": labels}, "spec": pod},
                        },
                    })),
                });
                jobs.push(JobSpec {
                    name,
                    kind: JobKind::Run {
                        preset: preset.clone(),
                        pool: pool.name.clone(),
                    },
                });
            }
        }
    }
    Ok(Rendered {
        namespace,
        manifests,
        jobs,
        plan,
    })
}

/// The inferbench container: `inferbench ARGS... -o /tmp/results EXTRA...`.
fn container<const N: usize>(
    config: &K8sConfig,
    args: [&str; N],
    extra: &[String],
    gpus: Option<u32>,
) -> Map<String, Value> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["-o".into(), "/tmp/results".into()]);
    all.extend(extra.iter().cloned());
    let mut c = Map::new();
    c.insert("name".into(), json!("inferbench"));
    c.insert("image".into(), json!(config.image));
    c.insert("imagePullPolicy".into(), json!(config.image_pull_policy));
    c.insert("command".into(), json!(["inferbench"]));
    c.insert("args".into(), json!(all));
    c.insert("resources".into(), resources(&config.resources, gpus));
    c
}

fn pod_spec(
    container: Value,
    node_selector: &std::collections::BTreeMap<String, String>,
    tolerations: &[Toleration],
    volumes: Option<Value>,
) -> Value {
    let mut spec = Map::new();
    spec.insert("restartPolicy".into(), json!("Never"));
    spec.insert("containers".into(), json!([container]));
    if let Some(v) = volumes {
        spec.insert("volumes".into(), v);
    }
    if !node_selector.is_empty() {
        spec.insert("nodeSelector".into(), json!(node_selector));
    }
    if !tolerations.is_empty() {
        let list: Vec<Value> = tolerations
            .iter()
            .map(|t| {
                let mut m = Map::new();
                for (k, v) in [
                    ("key", &t.key),
                    ("operator", &t.operator),
                    ("value", &t.value),
                    ("effect", &t.effect),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), json!(v));
                    }
                }
                Value::Object(m)
            })
            .collect();
        spec.insert("tolerations".into(), json!(list));
    }
    Value::Object(spec)
}

/// The container's requests and limits; GPUs go in both (Kubernetes wants them equal).
fn resources(r: &Resources, gpus: Option<u32>) -> Value {
    let mut requests = r.requests.clone();
    let mut limits = r.limits.clone();
    if let Some(n) = gpus.filter(|&n| n > 0) {
        requests.insert("nvidia.com/gpu".into(), n.to_string());
        limits.insert("nvidia.com/gpu".into(), n.to_string());
    }
    let mut m = Map::new();
    if !requests.is_empty() {
        m.insert("requests".into(), json!(requests));
    }
    if !limits.is_empty() {
        m.insert("limits".into(), json!(limits));
    }
    Value::Object(m)
}
