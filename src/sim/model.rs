//! The simulator's batches, sessions and statements, their state machines, and the
//! JSON views Livy sends for them.
//!
//! States are derived from the time elapsed since creation (scaled by the configured
//! speed), so nothing runs in the background and tests can move time with
//! `tokio::time::advance`. Conventions for making things fail (documented in
//! docs/operations.md): a batch whose `args` contain `"fail"` ends `dead`; what a
//! statement prints, errors included, is [`super::interpreters`]'s.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::interpreters::{Interpreters, Outcome};

/// Which Livy release's views to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LivyVersion {
    /// 0.5: batch views have no name, owner or proxyUser (as in the seed document).
    V05,
    /// 0.7: batch views gain name, owner and proxyUser.
    V07,
    /// 0.8: session views also echo their resource settings.
    V08,
}

impl LivyVersion {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "0.5" => Some(Self::V05),
            "0.7" => Some(Self::V07),
            "0.8" => Some(Self::V08),
            _ => None,
        }
    }

    pub fn release(self) -> &'static str {
        match self {
            Self::V05 => "0.5.0-incubating",
            Self::V07 => "0.7.1-incubating",
            Self::V08 => "0.8.0-incubating",
        }
    }
}

/// How long each phase lasts at speed 1.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub batch_starting: Duration,
    pub batch_running: Duration,
    pub session_starting: Duration,
    pub statement_running: Duration,
}

impl Timings {
    /// Phase lengths divided by `speed` (> 0).
    pub fn at_speed(speed: f64) -> Self {
        let s = |secs: f64| Duration::from_secs_f64(secs / speed);
        Self {
            batch_starting: s(2.0),
            batch_running: s(6.0),
            session_starting: s(3.0),
            statement_running: s(1.0),
        }
    }
}

/// A Spark batch job.
pub struct Batch {
    pub id: u64,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub proxy_user: Option<String>,
    pub created: Instant,
    /// Ends `dead` instead of `success`.
    pub fail: bool,
    pub log_lines: usize,
}

impl Batch {
    pub fn state(&self, now: Instant, t: &Timings) -> &'static str {
        let age = now.duration_since(self.created);
        if age < t.batch_starting {
            "starting"
        } else if age < t.batch_starting + t.batch_running {
            "running"
        } else if self.fail {
            "dead"
        } else {
            "success"
        }
    }

    pub fn app_id(&self) -> String {
        format!("application_1491850285904_{:04}", self.id)
    }

    /// Lines of log available now: the whole log once the job has started running.
    pub fn log_total(&self, now: Instant, t: &Timings) -> usize {
        if self.state(now, t) == "starting" {
            self.log_lines.min(3)
        } else {
            self.log_lines
        }
    }

    pub fn view(
        &self,
        now: Instant,
        t: &Timings,
        version: LivyVersion,
        cluster: &Cluster,
    ) -> Value {
        let state = self.state(now, t);
        let started = state != "starting";
        let app_id = started.then(|| self.app_id());
        let total = self.log_total(now, t);
        let last: Vec<String> = (total.saturating_sub(10)..total)
            .map(|i| super::logs::line(&self.app_id(), i, self.log_lines))
            .collect();
        let mut v = Map::new();
        v.insert("id".into(), json!(self.id));
        if version >= LivyVersion::V07 {
            v.insert("name".into(), json!(self.name));
            v.insert("owner".into(), json!(self.owner));
            v.insert("proxyUser".into(), json!(self.proxy_user));
        }
        v.insert("state".into(), json!(state));
        v.insert("appId".into(), json!(app_id));
        v.insert(
            "appInfo".into(),
            app_info(
                app_id.as_deref(),
                self.proxy_user.as_deref(),
                version,
                cluster,
            ),
        );
        v.insert("log".into(), json!(last));
        Value::Object(v)
    }
}

/// The YARN cluster the simulated applications run on: where the links in views
/// point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The ResourceManager's web address, `http://host:port` or `https://…`.
    pub resourcemanager: String,
    /// The NodeManager drivers run on, `host:port`; reached with the
    /// ResourceManager's scheme, as YARN's `yarn.http.policy` holds for both.
    pub nodemanager: String,
    /// A secured (Kerberized) cluster: the ResourceManager's proxy warns anyone
    /// but an application's owner before showing its pages ([`super::yarn`]).
    pub secure: bool,
    /// The Spark History Server's web address (`spark.yarn.historyServer.address`):
    /// where the ResourceManager's proxy sends a finished application's pages.
    pub historyserver: Option<String>,
}

