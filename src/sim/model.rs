//! The simulator's batches, sessions and statements, their state machines, and the
//! JSON views Livy sends for them.
//!
//! States are derived from the time elapsed since creation (scaled by the configured
//! speed), so nothing runs in the background and tests can move time with
//! `tokio::time::advance`. Conventions for making things fail (documented in the
//! docs/operations.md): a batch whose `args` contain `"fail"` ends `dead`; a statement whose code
//! contains `raise` or divides by zero produces an error output.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

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

    pub fn view(&self, now: Instant, t: &Timings, version: LivyVersion) -> Value {
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
        v.insert("appInfo".into(), app_info(app_id.as_deref()));
        v.insert("log".into(), json!(last));
        Value::Object(v)
    }
}

fn app_info(app_id: Option<&str>) -> Value {
    json!({
        "driverLogUrl": null,
        "sparkUiUrl": app_id.map(|a| format!("http://livy-sim-rm:8088/proxy/{a}/")),
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

    pub fn view(&self, now: Instant, t: &Timings, version: LivyVersion) -> Value {
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
        v.insert("appInfo".into(), app_info(app_id.as_deref()));
        v.insert("log".into(), json!(self.log_lines(now, t)));
        if version >= LivyVersion::V08 {
            for (key, value) in &self.resources {
                v.insert(key.clone(), value.clone());
            }
        }
        Value::Object(v)
    }

    /// Queues a statement behind the session's start-up and earlier statements.
    pub fn add_statement(&mut self, code: String, now: Instant, t: &Timings) -> &Statement {
        let id = self.statements.len() as u64;
        let busy_until = self
            .statements
            .iter()
            .filter(|s| !s.cancelled)
            .map(|s| s.completed_at)
            .max()
            .unwrap_or(now);
        let starts_at = busy_until.max(self.ready_at(t)).max(now);
        self.statements.push(Statement {
            id,
            code,
            created: now,
            starts_at,
            completed_at: starts_at + t.statement_running,
            cancelled: false,
        });
        self.statements.last().expect("just pushed")
    }
}

/// A piece of code run in a session.
pub struct Statement {
    pub id: u64,
    pub code: String,
    pub created: Instant,
    pub starts_at: Instant,
    pub completed_at: Instant,
    pub cancelled: bool,
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
        let output = (state == "available").then(|| match evaluate(&self.code) {
            Ok(text) => json!({
                "status": "ok",
                "execution_count": self.id,
                "data": { "text/plain": text },
            }),
            Err((ename, evalue)) => json!({
                "status": "error",
                "execution_count": self.id,
                "ename": ename,
                "evalue": evalue,
                "traceback": [format!("{ename}: {evalue}")],
            }),
        });
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

/// What a statement "prints": integer arithmetic is evaluated, `print("…")` prints
/// its literal, `spark`/`sc` name the Spark objects, code containing `raise` fails;
/// anything else succeeds with empty output.
pub fn evaluate(code: &str) -> Result<String, (String, String)> {
    let code = code.trim();
    if code.contains("raise") {
        return Err(("Exception".into(), "raised by the statement".into()));
    }
    match code {
        "spark" => return Ok("<pyspark.sql.session.SparkSession object at 0x7f3c2c1b1d30>".into()),
        "sc" => return Ok("<SparkContext master=yarn appName=livy-session-0>".into()),
        _ => {}
    }
    if let Some(inner) = code
        .strip_prefix("print(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let inner = inner.trim();
        for quote in ['"', '\''] {
            if let Some(text) = inner
                .strip_prefix(quote)
                .and_then(|r| r.strip_suffix(quote))
            {
                return Ok(text.to_string());
            }
        }
    }
    match Arith::new(code).parse() {
        Some(Ok(value)) => Ok(value.to_string()),
        Some(Err(())) => Err(("ZeroDivisionError".into(), "division by zero".into())),
        None => Ok(String::new()),
    }
}

/// A tiny integer-arithmetic parser: `+ - * /`, parentheses, unary minus.
struct Arith<'a> {
    s: &'a [u8],
    i: usize,
}

type ArithResult = Option<Result<i64, ()>>;

impl<'a> Arith<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            i: 0,
        }
    }

    /// `None` if the text is not arithmetic; `Some(Err)` on division by zero.
    fn parse(mut self) -> ArithResult {
        let v = self.expr(0)?;
        self.ws();
        (self.i == self.s.len()).then_some(v)
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn expr(&mut self, depth: usize) -> ArithResult {
        let mut acc = self.term(depth)?;
        loop {
            self.ws();
            match self.s.get(self.i) {
                Some(b'+') | Some(b'-') => {
                    let op = self.s[self.i];
                    self.i += 1;
                    let rhs = self.term(depth)?;
                    acc = match (acc, rhs) {
                        (Ok(a), Ok(b)) if op == b'+' => Ok(a.checked_add(b)?),
                        (Ok(a), Ok(b)) => Ok(a.checked_sub(b)?),
                        _ => Err(()),
                    };
                }
                _ => return Some(acc),
            }
        }
    }

    fn term(&mut self, depth: usize) -> ArithResult {
        let mut acc = self.atom(depth)?;
        loop {
            self.ws();
            match self.s.get(self.i) {
                Some(b'*') | Some(b'/') => {
                    let op = self.s[self.i];
                    self.i += 1;
                    let rhs = self.atom(depth)?;
                    acc = match (acc, rhs) {
                        (Ok(a), Ok(b)) if op == b'*' => Ok(a.checked_mul(b)?),
                        (Ok(_), Ok(0)) => Err(()),
                        (Ok(a), Ok(b)) => Ok(a.checked_div(b)?),
                        _ => Err(()),
                    };
                }
                _ => return Some(acc),
            }
        }
    }

    fn atom(&mut self, depth: usize) -> ArithResult {
        if depth > 64 {
            return None;
        }
        self.ws();
        match self.s.get(self.i)? {
            b'(' => {
                self.i += 1;
                let v = self.expr(depth + 1)?;
                self.ws();
                (self.s.get(self.i) == Some(&b')')).then(|| {
                    self.i += 1;
                    v
                })
            }
            b'-' => {
                self.i += 1;
                Some(self.atom(depth + 1)?.map(|v| -v))
            }
            c if c.is_ascii_digit() => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                Some(Ok(text.parse().ok()?))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_evaluate_by_convention() {
        assert_eq!(evaluate("1+1"), Ok("2".into()));
        assert_eq!(evaluate(" (2 + 3) * -4 "), Ok("-20".into()));
        assert_eq!(evaluate("7/2"), Ok("3".into()));
        assert!(evaluate("1/0").is_err());
        assert_eq!(evaluate("print('hi')"), Ok("hi".into()));
        assert!(evaluate("spark").unwrap().contains("SparkSession"));
        assert_eq!(
            evaluate("raise ValueError('x')").unwrap_err().0,
            "Exception"
        );
        assert_eq!(evaluate("df = spark.range(10)"), Ok(String::new()));
        assert_eq!(evaluate(&"(".repeat(500)), Ok(String::new()));
    }

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
        };
        assert_eq!(s.state(Instant::now(), &t), "starting");
        s.add_statement("1+1".into(), Instant::now(), &t);
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
