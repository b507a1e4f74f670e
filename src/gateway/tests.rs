//! The Livy policy, in process: requests go through [`Gateway::handle`] as a client
//! would send them and reach a fake Livy that records what it is sent and answers
//! as told. No socket, no TLS: each case says exactly what Livy saw.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use super::{ConnInfo, Gateway, Logs, Parts};
use crate::body::{self, Body};
use crate::config::{Config, UpstreamUrl};
use crate::error::RequestError;
use crate::metrics::Metrics;
use crate::state::{Change, Kind, Record, State, StoreError};
use crate::upstream::{Livy, LivyRequest};

const PASSWORD: &str = "pw";
const BASE: &str = "/gateway/default/livy/v1";

/// What the fake Livy saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    target: String,
    headers: HeaderMap,
    body: Value,
}

/// A Livy that records requests and answers each with the next queued answer (or
/// 200 `{}`).
#[derive(Default)]
struct FakeLivy {
    seen: Mutex<Vec<Seen>>,
    answers: Mutex<VecDeque<(StatusCode, Value)>>,
}

impl FakeLivy {
    fn answer(&self, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).unwrap();
        self.answers.lock().unwrap().push_back((status, body));
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Livy for FakeLivy {
    async fn send(&self, request: LivyRequest) -> Result<Response<Body>, RequestError> {
        let bytes = request.body.collect().await.unwrap().to_bytes();
        self.seen.lock().unwrap().push(Seen {
            method: request.method,
            target: request.path_and_query.to_string(),
            headers: request.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        });
        let (status, body) = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((StatusCode::OK, json!({})));
        let mut response = Response::new(body::full(body.to_string()));
        *response.status_mut() = status;
        Ok(response)
    }

    fn origins(&self) -> &[String] {
        &[]
    }
}

/// A gateway in front of a fake Livy, with users alice, bob and admin.
struct Setup {
    gateway: Gateway,
    livy: Arc<FakeLivy>,
    _dir: tempfile::TempDir,
}

fn setup(configure: impl FnOnce(&mut Config)) -> Setup {
    setup_with_state(configure, |state| state)
}

/// [`setup`], with the stores changed by `stores`.
fn setup_with_state(
    configure: impl FnOnce(&mut Config),
    stores: impl FnOnce(State) -> State,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let users: String = ["alice", "bob", "admin"]
        .iter()
        .map(|u| format!("{u}:{hash}\n"))
        .collect();
    std::fs::write(dir.path().join("users.htpasswd"), users).unwrap();
    let mut config = Config::default();
    config.auth.htpasswd = Some(dir.path().join("users.htpasswd"));
    config.auth.admins = vec!["admin".into()];
    config.server.data_dir = dir.path().join("data");
    config.livy.upstreams = vec![UpstreamUrl::parse("http://livy.internal:8998").unwrap()];
    config.rate_limit.per_ip_rps = 0.0;
    config.rate_limit.per_user_rps = 0.0;
    config.rate_limit.create_per_user_per_min = 0;
    configure(&mut config);
    let livy = Arc::new(FakeLivy::default());
    let parts = Parts {
        state: stores(State::open(&config, &Arc::new(Metrics::new())).unwrap()),
        livy: livy.clone(),
        logs: Logs::default(),
        metrics: Arc::new(Metrics::new()),
    };
    Setup {
        gateway: Gateway::new(&config, parts).unwrap(),
        livy,
        _dir: dir,
    }
}

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Setup {
    /// `method path` as `user`, with a JSON `body` (empty: none).
    async fn call(&self, user: &str, method: Method, path: &str, body: &str) -> Answer {
        self.call_with(user, method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        user: &str,
        method: Method,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"));
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{BASE}{path}"))
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let conn = ConnInfo::new(
            "192.0.2.10:50000".parse().unwrap(),
            "192.0.2.1:8443".parse().unwrap(),
        );
        let response = self.gateway.handle(request, &conn).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// alice creates a batch with `body`; Livy answers with id `id`.
    async fn create(&self, user: &str, id: u64, body: Value) -> Answer {
        self.livy
            .answer(201, json!({ "id": id, "name": body.get("name") }));
        self.call(user, Method::POST, "/batches", &body.to_string())
            .await
    }
}

/// The decoded `name=value` pairs of a query.
fn params(target: &str) -> Vec<(String, String)> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(n), decode(v))
        })
        .collect()
}