impl Cluster {
    /// `scheme://host:port` of the NodeManager.
    pub fn nodemanager_origin(&self) -> String {
        let scheme = self
            .resourcemanager
            .split_once("://")
            .map_or("http", |(scheme, _)| scheme);
        format!("{scheme}://{}", self.nodemanager)
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            resourcemanager: "http://livy-sim-rm:8088".into(),
            nodemanager: "livy-sim-nm1:8042".into(),
            secure: false,
            historyserver: None,
        }
    }
}

/// The driver's container of `app_id` (`application_<ts>_<n>`).
pub fn driver_container(app_id: &str) -> String {
    let id = app_id.trim_start_matches("application_");
    format!("container_e01_{id}_01_000001")
}

/// YARN's links for a running application, as Livy reports them: the
/// ResourceManager's proxy for the Spark UI, and (0.7 and later; the seed
/// document's 0.5 shows none) the NodeManager's log page of the driver's
/// container, as the application's user.
fn app_info(
    app_id: Option<&str>,
    user: Option<&str>,
    version: LivyVersion,
    cluster: &Cluster,
) -> Value {
    json!({
        "driverLogUrl": app_id.filter(|_| version >= LivyVersion::V07).map(|a| format!(
            "{}/node/containerlogs/{}/{}",
            cluster.nodemanager_origin(),
            driver_container(a),
            user.unwrap_or("livy")
        )),
        "sparkUiUrl": app_id.map(|a| format!("{}/proxy/{a}/", cluster.resourcemanager)),
    })
}

/// An interactive session.
pub struct Session {
    pub id: u64,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub proxy_user: Option<String>,
    pub kind: String,
    pub created: Instant,
    /// Resource settings from the create request, echoed by 0.8 views.
    pub resources: Map<String, Value>,
    pub statements: Vec<Statement>,
    /// What the session's interpreters remember between statements.
    pub interpreters: Interpreters,
}

impl Session {
    fn ready_at(&self, t: &Timings) -> Instant {
        self.created + t.session_starting
    }

    pub fn state(&self, now: Instant, t: &Timings) -> &'static str {
        if now < self.ready_at(t) {
            "starting"
        } else if self
            .statements
            .iter()
            .any(|s| matches!(s.state(now), "waiting" | "running"))
        {
            "busy"
        } else {
            "idle"
        }
    }

    pub fn app_id(&self) -> String {
        format!("application_1491850285905_{:04}", self.id)
    }

    pub fn log_lines(&self, now: Instant, t: &Timings) -> Vec<String> {
        let mut lines = vec![
            "stdout: ".to_string(),
            "\nstderr: ".to_string(),
            format!("INFO Client: Submitted application {}", self.app_id()),
        ];
        if now >= self.ready_at(t) {
            lines.push("INFO SparkContext: Spark context is ready".to_string());
        }
        lines
    }

    pub fn view(
        &self,
        now: Instant,
        t: &Timings,
        version: LivyVersion,
        cluster: &Cluster,
    ) -> Value {
        let started = now >= self.ready_at(t);
        let app_id = started.then(|| self.app_id());
        let mut v = Map::new();
        v.insert("id".into(), json!(self.id));
        v.insert("name".into(), json!(self.name));
        v.insert("appId".into(), json!(app_id));
        v.insert("owner".into(), json!(self.owner));
        v.insert("proxyUser".into(), json!(self.proxy_user));
        v.insert("state".into(), json!(self.state(now, t)));
        v.insert("kind".into(), json!(self.kind));
        v.insert(
            "appInfo".into(),
            app_info(
                app_id.as_deref(),
                self.proxy_user.as_deref(),
                version,
                cluster,
            ),
        );
        v.insert("log".into(), json!(self.log_lines(now, t)));
        if version >= LivyVersion::V08 {
            for (key, value) in &self.resources {
                v.insert(key.clone(), value.clone());
            }
        }
        Value::Object(v)
    }

    /// Queues a statement behind the session's start-up and earlier statements,
    /// run by the interpreter of `kind` (the statement's own, else the
    /// session's; a shared session's default is pyspark). What it prints is
    /// decided now, as a REPL would number its results in order.
    pub fn add_statement(
        &mut self,
        code: String,
        kind: Option<&str>,
        now: Instant,
        t: &Timings,
    ) -> &Statement {
        let kind = kind.unwrap_or(&self.kind);
        let outcome = self.interpreters.run(kind, &code);
        let id = self.statements.len() as u64;
        let busy_until = self
            .statements
            .iter()
            .filter(|s| !s.cancelled)
            .map(|s| s.completed_at)
            .max()
            .unwrap_or(now);
        let starts_at = busy_until.max(self.ready_at(t)).max(now);
        let running = match slept_secs(&code) {
            Some(secs) => t.statement_running.mul_f64(secs),
            None => t.statement_running,
        };
        self.statements.push(Statement {
            id,
            code,
            created: now,
            starts_at,
            completed_at: starts_at + running,
            cancelled: false,
            outcome,
        });
        self.statements.last().expect("just pushed")
    }
}

