//! `[policy]`: quotas on live sessions and batches, the cluster-wide cap on
//! creations in flight, idle sessions' end, and the rules a create body must
//! keep (settings, file locations, resources, queues) — for everyone, and per
//! group in `[policy.groups.<name>]`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `[policy]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Live interactive sessions per user (not yet dead, killed, error or
    /// success); 0 = no limit.
    pub max_sessions_per_user: u32,
    /// Batches per user not yet in a final state; 0 = no limit.
    pub max_batches_per_user: u32,
    /// Creations in flight to Livy at once, all users, all instances; 0 = no limit.
    pub max_creating: u32,
    /// Sessions idle (no statement running) longer than this are deleted; 0 = off.
    pub idle_session_timeout_mins: u32,
    /// Conf keys refused (403 naming the key); `prefix.*` matches by prefix.
    pub deny_conf: Vec<String>,
    /// Conf keys removed before Livy sees the body (the audit line names them).
    pub drop_conf: Vec<String>,
    /// Non-empty: `file`, `jars`, `pyFiles`, `files`, `archives` must use these
    /// URL schemes (a path without one is `file`, Spark's reading).
    pub allowed_url_schemes: Vec<String>,
    /// Cap on `numExecutors` and `spark.dynamicAllocation.maxExecutors`; 0 = none.
    pub max_executors: u32,
    /// Cap on `executorMemory` / `spark.executor.memory` (Spark's size syntax).
    #[serde(deserialize_with = "optional_size", serialize_with = "size_or_empty")]
    pub max_executor_memory: Option<SparkSize>,
    /// Cap on `driverMemory` / `spark.driver.memory`.
    #[serde(deserialize_with = "optional_size", serialize_with = "size_or_empty")]
    pub max_driver_memory: Option<SparkSize>,
    /// Cap on `executorCores` / `spark.executor.cores`; 0 = none.
    pub max_executor_cores: u32,
    /// Allowed YARN queues; the first is injected when the body names none.
    pub queues: Vec<String>,
    /// Rules for members of a group: any key above but `max_creating`.
    pub groups: BTreeMap<String, GroupPolicy>,
}

/// `[policy.groups.<name>]`: the keys it sets replace `[policy]`'s for the
/// group's members (a user in several groups gets the most generous of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sessions_per_user: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batches_per_user: Option<u32>,
    /// Refused with a message: the cap is the cluster's, not a group's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_creating: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_session_timeout_mins: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_conf: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_conf: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_url_schemes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_executors: Option<u32>,
    #[serde(
        deserialize_with = "group_size",
        serialize_with = "group_size_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_executor_memory: Option<Option<SparkSize>>,
    #[serde(
        deserialize_with = "group_size",
        serialize_with = "group_size_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_driver_memory: Option<Option<SparkSize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_executor_cores: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<String>>,
}

impl PolicyConfig {
    /// Whether any quota or cap is set (creations are then counted).
    pub fn counts(&self) -> bool {
        self.max_sessions_per_user > 0
            || self.max_batches_per_user > 0
            || self.max_creating > 0
            || self.groups.values().any(|g| {
                g.max_sessions_per_user.is_some_and(|n| n > 0)
                    || g.max_batches_per_user.is_some_and(|n| n > 0)
            })
    }

    /// Whether idle sessions are ended for anyone.
    pub fn reaps(&self) -> bool {
        self.idle_session_timeout_mins > 0
            || self
                .groups
                .values()
                .any(|g| g.idle_session_timeout_mins.is_some_and(|n| n > 0))
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let lists =
            |at: &str, deny: &[String], drop: &[String], schemes: &[String], queues: &[String]| {
                for key in deny.iter().chain(drop) {
                    let stem = key.strip_suffix(".*").unwrap_or(key);
                    if stem.trim().is_empty() || stem.contains('*') || stem != stem.trim() {
                        return Err(format!(
                            "{at}: {key:?} is not a conf key or a \"prefix.*\" pattern"
                        ));
                    }
                }
                for scheme in schemes {
                    let valid = scheme
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic())
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
                    if !valid {
                        return Err(format!(
                            "{at}: allowed_url_schemes: {scheme:?} is not a URL scheme"
                        ));
                    }
                }
                if queues.iter().any(|q| q.trim().is_empty() || q != q.trim()) {
                    return Err(format!(
                        "{at}: queues: a queue name is empty or has blanks around it"
                    ));
                }
                Ok(())
            };
        lists(
            "[policy]",
            &self.deny_conf,
            &self.drop_conf,
            &self.allowed_url_schemes,
            &self.queues,
        )?;
        for (name, group) in &self.groups {
            let at = format!("[policy.groups.{name}]");
            if group.max_creating.is_some() {
                return Err(format!(
                    "{at}: max_creating is the cluster's cap on creations in flight; set it in [policy]"
                ));
            }
            let none = Vec::new();
            lists(
                &at,
                group.deny_conf.as_ref().unwrap_or(&none),
                group.drop_conf.as_ref().unwrap_or(&none),
                group.allowed_url_schemes.as_ref().unwrap_or(&none),
                group.queues.as_ref().unwrap_or(&none),
            )?;
        }
        Ok(())
    }
}

