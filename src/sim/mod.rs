//! `livy-sim`: an in-memory imitation of Apache Livy's REST API, for trying and
//! testing the gateway without a Spark cluster.
//!
//! It follows `docs/livy-api.md`: batches, sessions, statements, completion and
//! `/version`, Livy's status codes and error bodies, its log paging defaults, its view
//! shapes per release (`--livy-version`), `doAs`/`proxyUser` under impersonation,
//! Scalatra's method override, and the CSRF check (`--csrf`). State transitions are
//! derived from elapsed time ([`model`]); `--speed` makes them faster. A passive
//! server of an HA pair (`--redirect-to`), a journal of creations (`--journal`,
//! [`journal`]) and stand-in YARN pages (`--serve-yarn`) are there for the
//! gateway's failover and `[yarn]` tests; a stand-in Spark History Server on a
//! second port (`--history-listen`, [`history`]) and Livy's web UI ([`ui`],
//! `--ui-base-path`) for its history and UI routes.

pub mod history;
pub mod interpreters;
pub mod journal;
pub mod logs;
pub mod model;
mod requests;
mod serve;
mod ui;
mod yarn;

pub use history::App as HistoryApp;
pub use serve::{run, run_history, run_tls};

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use crate::body::{self, Body};
use crate::error::json_response;
pub use model::Cluster;
use model::{Batch, LivyVersion, Session, Timings};
use requests::*;

/// Largest request body the simulator reads.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub version: LivyVersion,
    /// Time runs this many times faster than Livy's (phases last `1/speed`).
    pub speed: f64,
    /// Like `livy.impersonation.enabled`: honour `doAs` (which wins) and `proxyUser`.
    pub impersonation: bool,
    /// Like `livy.server.csrf-protection.enabled`.
    pub csrf: bool,
    /// Log length of each batch.
    pub log_lines: usize,
    /// Passive mode (a standby Livy in an HA pair): every request is answered
    /// `307` to this base URL with the same path and query.
    pub redirect_to: Option<String>,
    /// Where to journal creations ([`journal`]).
    pub journal: Option<std::path::PathBuf>,
    /// The YARN cluster the views' links point into; with `serve_yarn`, this
    /// simulator also stands in for its ResourceManager proxy and NodeManager.
    pub cluster: Cluster,
    /// Serve stand-in YARN pages ([`yarn`]) besides Livy's API.
    pub serve_yarn: bool,
    /// Like `livy.ui.basePath`: what Livy's UI pages ([`ui`]) start their links with.
    pub ui_base_path: String,
    /// Applications the history server holds besides those of the batches and
    /// sessions here (ones Livy no longer lists).
    pub history_apps: Vec<HistoryApp>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            version: LivyVersion::V08,
            speed: 1.0,
            impersonation: true,
            csrf: false,
            log_lines: 32,
            redirect_to: None,
            journal: None,
            cluster: Cluster::default(),
            serve_yarn: false,
            ui_base_path: String::new(),
            history_apps: Vec::new(),
        }
    }
}

#[derive(Default)]
struct State {
    batches: BTreeMap<u64, Batch>,
    sessions: BTreeMap<u64, Session>,
    next_batch: u64,
    next_session: u64,
}

/// The simulated Livy server.
pub struct Simulator {
    config: SimConfig,
    timings: Timings,
    /// A monotonic instant and the wall-clock milliseconds it stands for.
    epoch: (Instant, u64),
    state: Mutex<State>,
    journal: Option<journal::Journal>,
    /// Paths (with queries) the history server was asked for, in order.
    history_requests: Mutex<Vec<String>>,
}

const CSRF_PAGE: &str = "<html><head><title>Error 400 Missing Required Header for CSRF protection.</title></head>\
<body><h2>HTTP ERROR 400</h2><p>Problem accessing the request. Reason:<pre>    Missing Required Header for CSRF protection.</pre></p></body></html>";