/// How long a statement of `time.sleep(N)` says it runs, in Livy's seconds.
fn slept_secs(code: &str) -> Option<f64> {
    let start = code.find("sleep(")? + "sleep(".len();
    let end = start + code[start..].find(')')?;
    code[start..end]
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
}

/// A piece of code run in a session.
pub struct Statement {
    pub id: u64,
    pub code: String,
    pub created: Instant,
    pub starts_at: Instant,
    pub completed_at: Instant,
    pub cancelled: bool,
    pub outcome: Outcome,
}

impl Statement {
    pub fn state(&self, now: Instant) -> &'static str {
        if self.cancelled {
            "cancelled"
        } else if now < self.starts_at {
            "waiting"
        } else if now < self.completed_at {
            "running"
        } else {
            "available"
        }
    }

    pub fn view(&self, now: Instant, epoch: (Instant, u64)) -> Value {
        let state = self.state(now);
        let millis = |at: Instant| epoch.1 + at.duration_since(epoch.0).as_millis() as u64;
        let output = (state == "available").then(|| self.outcome.output(self.id));
        json!({
            "id": self.id,
            "code": self.code,
            "state": state,
            "output": output,
            "progress": if state == "available" { 1.0 } else { 0.0 },
            "started": if now >= self.starts_at { millis(self.starts_at) } else { 0 },
            "completed": if state == "available" { millis(self.completed_at) } else { 0 },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn batch_moves_through_its_states() {
        let t = Timings::at_speed(1.0);
        let mut b = Batch {
            id: 0,
            name: None,
            owner: None,
            proxy_user: None,
            created: Instant::now(),
            fail: false,
            log_lines: 32,
        };
        assert_eq!(b.state(Instant::now(), &t), "starting");
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(b.state(Instant::now(), &t), "running");
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(b.state(Instant::now(), &t), "success");
        b.fail = true;
        assert_eq!(b.state(Instant::now(), &t), "dead");
    }

    #[tokio::test(start_paused = true)]
    async fn session_is_busy_while_a_statement_runs() {
        let t = Timings::at_speed(1.0);
        let mut s = Session {
            id: 0,
            name: None,
            owner: None,
            proxy_user: Some("alice".into()),
            kind: "pyspark".into(),
            created: Instant::now(),
            resources: Map::new(),
            statements: vec![],
            interpreters: Interpreters::default(),
        };
        assert_eq!(s.state(Instant::now(), &t), "starting");
        s.add_statement("1+1".into(), None, Instant::now(), &t);
        assert_eq!(s.statements[0].state(Instant::now()), "waiting");
        tokio::time::advance(Duration::from_millis(3500)).await;
        assert_eq!(s.state(Instant::now(), &t), "busy");
        assert_eq!(s.statements[0].state(Instant::now()), "running");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(s.state(Instant::now(), &t), "idle");
        let v = s.statements[0].view(Instant::now(), (Instant::now(), 0));
        assert_eq!(v["output"]["data"]["text/plain"], "2");
    }
}