/// The rules one user is held to: `[policy]`'s, or where the user's groups set a
/// key, the most generous of their values (no limit over any limit, a larger
/// limit over a smaller; a setting refused or dropped only if every such group
/// says so; schemes and queues allowed by any of them, none listed meaning any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectivePolicy {
    pub max_sessions_per_user: u32,
    pub max_batches_per_user: u32,
    pub idle_session_timeout_mins: u32,
    pub deny_conf: Vec<String>,
    pub drop_conf: Vec<String>,
    pub allowed_url_schemes: Vec<String>,
    pub max_executors: u32,
    pub max_executor_memory: Option<SparkSize>,
    pub max_driver_memory: Option<SparkSize>,
    pub max_executor_cores: u32,
    pub queues: Vec<String>,
    /// The groups whose `[policy.groups]` applied (none: `[policy]` alone).
    pub groups: Vec<String>,
}

impl PolicyConfig {
    /// The rules for a member of `groups` (names compared without regard to case).
    pub fn effective(&self, groups: &[String]) -> EffectivePolicy {
        let applying: Vec<(&String, &GroupPolicy)> = self
            .groups
            .iter()
            .filter(|(name, _)| groups.iter().any(|g| g.eq_ignore_ascii_case(name)))
            .collect();
        // Each key: the values of the groups that set it, or `[policy]`'s.
        fn pick<T: Clone>(
            applying: &[(&String, &GroupPolicy)],
            base: &T,
            get: impl Fn(&GroupPolicy) -> Option<&T>,
            generous: impl Fn(Vec<T>) -> T,
        ) -> T {
            let set: Vec<T> = applying
                .iter()
                .filter_map(|(_, g)| get(g).cloned())
                .collect();
            match set.is_empty() {
                true => base.clone(),
                false => generous(set),
            }
        }
        let limit = |values: Vec<u32>| match values.contains(&0) {
            true => 0,
            false => values.into_iter().max().unwrap_or(0),
        };
        let size = |values: Vec<Option<SparkSize>>| match values.contains(&None) {
            true => None,
            false => values.into_iter().flatten().max(),
        };
        let every = |lists: Vec<Vec<String>>| {
            let mut lists = lists.into_iter();
            let first = lists.next().unwrap_or_default();
            lists.fold(first, |kept, list| {
                kept.into_iter().filter(|k| list.contains(k)).collect()
            })
        };
        let any = |lists: Vec<Vec<String>>| match lists.iter().any(Vec::is_empty) {
            true => Vec::new(),
            false => {
                let mut union: Vec<String> = Vec::new();
                for item in lists.into_iter().flatten() {
                    if !union.contains(&item) {
                        union.push(item);
                    }
                }
                union
            }
        };
        let a = &applying;
        EffectivePolicy {
            max_sessions_per_user: pick(
                a,
                &self.max_sessions_per_user,
                |g| g.max_sessions_per_user.as_ref(),
                limit,
            ),
            max_batches_per_user: pick(
                a,
                &self.max_batches_per_user,
                |g| g.max_batches_per_user.as_ref(),
                limit,
            ),
            idle_session_timeout_mins: pick(
                a,
                &self.idle_session_timeout_mins,
                |g| g.idle_session_timeout_mins.as_ref(),
                limit,
            ),
            deny_conf: pick(a, &self.deny_conf, |g| g.deny_conf.as_ref(), every),
            drop_conf: pick(a, &self.drop_conf, |g| g.drop_conf.as_ref(), every),
            allowed_url_schemes: pick(
                a,
                &self.allowed_url_schemes,
                |g| g.allowed_url_schemes.as_ref(),
                any,
            ),
            max_executors: pick(a, &self.max_executors, |g| g.max_executors.as_ref(), limit),
            max_executor_memory: pick(
                a,
                &self.max_executor_memory,
                |g| g.max_executor_memory.as_ref(),
                size,
            ),
            max_driver_memory: pick(
                a,
                &self.max_driver_memory,
                |g| g.max_driver_memory.as_ref(),
                size,
            ),
            max_executor_cores: pick(
                a,
                &self.max_executor_cores,
                |g| g.max_executor_cores.as_ref(),
                limit,
            ),
            queues: pick(a, &self.queues, |g| g.queues.as_ref(), any),
            groups: applying.iter().map(|(name, _)| (*name).clone()).collect(),
        }
    }
}