impl Simulator {
    /// A simulator as `config` says. Panics when the journal cannot be opened
    /// (the command checks that first, with [`journal::Journal::open`]).
    pub fn new(config: SimConfig) -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64;
        let journal = config
            .journal
            .as_deref()
            .map(|path| journal::Journal::open(path).expect("the creation journal opens"));
        Self {
            timings: Timings::at_speed(config.speed),
            config,
            epoch: (Instant::now(), wall),
            state: Mutex::new(State::default()),
            journal,
            history_requests: Mutex::new(Vec::new()),
        }
    }

    /// Answers one request.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<crate::body::BoxError>,
    {
        if let Some(active) = &self.config.redirect_to {
            return redirect(active, request.uri());
        }
        if self.config.serve_yarn {
            let owner = |app: &str| self.application_user(app);
            let finished = |app: &str| {
                self.applications()
                    .iter()
                    .any(|a| a.id == app && a.completed)
            };
            if let Some(page) = yarn::page(
                request.uri(),
                request.headers(),
                &self.config.cluster,
                owner,
                finished,
            ) {
                return page;
            }
        }
        if let Some(page) = ui::page(request.uri().path(), &self.config.ui_base_path) {
            return page;
        }
        let query = parse_query(request.uri().query());
        let method = effective_method(&request, &query);
        if request.uri().path().contains("//") {
            // Jetty maps `//sessions` to none of Livy's servlets but the catch-all
            // (`/*`, which only redirects `/`): Scalatra's "not found".
            return not_a_route(&method, request.uri().path());
        }
        let segments: Vec<String> = request
            .uri()
            .path()
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        if self.config.csrf
            && matches!(
                method,
                Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            )
            && !request.headers().contains_key("x-requested-by")
        {
            let mut response = Response::new(body::full(CSRF_PAGE));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html;charset=iso-8859-1"),
            );
            return response;
        }
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return fail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
                    .into_response()
            }
        };
        let call = Call {
            method,
            segments,
            query,
            body,
        };
        self.route(&call).unwrap_or_else(LivyError::into_response)
    }

    fn route(&self, call: &Call) -> Result<Response<Body>, LivyError> {
        let segs: Vec<&str> = call.segments.iter().map(String::as_str).collect();
        let m = &call.method;
        match (m, segs.as_slice()) {
            (&Method::GET, ["version"]) => Ok(self.version()),
            (&Method::GET, ["batches"]) => self.list(call, false),
            (&Method::POST, ["batches"]) => self.create_batch(call),
            (&Method::GET, ["batches", id]) => self.with_batch(id, |b, now, s| {
                Ok(json_response(
                    StatusCode::OK,
                    &b.view(now, &s.timings, s.config.version, &s.config.cluster),
                ))
            }),
            (&Method::GET, ["batches", id, "state"]) => self.with_batch(id, |b, now, s| {
                Ok(json_response(
                    StatusCode::OK,
                    &json!({ "id": b.id, "state": b.state(now, &s.timings) }),
                ))
            }),
            (&Method::GET, ["batches", id, "log"]) => {
                let from = call.int_param("from")?;
                let size = call.int_param("size")?;
                self.with_batch(id, |b, now, s| {
                    let total = b.log_total(now, &s.timings);
                    let (start, end) = logs::window(total, from, size);
                    let mut response = Response::new(body::boxed(logs::LogBody::new(
                        b.id,
                        b.app_id(),
                        start,
                        end,
                        total,
                    )));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, crate::error::JSON_CONTENT_TYPE);
                    Ok(response)
                })
            }
            (&Method::DELETE, ["batches", id]) => {
                let mut state = self.state.lock().expect("sim lock");
                let key = self.find_batch(&state, id)?;
                state.batches.remove(&key);
                Ok(msg(StatusCode::OK, "deleted"))
            }
            (&Method::GET, ["sessions"]) => self.list(call, true),
            (&Method::POST, ["sessions"]) => self.create_session(call),
            (&Method::GET, ["sessions", id]) => self.with_session(id, |s, now, sim| {
                Ok(json_response(
                    StatusCode::OK,
                    &s.view(now, &sim.timings, sim.config.version, &sim.config.cluster),
                ))
            }),
            (&Method::GET, ["sessions", id, "state"]) => self.with_session(id, |s, now, sim| {
                Ok(json_response(
                    StatusCode::OK,
                    &json!({ "id": s.id, "state": s.state(now, &sim.timings) }),
                ))
            }),
            (&Method::GET, ["sessions", id, "log"]) => {
                let from = call.int_param("from")?;
                let size = call.int_param("size")?;
                self.with_session(id, |s, now, sim| {
                    let lines = s.log_lines(now, &sim.timings);
                    let (start, end) = logs::window(lines.len(), from, size);
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({ "id": s.id, "from": start, "total": lines.len(), "log": lines[start..end] }),
                    ))
                })
            }
            (&Method::DELETE, ["sessions", id]) => {
                let mut state = self.state.lock().expect("sim lock");
                let key = self.find_session(&state, id)?;
                state.sessions.remove(&key);
                Ok(msg(StatusCode::OK, "deleted"))
            }
            (&Method::GET, ["sessions", id, "statements"]) => {
                let from = call.int_param("from")?.unwrap_or(0).max(0) as usize;
                let size = call.int_param("size")?;
                let desc = call.param("order") == Some("desc");
                self.with_session(id, |s, now, sim| {
                    let mut views: Vec<Value> = s
                        .statements
                        .iter()
                        .map(|st| st.view(now, sim.epoch))
                        .collect();
                    if desc {
                        views.reverse();
                    }
                    let size =
                        size.map_or(
                            views.len(),
                            |n| if n < 0 { views.len() } else { n as usize },
                        );
                    let page: Vec<Value> = views.into_iter().skip(from).take(size).collect();
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({ "total_statements": s.statements.len(), "statements": page }),
                    ))
                })
            }
            (&Method::POST, ["sessions", id, "statements"]) => {
                let request: StatementRequest = parse_json(&call.body)?;
                let code = request.code.ok_or_else(|| {
                    fail(
                        StatusCode::BAD_REQUEST,
                        "Rejected, Reason: code is required",
                    )
                })?;
                let mut state = self.state.lock().expect("sim lock");
                let key = self.find_session(&state, id)?;
                let now = Instant::now();
                let session = state.sessions.get_mut(&key).expect("found");
                let kind = request.kind.as_deref().map(normalize_kind).transpose()?;
                let statement = session.add_statement(code, kind, now, &self.timings);
                Ok(created(
                    format!("/sessions/{key}/statements/{}", statement.id),
                    statement.view(now, self.epoch),
                ))
            }
            (&Method::GET, ["sessions", id, "statements", sid]) => {
                let sid: Option<usize> = sid.parse().ok();
                self.with_session(id, |s, now, sim| {
                    sid.and_then(|i| s.statements.get(i))
                        .map(|st| json_response(StatusCode::OK, &st.view(now, sim.epoch)))
                        .ok_or_else(|| fail(StatusCode::NOT_FOUND, "Statement not found"))
                })
            }
            (&Method::POST, ["sessions", id, "statements", sid, "cancel"]) => {
                let sid: Option<usize> = sid.parse().ok();
                let mut state = self.state.lock().expect("sim lock");
                let key = self.find_session(&state, id)?;
                let session = state.sessions.get_mut(&key).expect("found");
                let statement = sid
                    .and_then(|i| session.statements.get_mut(i))
                    .ok_or_else(|| fail(StatusCode::NOT_FOUND, "Statement not found"))?;
                if statement.state(Instant::now()) != "available" {
                    statement.cancelled = true;
                }
                Ok(msg(StatusCode::OK, "canceled"))
            }
            (&Method::POST, ["sessions", id, "completion"]) => {
                let request: Map<String, Value> = parse_json(&call.body)?;
                let code = request.get("code").and_then(Value::as_str).unwrap_or("");
                let cursor = request
                    .get("cursor")
                    .and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()))
                    .map_or(code.len(), |c| c as usize)
                    .min(code.len());
                let word = code
                    .get(..cursor)
                    .unwrap_or("")
                    .rsplit(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or("");
                let candidates: Vec<&str> = ["spark", "sc", "sqlContext", "sqlContext.sql"]
                    .into_iter()
                    .filter(|c| !word.is_empty() && c.starts_with(word))
                    .collect();
                self.with_session(id, |_, _, _| {
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({ "candidates": candidates }),
                    ))
                })
            }
            (&Method::POST, ["sessions", id, "interrupt"]) => {
                let mut state = self.state.lock().expect("sim lock");
                let key = self.find_session(&state, id)?;
                let now = Instant::now();
                for st in &mut state.sessions.get_mut(&key).expect("found").statements {
                    if matches!(st.state(now), "waiting" | "running") {
                        st.cancelled = true;
                    }
                }
                Ok(msg(StatusCode::OK, "interrupted"))
            }
            (_, ["batches", ..]) | (_, ["sessions", ..]) | (_, ["version"]) => Err(fail(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("Method {m} is not allowed here"),
            )),
            _ => Err(fail(StatusCode::NOT_FOUND, "Not Found")),
        }
    }

    fn version(&self) -> Response<Body> {
        json_response(
            StatusCode::OK,
            &json!({
                "version": self.config.version.release(),
                "user": "livy",
                "revision": "livy-sim",
                "branch": "livy-sim",
                "date": "2026-01-01T00:00:00Z",
                "url": "https://github.com/apache/incubator-livy",
            }),
        )
    }

    /// `GET /batches` or `GET /sessions`: `{"from","total","sessions":[…]}`.
    fn list(&self, call: &Call, sessions: bool) -> Result<Response<Body>, LivyError> {
        let from = call.int_param("from")?.unwrap_or(0).max(0) as usize;
        let size = call.int_param("size")?.unwrap_or(100).max(0) as usize;
        let state = self.state.lock().expect("sim lock");
        let now = Instant::now();
        let (total, views): (usize, Vec<Value>) = if sessions {
            let views = state
                .sessions
                .values()
                .skip(from)
                .take(size)
                .map(|s| {
                    s.view(
                        now,
                        &self.timings,
                        self.config.version,
                        &self.config.cluster,
                    )
                })
                .collect();
            (state.sessions.len(), views)
        } else {
            let views = state
                .batches
                .values()
                .skip(from)
                .take(size)
                .map(|b| {
                    b.view(
                        now,
                        &self.timings,
                        self.config.version,
                        &self.config.cluster,
                    )
                })
                .collect();
            (state.batches.len(), views)
        };
        Ok(json_response(
            StatusCode::OK,
            &json!({ "from": from, "total": total, "sessions": views }),
        ))
    }

    /// The effective user of a create request: `doAs` wins under impersonation.
    fn proxy_user(&self, call: &Call, body_proxy_user: Option<String>) -> Option<String> {
        if self.config.impersonation {
            call.param("doAs").map(str::to_owned).or(body_proxy_user)
        } else {
            body_proxy_user
        }
    }

    fn check_name(&self, name: &Option<String>, taken: bool) -> Result<(), LivyError> {
        if let Some(name) = name {
            if self.config.version < LivyVersion::V07 {
                return Ok(());
            }
            if name.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    "Rejected, Reason: name must not be a number",
                ));
            }
            if taken {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    &format!("Duplicate session name: {name}"),
                ));
            }
        }
        Ok(())
    }

    fn create_batch(&self, call: &Call) -> Result<Response<Body>, LivyError> {
        let request: BatchRequest = parse_json(&call.body)?;
        if let Some(answer) = erased_int_failure([
            &request.driver_cores,
            &request.executor_cores,
            &request.num_executors,
        ]) {
            return Ok(answer);
        }
        if request.file.as_deref().is_none_or(str::is_empty) {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "Rejected, Reason: requirement failed: File is required.",
            ));
        }
        let proxy_user = self.proxy_user(call, request.proxy_user);
        let fail = request
            .args
            .as_ref()
            .is_some_and(|args| args.iter().any(|a| a == "fail"));
        let mut state = self.state.lock().expect("sim lock");
        let taken = state.batches.values().any(|b| b.name == request.name);
        self.check_name(&request.name, taken)?;
        let id = state.next_batch;
        state.next_batch += 1;
        let now = Instant::now();
        let batch = Batch {
            id,
            name: request.name,
            owner: None,
            proxy_user,
            created: now,
            fail,
            log_lines: self.config.log_lines,
        };
        let view = batch.view(
            now,
            &self.timings,
            self.config.version,
            &self.config.cluster,
        );
        if let Some(journal) = &self.journal {
            journal.created("batch", batch.name.as_deref(), batch.proxy_user.as_deref());
        }
        state.batches.insert(id, batch);
        Ok(created(format!("/batches/{id}"), view))
    }

    fn create_session(&self, call: &Call) -> Result<Response<Body>, LivyError> {
        let raw: Map<String, Value> = parse_json(&call.body)?;
        let request: SessionRequest = parse_json(&call.body)?;
        if let Some(answer) = erased_int_failure([
            &request.driver_cores,
            &request.executor_cores,
            &request.num_executors,
        ]) {
            return Ok(answer);
        }
        let kind = normalize_kind(request.kind.as_deref().unwrap_or("shared"))?;
        let mut resources: Map<String, Value> = raw
            .into_iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "driverMemory"
                        | "driverCores"
                        | "executorMemory"
                        | "executorCores"
                        | "numExecutors"
                        | "queue"
                        | "conf"
                        | "jars"
                        | "pyFiles"
                        | "files"
                        | "archives"
                        | "heartbeatTimeoutInSecond"
                        | "ttl"
                )
            })
            .collect();
        // Echoed as Livy holds them: coerced to strings where it reads strings.
        for (key, value) in [
            (
                "driverMemory",
                request.driver_memory.as_ref().map(|v| json!(v)),
            ),
            (
                "executorMemory",
                request.executor_memory.as_ref().map(|v| json!(v)),
            ),
            ("queue", request.queue.as_ref().map(|v| json!(v))),
            ("ttl", request.ttl.as_ref().map(|v| json!(v))),
            ("conf", request.conf.as_ref().map(|v| json!(v))),
        ] {
            if let Some(value) = value {
                resources.insert(key.into(), value);
            }
        }
        let proxy_user = self.proxy_user(call, request.proxy_user);
        let mut state = self.state.lock().expect("sim lock");
        let taken = state.sessions.values().any(|s| s.name == request.name);
        self.check_name(&request.name, taken)?;
        let id = state.next_session;
        state.next_session += 1;
        let now = Instant::now();
        let session = Session {
            id,
            name: request.name,
            owner: None,
            proxy_user,
            kind: kind.into(),
            created: now,
            resources,
            statements: Vec::new(),
            interpreters: Default::default(),
        };
        let view = session.view(
            now,
            &self.timings,
            self.config.version,
            &self.config.cluster,
        );
        if let Some(journal) = &self.journal {
            journal.created(
                "session",
                session.name.as_deref(),
                session.proxy_user.as_deref(),
            );
        }
        state.sessions.insert(id, session);
        Ok(created(format!("/sessions/{id}"), view))
    }

    /// Looks an id up: all digits means by id, otherwise by name (0.7+).
    fn find<T>(
        &self,
        items: &BTreeMap<u64, T>,
        id: &str,
        name_of: impl Fn(&T) -> Option<&str>,
    ) -> Result<u64, LivyError> {
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
            let key = id.parse().map_err(|_| not_found(id))?;
            return items
                .contains_key(&key)
                .then_some(key)
                .ok_or_else(|| not_found(id));
        }
        if self.config.version < LivyVersion::V07 {
            return Err(not_found(id));
        }
        items
            .iter()
            .find(|(_, item)| name_of(item) == Some(id))
            .map(|(key, _)| *key)
            .ok_or_else(|| not_found(id))
    }

    /// Whom YARN runs `app` as: the proxy user Livy asked for, else Livy's own.
    fn application_user(&self, app: &str) -> Option<String> {
        let state = self.state.lock().expect("sim lock");
        let batches = state.batches.values().filter(|b| b.app_id() == app);
        let batch = batches.map(|b| (&b.proxy_user, &b.owner)).next();
        let session = || {
            let sessions = state.sessions.values().filter(|s| s.app_id() == app);
            sessions.map(|s| (&s.proxy_user, &s.owner)).next()
        };
        let (proxy_user, owner) = batch.or_else(session)?;
        proxy_user.clone().or_else(|| owner.clone())
    }

    fn find_batch(&self, state: &State, id: &str) -> Result<u64, LivyError> {
        self.find(&state.batches, id, |b| b.name.as_deref())
    }

    fn find_session(&self, state: &State, id: &str) -> Result<u64, LivyError> {
        self.find(&state.sessions, id, |s| s.name.as_deref())
    }

    fn with_batch(
        &self,
        id: &str,
        f: impl FnOnce(&Batch, Instant, &Self) -> Result<Response<Body>, LivyError>,
    ) -> Result<Response<Body>, LivyError> {
        let state = self.state.lock().expect("sim lock");
        let key = self.find_batch(&state, id)?;
        f(&state.batches[&key], Instant::now(), self)
    }

    fn with_session(
        &self,
        id: &str,
        f: impl FnOnce(&Session, Instant, &Self) -> Result<Response<Body>, LivyError>,
    ) -> Result<Response<Body>, LivyError> {
        let state = self.state.lock().expect("sim lock");
        let key = self.find_session(&state, id)?;
        f(&state.sessions[&key], Instant::now(), self)
    }
}

