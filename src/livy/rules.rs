//! The create policy's rules (`[policy]`) on a create body, before Livy sees it:
//! settings refused or dropped, where files may come from, resource caps and
//! queues.
//!
//! A setting can be written three ways, and each is checked alike: a body field
//! (`executorMemory`, `queue`, `jars`, …), its `spark.*` equivalent in `conf`
//! (`spark.executor.memory`, `spark.yarn.queue`, `spark.jars`, …), or another
//! `spark.*` key Spark reads for the same thing (`spark.yarn.dist.jars`,
//! `spark.dynamicAllocation.maxExecutors`). Conf keys are compared without regard
//! to case and blanks around them. Memory is compared in Spark's units
//! ([`SparkSize`]); a value that cannot be read where a cap applies is refused,
//! as it cannot be shown to keep it.

use serde_json::{Map, Value};

use crate::config::{EffectivePolicy, SparkSize};

/// Body fields and the `spark.*` keys that say the same thing.
const EQUIVALENTS: [(&str, &[&str]); 10] = [
    ("executorMemory", &["spark.executor.memory"]),
    ("driverMemory", &["spark.driver.memory"]),
    ("executorCores", &["spark.executor.cores"]),
    ("driverCores", &["spark.driver.cores"]),
    ("numExecutors", &["spark.executor.instances"]),
    ("queue", &["spark.yarn.queue"]),
    ("jars", &["spark.jars", "spark.yarn.dist.jars"]),
    (
        "pyFiles",
        &["spark.submit.pyFiles", "spark.yarn.dist.pyFiles"],
    ),
    ("files", &["spark.files", "spark.yarn.dist.files"]),
    ("archives", &["spark.archives", "spark.yarn.dist.archives"]),
];

/// Settings that name files (`allowed_url_schemes`): the batch's own `file` and
/// the file lists.
const FILE_SETTINGS: [&str; 5] = ["file", "jars", "pyFiles", "files", "archives"];

/// Settings capped by `max_executors`.
const EXECUTOR_COUNTS: [&str; 4] = [
    "numExecutors",
    "spark.dynamicAllocation.maxExecutors",
    "spark.dynamicAllocation.initialExecutors",
    "spark.dynamicAllocation.minExecutors",
];

/// A cap: its rule, its limit (0: none), the settings it holds and how their
/// values are read.
type Cap = (
    &'static str,
    u64,
    &'static [&'static str],
    fn(&Value) -> Option<u64>,
);

/// Why a body breaks the policy: the rule, and the key (and value) that broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: &'static str,
    /// The key as the body wrote it (`conf.spark.jars`, `executorMemory`).
    pub key: String,
    pub value: Option<String>,
}

/// What the policy changed in a body it let through.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Keys removed (`drop_conf`), as the body wrote them.
    pub dropped: Vec<String>,
    /// The queue put in because the body named none.
    pub queue: Option<String>,
}

/// One setting a body makes.
struct Setting {
    /// As written: `executorMemory`, `conf.spark.executor.memory`.
    written: String,
    /// The names it goes by: the field and its `spark.*` keys, or the conf key.
    names: Vec<String>,
    value: Value,
}