#[tokio::test]
async fn a_creation_runs_as_the_caller_and_records_its_owner() {
    let s = setup(|_| {});
    let r = s.create("alice", 7, json!({"file": "a.jar"})).await;
    assert_eq!(r.status, 201);
    let seen = s.livy.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["proxyUser"], "alice");
    assert_eq!(params(&seen[0].target), [("doAs".into(), "alice".into())]);
    // bob cannot see it, and Livy is not asked.
    let r = s.call("bob", Method::GET, "/batches/7", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"msg": "Session '7' not found."}));
    assert_eq!(s.livy.seen().len(), 1);
    // alice can, as herself, once Livy's view confirms her record (this fake
    // numbers no connections, so it is asked every time).
    let r = s.call("alice", Method::GET, "/batches/7/log", "").await;
    assert_eq!(r.status, 200);
    let seen = s.livy.seen();
    assert_eq!(seen[1].target, "/batches/7?doAs=alice");
    assert_eq!(seen[2].target, "/batches/7/log?doAs=alice");
}

#[tokio::test]
async fn naming_someone_else_is_forbidden_except_for_administrators() {
    let s = setup(|_| {});
    let r = s
        .create("alice", 1, json!({"file": "a.jar", "proxyUser": "bob"}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], "forbidden");
    assert!(s.livy.seen().is_empty(), "nothing reached Livy");
    let r = s
        .create("admin", 2, json!({"file": "a.jar", "proxyUser": "carol"}))
        .await;
    assert_eq!(r.status, 201);
    let seen = s.livy.seen();
    assert_eq!(seen[0].body["proxyUser"], "carol");
    assert_eq!(params(&seen[0].target), [("doAs".into(), "carol".into())]);
    // The record names carol: she owns it, admin acted for her.
    let r = s.call("alice", Method::DELETE, "/batches/2", "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn hostile_create_bodies_never_reach_livy() {
    let s = setup(|_| {});
    for body in [
        r#"{"file":"a","proxyUser":"alice","proxyUser":"bob"}"#,
        r#"{"file":"a","conf":{"x":"1","x":"2"}}"#,
        r#"["file"]"#,
        r#"{"file":"a"} {"file":"b"}"#,
        "not json",
        "",
    ] {
        let r = s.call("alice", Method::POST, "/batches", body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.body["error"], "bad_body", "{body}");
    }
    assert!(s.livy.seen().is_empty());
}

#[tokio::test]
async fn identity_parameters_and_headers_are_removed() {
    let s = setup(|_| {});
    s.create("alice", 3, json!({"file": "a.jar"})).await;
    let r = s
        .call_with(
            "alice",
            Method::GET,
            "/batches/3?from=0&doAs=bob&%64oAs=eve&DOAS=x&proxyUser=m&user.name=y&_method=DELETE",
            "",
            &[
                ("x-forwarded-user", "admin"),
                ("remote-user", "admin"),
                ("x-http-method-override", "DELETE"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let seen = &s.livy.seen()[1];
    assert_eq!(seen.method, Method::GET);
    assert_eq!(
        params(&seen.target),
        [
            ("from".to_string(), "0".to_string()),
            ("doAs".into(), "alice".into())
        ]
    );
    for forged in [
        "x-forwarded-user",
        "remote-user",
        "x-http-method-override",
        "authorization",
    ] {
        assert!(!seen.headers.contains_key(forged), "{forged}");
    }
    assert_eq!(seen.headers["x-forwarded-for"], "192.0.2.10");
    assert_eq!(seen.headers["x-forwarded-host"], "192.0.2.1:8443");
}

#[tokio::test]
async fn listings_show_each_user_their_own_work_only() {
    let s = setup(|_| {});
    s.create("alice", 1, json!({"file": "a"})).await;
    s.create("bob", 2, json!({"file": "b"})).await;
    let listing = json!({"from": 0, "total": 5, "sessions": [
        {"id": 1, "state": "running"},
        {"id": 2, "state": "running"},
        {"id": 3, "proxyUser": "alice", "state": "dead"},
        {"id": 4, "proxyUser": "bob", "state": "dead"},
        {"id": 5, "state": "success"},
    ]});
    s.livy.answer(200, listing.clone());
    let r = s
        .call("alice", Method::GET, "/batches?from=1&size=5", "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["from"], 1);
    let ids: Vec<u64> = r.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3], "page 2 of alice's (1, 3)");
    // Livy was asked for everything, as alice.
    let seen = s.livy.seen();
    let asked = params(&seen[2].target);
    assert!(asked.contains(&("from".into(), "0".into())));
    assert!(asked.contains(&("doAs".into(), "alice".into())));
    // The owner learnt from the listing's view: batch 4 is bob's.
    let r = s.call("alice", Method::GET, "/batches/4", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(s.livy.seen().len(), 3);
    // Administrators get Livy's listing as it is.
    s.livy.answer(200, listing.clone());
    let r = s.call("admin", Method::GET, "/batches", "").await;
    assert_eq!(r.body, listing);
}

#[tokio::test]
async fn an_unknown_id_is_looked_up_once_then_hidden_or_served() {
    let s = setup(|_| {});
    // Livy 0.7 reports the owner in the view.
    s.livy.answer(
        200,
        json!({"id": 9, "proxyUser": "bob", "state": "running"}),
    );
    let r = s.call("alice", Method::DELETE, "/sessions/9", "").await;
    assert_eq!(r.status, 404);
    let seen = s.livy.seen();
    assert_eq!(seen.len(), 1, "only the look-up, never the DELETE");
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].target, "/sessions/9?doAs=alice");
    // Learnt: bob's own request needs no look-up.
    let r = s.call("bob", Method::GET, "/sessions/9/state", "").await;
    assert_eq!(r.status, 200);
    let seen = s.livy.seen();
    assert_eq!(seen.len(), 3, "a confirmation, then the request");
    assert_eq!(seen[2].target, "/sessions/9/state?doAs=bob");
    // A view naming no owner (Livy 0.5) hides the resource.
    s.livy.answer(200, json!({"id": 10, "state": "running"}));
    let r = s.call("alice", Method::GET, "/batches/10", "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn names_resolve_to_ids_for_their_owner_only() {
    let s = setup(|_| {});
    s.create("alice", 12, json!({"file": "a", "name": "nightly"}))
        .await;
    let r = s
        .call("alice", Method::GET, "/batches/nightly/log", "")
        .await;
    assert_eq!(r.status, 200);
    let seen = s.livy.seen();
    assert_eq!(seen[1].target, "/batches/12?doAs=alice");
    assert_eq!(seen[2].target, "/batches/12/log?doAs=alice");
    let r = s.call("bob", Method::GET, "/batches/nightly", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"msg": "Session 'nightly' not found."}));
}

#[tokio::test]
async fn other_livy_paths_are_for_administrators() {
    let s = setup(|_| {});
    // Livy's metrics servlet (its UI has its own rules: `livy_ui.rs`).
    let r = s.call("alice", Method::GET, "/metrics", "").await;
    assert_eq!(r.status, 404);
    assert!(s.livy.seen().is_empty());
    let r = s.call("admin", Method::GET, "/metrics", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(s.livy.seen()[0].target, "/metrics?doAs=admin");
    let r = s.call("alice", Method::GET, "/version", "").await;
    assert_eq!(r.status, 200, "open to everyone");
}

#[tokio::test]
async fn a_deleted_resource_is_forgotten() {
    let s = setup(|_| {});
    s.create("alice", 4, json!({"file": "a"})).await;
    s.livy.answer(200, json!({"msg": "deleted"}));
    let r = s.call("alice", Method::DELETE, "/batches/4", "").await;
    assert_eq!(r.status, 200);
    // Unknown again: the next request asks Livy for its owner.
    s.livy.answer(404, json!({"msg": "Session '4' not found."}));
    let r = s.call("alice", Method::GET, "/batches/4", "").await;
    assert_eq!(r.status, 404);
    let seen = s.livy.seen();
    assert_eq!(seen.last().unwrap().target, "/batches/4?doAs=alice");
}

#[tokio::test]
async fn the_csrf_header_is_injected_into_state_changes_only() {
    let s = setup(|c| c.livy.csrf_header = Some(http::HeaderName::from_static("x-requested-by")));
    s.create("alice", 5, json!({"file": "a"})).await;
    s.call("alice", Method::GET, "/batches/5", "").await;
    let seen = s.livy.seen();
    assert_eq!(seen[0].headers["x-requested-by"], "livy-gateway");
    assert!(!seen[1].headers.contains_key("x-requested-by"));
}

#[tokio::test]
async fn identity_none_asserts_nothing_but_still_strips() {
    let s = setup(|c| c.livy.identity = crate::config::IdentityMode::None);
    let r = s.call("admin", Method::GET, "/batches?doAs=bob", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(s.livy.seen()[0].target, "/batches");
}

/// A store that has lost its backend: every operation fails.
struct Down;

#[async_trait]
impl crate::state::SessionStore for Down {
    async fn create(&self, _: &crate::auth::Identity) -> Result<String, StoreError> {
        Err(StoreError("unreachable".into()))
    }
    async fn touch(&self, _: &str) -> Result<Option<crate::auth::Identity>, StoreError> {
        Err(StoreError("unreachable".into()))
    }
    async fn remove(&self, _: &str) -> Result<(), StoreError> {
        Err(StoreError("unreachable".into()))
    }
    async fn remove_user(&self, _: &str) -> Result<(), StoreError> {
        Err(StoreError("unreachable".into()))
    }
    fn maintain(&self) -> Option<usize> {
        None
    }
}

#[async_trait]
impl crate::state::OwnershipStore for Down {
    async fn get(&self, _: Kind, _: u64) -> Result<Option<Record>, StoreError> {
        Err(StoreError("unreachable".into()))
    }
    async fn get_many(&self, _: Kind, _: &[u64]) -> Result<Vec<Option<Record>>, StoreError> {
        Err(StoreError("unreachable".into()))
    }
    async fn find_by_name(&self, _: Kind, _: &str) -> Result<Option<(u64, Record)>, StoreError> {
        Err(StoreError("unreachable".into()))
    }
    async fn apply(&self, _: Vec<Change>) -> Result<(), StoreError> {
        Err(StoreError("unreachable".into()))
    }
    async fn export(&self) -> Result<Vec<(Kind, u64, Record)>, StoreError> {
        Err(StoreError("unreachable".into()))
    }
}

#[tokio::test]
async fn a_failing_store_fails_closed_with_503() {
    let s = setup_with_state(
        |_| {},
        |state| State {
            sessions: Arc::new(Down),
            ..state
        },
    );
    let r = s.call("alice", Method::GET, "/batches", "").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["error"], "state_unavailable");
    assert!(s.livy.seen().is_empty());

    let s = setup_with_state(
        |_| {},
        |state| State {
            ownership: Arc::new(Down),
            ..state
        },
    );
    for path in ["/batches/3", "/batches/nightly"] {
        let r = s.call("alice", Method::GET, path, "").await;
        assert_eq!(r.status, 503, "{path}");
    }
    s.livy
        .answer(200, json!({"from": 0, "total": 0, "sessions": []}));
    let r = s.call("alice", Method::GET, "/batches", "").await;
    assert_eq!(
        r.status, 503,
        "a listing cannot be narrowed without the records"
    );
    // Administrators need no records: they are served.
    let r = s.call("admin", Method::GET, "/batches/3", "").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_record_is_forgotten_when_livy_no_longer_has_its_resource() {
    let s = setup(|_| {});
    assert_eq!(
        s.create("alice", 7, json!({"file": "a.jar"})).await.status,
        201
    );
    assert_eq!(
        s.create("alice", 8, json!({"file": "b.jar"})).await.status,
        201
    );
    let ownership = s.gateway.state.ownership.clone();
    let owner = |id| {
        let ownership = ownership.clone();
        async move {
            let record = ownership.get(Kind::Batch, id).await.unwrap();
            record.map(|r| r.owner)
        }
    };
    // A 404 for a part of the resource says nothing about the resource (Livy's
    // view, asked first, confirms alice's record).
    s.livy.answer(200, json!({"id": 7, "proxyUser": "alice"}));
    s.livy.answer(404, json!({"msg": "no log"}));
    assert_eq!(
        s.call("alice", Method::GET, "/batches/7/log", "")
            .await
            .status,
        404
    );
    assert_eq!(owner(7).await.as_deref(), Some("alice"));
    // A 404 for the resource itself: Livy has forgotten it, and so does the gateway.
    s.livy.answer(404, json!({"msg": "Session '7' not found."}));
    assert_eq!(
        s.call("alice", Method::GET, "/batches/7", "").await.status,
        404
    );
    assert_eq!(owner(7).await, None);
    assert_eq!(owner(8).await.as_deref(), Some("alice"), "others are kept");
}

/// Tokens are principals' names; `bad` is refused; every good one is answered
/// with the reply `proof`.
struct FakeAcceptor;

#[async_trait]
impl crate::auth::TicketAcceptor for FakeAcceptor {
    async fn accept(
        &self,
        token: Vec<u8>,
    ) -> Result<crate::auth::negotiate::Ticket, crate::auth::TicketError> {
        match String::from_utf8(token).unwrap().as_str() {
            "bad" => Err(crate::auth::TicketError::Refused("a bad token".into())),
            principal => Ok(crate::auth::negotiate::Ticket {
                principal: principal.into(),
                reply: Some(b"proof".to_vec()),
            }),
        }
    }
    async fn ready(&self) -> Result<(), crate::auth::TicketError> {
        Ok(())
    }
    async fn probe(&self) -> Result<String, crate::auth::TicketError> {
        Ok("fake".into())
    }
}

/// A directory where carol is an administrator by group and gone has left; it
/// knows no one else (and checks no passwords).
struct FakeDirectory;

#[async_trait]
impl crate::auth::CredentialVerifier for FakeDirectory {
    async fn verify(
        &self,
        _: &crate::auth::basic::Credentials,
    ) -> Result<crate::auth::Verdict, crate::auth::VerifyError> {
        Ok(crate::auth::Verdict::Unknown)
    }
    fn concurrency(&self) -> usize {
        2
    }
    async fn lookup(&self, user: &str) -> Result<crate::auth::Lookup, crate::auth::VerifyError> {
        Ok(match user {
            "carol" => crate::auth::Lookup::Found(crate::auth::Identity::from_directory(
                "carol",
                vec!["livy-admins".into()],
            )),
            "gone" => crate::auth::Lookup::Gone,
            _ => crate::auth::Lookup::Unsupported,
        })
    }
}

#[tokio::test]
async fn negotiate_logins_map_realms_take_directory_groups_and_prove_the_gateway() {
    let mut config = Config::default();
    config.auth.admin_groups = vec!["livy-admins".into()];
    config.login.max_failures_per_pair = 100;
    let mut s = setup(|c| c.auth.admin_groups = config.auth.admin_groups.clone());
    let lockouts = s.gateway.state.lockouts.clone();
    s.gateway.auth =
        crate::auth::Authenticator::new(Arc::new(FakeDirectory), lockouts, &config.auth)
            .with_tickets(Some(crate::auth::Tickets {
                acceptor: Arc::new(FakeAcceptor),
                realms: crate::auth::Realms::new(&["EXAMPLE.ORG".into()]),
            }));
    // As [auth.kerberos] would have it (without a keytab to read).
    s.gateway
        .settings
        .challenges
        .insert(0, http::HeaderValue::from_static("Negotiate"));
    let send = |token: &str, body: &str| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(token);
        let request = Request::builder()
            .method(if body.is_empty() {
                Method::GET
            } else {
                Method::POST
            })
            .uri(format!("{BASE}/batches"))
            .header("authorization", format!("Negotiate {encoded}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let conn = ConnInfo::new(
            "192.0.2.10:50000".parse().unwrap(),
            "192.0.2.1:8443".parse().unwrap(),
        );
        let gateway = &s.gateway;
        async move { gateway.handle(request, &conn).await }
    };

    // carol: her directory groups make her an administrator, who may run as bob.
    s.livy.answer(201, json!({"id": 1}));
    let r = send("carol@EXAMPLE.ORG", r#"{"file":"a.jar","proxyUser":"bob"}"#).await;
    assert_eq!(r.status(), 201);
    let headers = r.headers();
    assert_eq!(headers["www-authenticate"], "Negotiate cHJvb2Y=");
    assert!(headers["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("JSESSIONID="));
    assert_eq!(s.livy.seen()[0].body["proxyUser"], "bob");
    // erin: no directory entry to speak of, so no groups, and not an administrator.
    let r = send("erin@EXAMPLE.ORG", r#"{"file":"a.jar","proxyUser":"bob"}"#).await;
    assert_eq!(r.status(), 403);
    s.livy
        .answer(200, json!({"from": 0, "total": 0, "sessions": []}));
    assert_eq!(send("erin@EXAMPLE.ORG", "").await.status(), 200);
    let asserted = params(&s.livy.seen().last().unwrap().target);
    assert!(
        asserted.contains(&("doAs".into(), "erin".into())),
        "{asserted:?}"
    );
    // Gone from the directory, another realm, an instance, a refused token.
    assert_eq!(send("gone@EXAMPLE.ORG", "").await.status(), 403);
    for refused in ["mallory@OTHER.ORG", "carol/admin@EXAMPLE.ORG", "bad"] {
        let r = send(refused, "").await;
        assert_eq!(r.status(), 401, "{refused}");
        let offered: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
        assert_eq!(offered.len(), 2, "Negotiate and Basic offered: {offered:?}");
    }
    assert_eq!(s.livy.seen().len(), 2, "nothing refused reached Livy");
}

#[tokio::test]
async fn an_owner_record_the_store_cannot_save_is_tried_again_then_counted() {
    let s = setup_with_state(
        |_| {},
        |state| State {
            ownership: Arc::new(Down),
            ..state
        },
    );
    let r = s.create("admin", 9, json!({"file": "a.jar"})).await;
    assert_eq!(r.status, 201, "Livy made it: the answer says so");
    assert_eq!(s.gateway.metrics.ownership_unsaved.get(), 1);
}

#[tokio::test]
async fn livys_owner_decides_over_a_record_it_contradicts() {
    let s = setup(|_| {});
    assert_eq!(
        s.create("alice", 4, json!({"file": "a.jar"})).await.status,
        201
    );
    // Livy (restarted) reports the id as bob's: alice's view is hidden and the
    // record corrected.
    s.livy.answer(
        200,
        json!({"id": 4, "proxyUser": "bob", "state": "running"}),
    );
    let r = s.call("alice", Method::GET, "/batches/4", "").await;
    assert_eq!(r.status, 404);
    let record = s.gateway.state.ownership.get(Kind::Batch, 4).await.unwrap();
    assert_eq!(record.unwrap().owner, "bob");

    // A DELETE is confirmed with a GET first; with another owner, only the GET
    // reaches Livy.
    assert_eq!(
        s.create("alice", 5, json!({"file": "a.jar"})).await.status,
        201
    );
    let before = s.livy.seen().len();
    s.livy.answer(200, json!({"id": 5, "proxyUser": "bob"}));
    let r = s.call("alice", Method::DELETE, "/batches/5", "").await;
    assert_eq!(r.status, 404);
    let seen = s.livy.seen();
    assert_eq!(seen.len(), before + 1);
    assert_eq!(seen[before].method, Method::GET);
    assert_eq!(seen[before].target, "/batches/5?doAs=alice");

    // Gone from Livy: forgotten, 404. The owner's own: GET, then the DELETE.
    assert_eq!(
        s.create("alice", 6, json!({"file": "a.jar"})).await.status,
        201
    );
    s.livy.answer(404, json!({"msg": "Session '6' not found."}));
    let r = s.call("alice", Method::DELETE, "/batches/6", "").await;
    assert_eq!(r.status, 404);
    assert!(s
        .gateway
        .state
        .ownership
        .get(Kind::Batch, 6)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.create("alice", 7, json!({"file": "a.jar"})).await.status,
        201
    );
    s.livy.answer(200, json!({"id": 7, "proxyUser": "alice"}));
    s.livy.answer(200, json!({"msg": "deleted"}));
    let r = s.call("alice", Method::DELETE, "/batches/7", "").await;
    assert_eq!(r.status, 200);
    let seen = s.livy.seen();
    let last: Vec<_> = seen[seen.len() - 2..]
        .iter()
        .map(|s| s.method.clone())
        .collect();
    assert_eq!(last, [Method::GET, Method::DELETE]);
}

#[tokio::test]
async fn a_cross_site_state_change_is_refused_before_authentication() {
    let s = setup(|c| c.livy.csrf_header = Some(http::HeaderName::from_static("x-requested-by")));
    for headers in [
        &[("origin", "null")][..],
        &[("origin", "https://evil.example")],
        &[("sec-fetch-site", "cross-site")],
        &[
            ("origin", "https://192.0.2.1:8443"),
            ("sec-fetch-site", "cross-site"),
        ],
    ] {
        let r = s
            .call_with(
                "nobody",
                Method::POST,
                "/batches",
                r#"{"file":"a"}"#,
                headers,
            )
            .await;
        assert_eq!(r.status, 403, "{headers:?}");
        assert_eq!(r.body["error"], "cross_origin");
    }
    assert!(s.livy.seen().is_empty());
    // The gateway's own origin (the address the connection reached, here).
    let own = [
        ("origin", "https://192.0.2.1:8443"),
        ("sec-fetch-site", "same-origin"),
    ];
    s.livy.answer(201, json!({"id": 1}));
    let r = s
        .call_with("alice", Method::POST, "/batches", r#"{"file":"a"}"#, &own)
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(s.livy.seen()[0].headers["x-requested-by"], "livy-gateway");
}