/// Scalatra's answer for a path no route of the servlet matches.
fn not_a_route(method: &Method, path: &str) -> Response<Body> {
    let page = format!(
        "Requesting \"{method} {path}\" on servlet \"\" but only have: <ul><li>GET /</li></ul>"
    );
    let mut response = Response::new(body::full(page));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    response
}

/// A session or statement kind by Livy's name for it (`scala` is `spark`).
fn normalize_kind(kind: &str) -> Result<&'static str, LivyError> {
    Ok(match kind {
        "spark" | "scala" => "spark",
        "pyspark" | "python" => "pyspark",
        "sparkr" | "r" => "sparkr",
        "sql" => "sql",
        "shared" => "shared",
        other => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                &format!("Rejected, Reason: Invalid kind: {other}"),
            ))
        }
    })
}

/// A passive server's answer: `307` to the same path and query on `active`.
fn redirect(active: &str, uri: &http::Uri) -> Response<Body> {
    let target = match uri.path_and_query() {
        Some(pq) => format!("{}{}", active.trim_end_matches('/'), pq),
        None => active.to_owned(),
    };
    let mut response = json_response(
        StatusCode::TEMPORARY_REDIRECT,
        &json!({ "msg": "This Livy server is on standby" }),
    );
    if let Ok(location) = HeaderValue::from_str(&target) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    response
}