/// Applies `policy` to `body` (a create body, already parsed): refuses it, or
/// changes it (dropped keys, an injected queue, the executor cap for dynamic
/// allocation) and says what changed.
pub fn apply(body: &mut Map<String, Value>, policy: &EffectivePolicy) -> Result<Applied, Refusal> {
    let mut applied = Applied::default();
    // drop_conf first: what is dropped is never refused.
    if !policy.drop_conf.is_empty() {
        for setting in settings(body) {
            if matches_any(&policy.drop_conf, &setting.names) {
                remove(body, &setting.written);
                applied.dropped.push(setting.written);
            }
        }
    }
    let settings = settings(body);
    for setting in &settings {
        if matches_any(&policy.deny_conf, &setting.names) {
            return Err(Refusal {
                rule: "deny_conf",
                key: setting.written.clone(),
                value: None,
            });
        }
    }
    if !policy.allowed_url_schemes.is_empty() {
        for setting in settings.iter().filter(|s| names_any(s, &FILE_SETTINGS)) {
            for url in urls(&setting.value) {
                let scheme = scheme_of(&url);
                if !policy
                    .allowed_url_schemes
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&scheme))
                {
                    return Err(Refusal {
                        rule: "allowed_url_schemes",
                        key: setting.written.clone(),
                        value: Some(url),
                    });
                }
            }
        }
    }
    let caps: [Cap; 4] = [
        (
            "max_executors",
            policy.max_executors.into(),
            &EXECUTOR_COUNTS,
            count,
        ),
        (
            "max_executor_memory",
            policy.max_executor_memory.map_or(0, |s| s.0),
            &["executorMemory"],
            memory,
        ),
        (
            "max_driver_memory",
            policy.max_driver_memory.map_or(0, |s| s.0),
            &["driverMemory"],
            memory,
        ),
        (
            "max_executor_cores",
            policy.max_executor_cores.into(),
            &["executorCores"],
            count,
        ),
    ];
    for (rule, cap, names, read) in caps {
        if cap == 0 {
            continue;
        }
        for setting in settings.iter().filter(|s| names_any(s, names)) {
            if read(&setting.value).is_none_or(|v| v > cap) {
                return Err(Refusal {
                    rule,
                    key: setting.written.clone(),
                    value: Some(text(&setting.value)),
                });
            }
        }
    }
    if policy.max_executors > 0 {
        // Dynamic allocation without a maximum grows without one: the cap is its
        // maximum (Spark ignores it when dynamic allocation is off).
        let key = "spark.dynamicAllocation.maxExecutors";
        if !settings.iter().any(|s| names_any(s, &[key])) {
            conf_mut(body).insert(key.into(), Value::String(policy.max_executors.to_string()));
        }
    }
    if !policy.queues.is_empty() {
        let queues: Vec<&Setting> = settings
            .iter()
            .filter(|s| names_any(s, &["queue"]))
            .collect();
        for setting in &queues {
            let named = text(&setting.value);
            if !policy.queues.iter().any(|q| same_queue(q, &named)) {
                return Err(Refusal {
                    rule: "queues",
                    key: setting.written.clone(),
                    value: Some(named),
                });
            }
        }
        if queues.is_empty() {
            let first = policy.queues[0].clone();
            body.insert("queue".into(), Value::String(first.clone()));
            applied.queue = Some(first);
        }
    }
    Ok(applied)
}

/// The settings `body` makes: its fields (with their `spark.*` names) and its
/// `conf` entries.
fn settings(body: &Map<String, Value>) -> Vec<Setting> {
    let mut settings = Vec::new();
    for (field, value) in body {
        if value.is_null() || field == "conf" {
            continue;
        }
        let mut names = vec![field.clone()];
        if let Some((_, keys)) = EQUIVALENTS.iter().find(|(f, _)| f == field) {
            names.extend(keys.iter().map(|k| k.to_string()));
        }
        settings.push(Setting {
            written: field.clone(),
            names,
            value: value.clone(),
        });
    }
    if let Some(conf) = body.get("conf").and_then(Value::as_object) {
        for (key, value) in conf {
            let trimmed = key.trim();
            // The field a conf key stands for shares its rules.
            let mut names = vec![trimmed.to_owned()];
            if let Some((field, _)) = EQUIVALENTS
                .iter()
                .find(|(_, keys)| keys.iter().any(|k| k.eq_ignore_ascii_case(trimmed)))
            {
                names.push(field.to_string());
            }
            settings.push(Setting {
                written: format!("conf.{key}"),
                names,
                value: value.clone(),
            });
        }
    }
    settings
}

/// Whether any of `names` (a setting's) matches a `patterns` entry: a key, or a
/// `prefix.*`; without regard to case.
fn matches_any(patterns: &[String], names: &[String]) -> bool {
    patterns.iter().any(|pattern| {
        let lower = pattern.to_ascii_lowercase();
        names.iter().any(|name| {
            let name = name.to_ascii_lowercase();
            match lower.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == lower,
            }
        })
    })
}

/// Whether a setting goes by one of `names`.
fn names_any(setting: &Setting, names: &[&str]) -> bool {
    setting
        .names
        .iter()
        .any(|n| names.iter().any(|w| w.eq_ignore_ascii_case(n)))
}