impl EffectivePolicy {
    /// The quota on live `sessions` (or batches); 0 = none.
    pub fn quota(&self, sessions: bool) -> u32 {
        match sessions {
            true => self.max_sessions_per_user,
            false => self.max_batches_per_user,
        }
    }
}

/// One line, as `check-config` prints it.
impl fmt::Display for EffectivePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |n: u32| match n {
            0 => "none".to_string(),
            n => n.to_string(),
        };
        let size = |s: Option<SparkSize>| s.map_or("none".to_string(), |s| s.to_string());
        let list = |l: &[String], empty: &str| match l.is_empty() {
            true => empty.to_string(),
            false => l.join(", "),
        };
        write!(
            f,
            "sessions {} and batches {} per user, idle sessions ended after {}; \
             conf refused: {}; dropped: {}; URL schemes: {}; executors {}, executor memory {}, \
             driver memory {}, executor cores {}; queues: {}",
            limit(self.max_sessions_per_user),
            limit(self.max_batches_per_user),
            match self.idle_session_timeout_mins {
                0 => "never".to_string(),
                n => format!("{n} min"),
            },
            list(&self.deny_conf, "none"),
            list(&self.drop_conf, "none"),
            list(&self.allowed_url_schemes, "any"),
            limit(self.max_executors),
            size(self.max_executor_memory),
            size(self.max_driver_memory),
            limit(self.max_executor_cores),
            list(&self.queues, "any"),
        )
    }
}

/// A memory size in Spark's syntax (`512m`, `4g`, `2048` = MiB), held in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SparkSize(pub u64);

impl SparkSize {
    /// Parses a size as Spark's `byteStringAsMb` does for memory settings: a
    /// number and an optional unit (`b`, `k`, `m`, `g`, `t`, `p`, with or without
    /// a trailing `b`, any case); no unit is MiB. `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = text[..digits].parse().ok()?;
        let kib = |shift: u32| number.checked_mul(1 << shift);
        let mib = match &text[digits..] {
            "b" => Some(number >> 20),
            "k" | "kb" => Some(number >> 10),
            "" | "m" | "mb" => Some(number),
            "g" | "gb" => kib(10),
            "t" | "tb" => kib(20),
            "p" | "pb" => kib(30),
            _ => None,
        }?;
        Some(Self(mib))
    }
}

impl fmt::Display for SparkSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n > 0 && n % 1024 == 0 => write!(f, "{}g", n / 1024),
            n => write!(f, "{n}m"),
        }
    }
}

impl<'de> Deserialize<'de> for SparkSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SparkSize::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a size in Spark's syntax (512m, 4g, 2048 = MiB)"
            ))
        })
    }
}

impl Serialize for SparkSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// `""` (no cap) or a size, as the memory keys are written.
fn optional_size<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SparkSize>, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.trim() {
        "" => Ok(None),
        size => SparkSize::parse(size).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a size in Spark's syntax (512m, 4g, 2048 = MiB)"
            ))
        }),
    }
}

/// A group's memory key: set (to a size or `""`) or not.
fn group_size<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<SparkSize>>, D::Error> {
    optional_size(deserializer).map(Some)
}

/// A memory cap as written: its size, or `""` for none.
fn size_or_empty<S: Serializer>(
    size: &Option<SparkSize>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match size {
        Some(size) => serializer.serialize_str(&size.to_string()),
        None => serializer.serialize_str(""),
    }
}