/// Removes the setting written as `written` from `body`.
fn remove(body: &mut Map<String, Value>, written: &str) {
    match written.strip_prefix("conf.") {
        Some(key) if !body.contains_key(written) => {
            if let Some(conf) = body.get_mut("conf").and_then(Value::as_object_mut) {
                conf.remove(key);
            }
        }
        _ => {
            body.remove(written);
        }
    }
}

/// The body's `conf`, made an object if it is missing.
fn conf_mut(body: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let conf = body
        .entry("conf")
        .or_insert_with(|| Value::Object(Map::new()));
    if !conf.is_object() {
        *conf = Value::Object(Map::new());
    }
    conf.as_object_mut().expect("an object")
}

/// The URLs a file setting names: a string (a conf value: comma-separated) or a
/// list of them.
fn urls(value: &Value) -> Vec<String> {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match value {
        Value::String(s) => split(s),
        Value::Array(items) => items
            .iter()
            .flat_map(|item| match item {
                Value::String(s) => split(s),
                other => vec![other.to_string()],
            })
            .collect(),
        other => vec![other.to_string()],
    }
}

/// A URL's scheme, lower case; a path without one is `file` (how Spark reads it).
fn scheme_of(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _))
            if scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            scheme.to_ascii_lowercase()
        }
        _ => "file".into(),
    }
}

/// A count: a whole number, or a string of one.
fn count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A memory size in MiB, in Spark's syntax.
fn memory(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => SparkSize::parse(s).map(|s| s.0),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// A value as text, for the refusal.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `named` is the queue `allowed` (YARN takes a leaf name or its path
/// from `root.`).
fn same_queue(allowed: &str, named: &str) -> bool {
    let leaf = |q: &str| {
        q.trim()
            .strip_prefix("root.")
            .unwrap_or(q.trim())
            .to_owned()
    };
    leaf(allowed) == leaf(named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PolicyConfig;
    use serde_json::json;

    fn policy(toml: &str) -> EffectivePolicy {
        toml::from_str::<PolicyConfig>(toml).unwrap().effective(&[])
    }

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn refusal(policy: &EffectivePolicy, value: Value) -> Refusal {
        apply(&mut body(value), policy).unwrap_err()
    }

    #[test]
    fn denied_settings_are_refused_in_every_spelling() {
        let p = policy(
            r#"deny_conf = ["spark.driver.extraClassPath", "spark.executor.extraJavaOptions", "spark.yarn.dist.*", "spark.executor.memory"]"#,
        );
        let r = refusal(
            &p,
            json!({"conf": {"spark.driver.extraClassPath": "/tmp/evil.jar"}}),
        );
        assert_eq!(
            (r.rule, r.key.as_str()),
            ("deny_conf", "conf.spark.driver.extraClassPath")
        );
        // Case and blanks do not escape the rule.
        let r = refusal(&p, json!({"conf": {" Spark.Driver.ExtraClassPath ": "x"}}));
        assert_eq!(r.key, "conf. Spark.Driver.ExtraClassPath ");
        // A prefix pattern.
        let r = refusal(&p, json!({"conf": {"spark.yarn.dist.jars": "x.jar"}}));
        assert_eq!(r.key, "conf.spark.yarn.dist.jars");
        // The body field for a denied spark key.
        let r = refusal(&p, json!({"executorMemory": "4g"}));
        assert_eq!(r.key, "executorMemory");
        // Others pass untouched.
        let mut ok = body(json!({"conf": {"spark.executor.cores": "2"}, "name": "x"}));
        assert_eq!(apply(&mut ok, &p), Ok(Applied::default()));
    }

    #[test]
    fn dropped_settings_are_removed_and_named() {
        let p = policy(r#"drop_conf = ["spark.yarn.queue", "spark.eventLog.*"]"#);
        let mut b = body(json!({
            "queue": "root.prod",
            "conf": {"spark.eventLog.dir": "hdfs:///x", "spark.app.name": "y"}
        }));
        let applied = apply(&mut b, &p).unwrap();
        assert_eq!(applied.dropped, ["queue", "conf.spark.eventLog.dir"]);
        assert_eq!(Value::Object(b), json!({"conf": {"spark.app.name": "y"}}));
    }

    #[test]
    fn files_come_only_from_allowed_schemes() {
        let p = policy(r#"allowed_url_schemes = ["hdfs", "s3a"]"#);
        let mut ok = body(json!({
            "file": "hdfs:///jobs/a.jar",
            "jars": ["S3A://bucket/b.jar"],
            "conf": {"spark.jars": "hdfs:///x.jar,s3a://y/z.jar"}
        }));
        assert!(apply(&mut ok, &p).is_ok());
        for (value, key, url) in [
            (
                json!({"file": "local:/etc/passwd"}),
                "file",
                "local:/etc/passwd",
            ),
            (json!({"file": "/opt/job.jar"}), "file", "/opt/job.jar"),
            (
                json!({"pyFiles": ["hdfs:///ok.py", "file:///x.py"]}),
                "pyFiles",
                "file:///x.py",
            ),
            (
                json!({"conf": {"spark.yarn.dist.files": "hdfs:///a, FILE:/b"}}),
                "conf.spark.yarn.dist.files",
                "FILE:/b",
            ),
            (json!({"archives": ["x.zip#env"]}), "archives", "x.zip#env"),
        ] {
            let r = refusal(&p, value);
            assert_eq!(r.rule, "allowed_url_schemes");
            assert_eq!((r.key.as_str(), r.value.as_deref()), (key, Some(url)));
        }
    }

    #[test]
    fn resources_are_capped_in_sparks_units_whatever_the_spelling() {
        let p = policy(
            r#"
            max_executors = 10
            max_executor_memory = "16g"
            max_driver_memory = "4g"
            max_executor_cores = 4
            "#,
        );
        let mut ok = body(json!({
            "numExecutors": 10,
            "executorMemory": "16384m",
            "driverMemory": "4096",
            "executorCores": 4,
            "conf": {"spark.executor.memory": "8g", "spark.dynamicAllocation.maxExecutors": "10"}
        }));
        assert!(apply(&mut ok, &p).is_ok());
        for (value, rule, key) in [
            (json!({"numExecutors": 11}), "max_executors", "numExecutors"),
            (
                json!({"conf": {"spark.executor.instances": "500"}}),
                "max_executors",
                "conf.spark.executor.instances",
            ),
            (
                json!({"conf": {"spark.dynamicAllocation.maxExecutors": "11"}}),
                "max_executors",
                "conf.spark.dynamicAllocation.maxExecutors",
            ),
            (
                json!({"executorMemory": "17g"}),
                "max_executor_memory",
                "executorMemory",
            ),
            (
                json!({"conf": {"SPARK.EXECUTOR.MEMORY": "1t"}}),
                "max_executor_memory",
                "conf.SPARK.EXECUTOR.MEMORY",
            ),
            (
                json!({"executorMemory": "lots"}),
                "max_executor_memory",
                "executorMemory",
            ),
            (
                json!({"driverMemory": "4097"}),
                "max_driver_memory",
                "driverMemory",
            ),
            (
                json!({"conf": {"spark.executor.cores": "5"}}),
                "max_executor_cores",
                "conf.spark.executor.cores",
            ),
        ] {
            let r = refusal(&p, value);
            assert_eq!((r.rule, r.key.as_str()), (rule, key));
        }
        // Dynamic allocation is given the cap as its maximum when it has none.
        let mut b = body(json!({"file": "a.jar"}));
        apply(&mut b, &p).unwrap();
        assert_eq!(b["conf"]["spark.dynamicAllocation.maxExecutors"], "10");
    }

    #[test]
    fn queues_are_allowed_or_the_first_is_put_in() {
        let p = policy(r#"queues = ["data-eng", "adhoc"]"#);
        let mut b = body(json!({"file": "a.jar"}));
        let applied = apply(&mut b, &p).unwrap();
        assert_eq!(applied.queue.as_deref(), Some("data-eng"));
        assert_eq!(b["queue"], "data-eng");
        let mut ok = body(json!({"queue": "root.adhoc"}));
        assert!(apply(&mut ok, &p).unwrap().queue.is_none());
        let r = refusal(&p, json!({"queue": "prod"}));
        assert_eq!((r.rule, r.value.as_deref()), ("queues", Some("prod")));
        // The conf spelling too, even beside an allowed field.
        let r = refusal(
            &p,
            json!({"queue": "adhoc", "conf": {"spark.yarn.queue": "prod"}}),
        );
        assert_eq!(r.key, "conf.spark.yarn.queue");
    }
}