fn group_size_out<S: Serializer>(
    size: &Option<Option<SparkSize>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    size_or_empty(&size.flatten(), serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_in_sparks_units() {
        let mib = |t: &str| SparkSize::parse(t).map(|s| s.0);
        assert_eq!(mib("512m"), Some(512));
        assert_eq!(mib("4g"), Some(4096));
        assert_eq!(mib("4G"), Some(4096));
        assert_eq!(mib("4gb"), Some(4096));
        assert_eq!(mib("2048"), Some(2048));
        assert_eq!(mib("1t"), Some(1024 * 1024));
        assert_eq!(mib("1048576k"), Some(1024));
        assert_eq!(mib(" 16g "), Some(16384));
        for bad in ["", "g", "4x", "-1g", "4.5g", "1e3"] {
            assert_eq!(mib(bad), None, "{bad}");
        }
        assert_eq!(SparkSize(16384).to_string(), "16g");
        assert_eq!(SparkSize(1536).to_string(), "1536m");
    }

    #[test]
    fn a_member_of_several_groups_gets_the_most_generous_value_of_each_key() {
        let policy: PolicyConfig = toml::from_str(
            r#"
            max_sessions_per_user = 3
            max_batches_per_user = 5
            deny_conf = ["spark.driver.extraClassPath", "spark.jars.*"]
            max_executor_memory = "8g"
            queues = ["default"]
            [groups.data-eng]
            max_sessions_per_user = 10
            deny_conf = ["spark.driver.extraClassPath"]
            max_executor_memory = "32g"
            queues = ["data-eng", "adhoc"]
            [groups.analysts]
            max_sessions_per_user = 4
            deny_conf = ["spark.driver.extraClassPath", "spark.files"]
            max_executor_memory = ""
            queues = ["adhoc", "analysts"]
            [groups.trusted]
            max_batches_per_user = 0
            "#,
        )
        .unwrap();
        // No group: [policy] itself.
        let base = policy.effective(&[]);
        assert_eq!(base.max_sessions_per_user, 3);
        assert_eq!(base.queues, ["default"]);
        assert!(base.groups.is_empty());
        // One group replaces the keys it sets, even with a stricter value.
        let analyst = policy.effective(&["Analysts".into()]);
        assert_eq!(analyst.max_sessions_per_user, 4);
        assert_eq!(analyst.max_batches_per_user, 5);
        assert_eq!(analyst.max_executor_memory, None);
        assert_eq!(analyst.groups, ["analysts"]);
        // Several: the most generous of each key.
        let both = policy.effective(&["data-eng".into(), "analysts".into(), "trusted".into()]);
        assert_eq!(both.max_sessions_per_user, 10);
        assert_eq!(
            both.max_batches_per_user, 0,
            "no limit is the most generous"
        );
        assert_eq!(both.deny_conf, ["spark.driver.extraClassPath"]);
        assert_eq!(both.max_executor_memory, None);
        assert_eq!(both.queues, ["adhoc", "analysts", "data-eng"]);
        let eng = policy.effective(&["data-eng".into()]);
        assert_eq!(eng.max_executor_memory, Some(SparkSize(32768)));
        assert_eq!(eng.queues, ["data-eng", "adhoc"]);
        assert!(eng.to_string().contains("queues: data-eng, adhoc"), "{eng}");
    }

    #[test]
    fn the_contracts_keys_load_and_bad_values_are_refused() {
        let policy: PolicyConfig = toml::from_str(
            r#"
            max_sessions_per_user = 3
            max_creating = 10
            deny_conf = ["spark.driver.extraClassPath", "spark.executor.extraJavaOptions.*"]
            max_executor_memory = "16g"
            max_driver_memory = ""
            queues = ["default"]
            [groups.data-eng]
            max_sessions_per_user = 10
            queues = ["data-eng", "adhoc"]
            max_executor_memory = "32g"
            "#,
        )
        .unwrap();
        policy.validate().unwrap();
        assert_eq!(policy.max_executor_memory, Some(SparkSize(16384)));
        assert_eq!(policy.max_driver_memory, None);
        assert!(policy.counts());
        let group = &policy.groups["data-eng"];
        assert_eq!(group.max_executor_memory, Some(Some(SparkSize(32768))));
        assert!(toml::from_str::<PolicyConfig>("max_executor_memory = \"lots\"").is_err());
        assert!(toml::from_str::<PolicyConfig>("unknown = 1").is_err());
        for bad in [
            "deny_conf = [\"\"]",
            "deny_conf = [\"spark.*.x\"]",
            "allowed_url_schemes = [\"h ttp\"]",
            "queues = [\" q\"]",
            "[groups.x]\nmax_creating = 3",
        ] {
            let policy: PolicyConfig = toml::from_str(bad).unwrap();
            assert!(policy.validate().is_err(), "{bad}");
        }
    }
}
