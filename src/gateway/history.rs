//! The history server phase, in place of authorize → forward → respond for
//! `/gateway/<topology>/sparkhistory/...` (`[yarn] historyserver`): finished
//! applications' Spark UI, each user seeing only their own.
//!
//! Whose application is whose: the owner of the Livy batch or session whose
//! `appId` it is, as learnt from Livy's views ([`crate::yarn::apps`]); for one the
//! gateway never saw, the history server's own record (`attempts[].sparkUser` of
//! `/api/v1/applications/<application>`). Anyone else is answered 404, as for an
//! application that does not exist, before any of its pages is asked for.
//! Administrators see every application; someone else's pages come sandboxed,
//! as the YARN routes' do. The application list's REST answer is narrowed to the
//! caller's (its `limit` applied after narrowing, so others' applications never
//! crowd out the caller's); executor log links in REST answers are pointed at the
//! gateway's NodeManager route.
//!
//! Requests carry `X-Forwarded-Context: /gateway/<topology>/sparkhistory`, from
//! which Spark writes the gateway's prefix into its links, scripts and REST calls;
//! links still absolute are rewritten as the YARN pages' are. Read-only: `GET`
//! and `HEAD`.

use http::header::{HeaderValue, CONTENT_LENGTH};
use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::Value;

use super::context::{ConnInfo, RequestContext};
use super::relay::{has_content_type, page_response, PageRequest};
use super::respond::buffer;
use super::Gateway;
use crate::auth::Principal;
use crate::body::{self, Body};
use crate::error::RequestError;
use crate::route::{HistoryRoute, HistoryTarget};
use crate::upstream::Upstream;
use crate::yarn::links::{Links, Source};
use crate::yarn::Yarn;

/// The service a navigation's error page names, and the page it links to.
const HISTORY_SERVER: (&str, &str) = ("The Spark History Server", "/sparkhistory/");

impl Gateway {
    /// Serves one history server request for `principal`.
    pub(super) async fn history(
        &self,
        parts: http::request::Parts,
        route: HistoryRoute,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let yarn = self.yarn.as_ref().ok_or(RequestError::NotFound)?;
        let server = yarn.historyserver().ok_or(RequestError::NotFound)?;
        ctx.page_service = Some(HISTORY_SERVER);
        ctx.action = Some(match &route.target {
            HistoryTarget::Home | HistoryTarget::Applications => "history.list",
            HistoryTarget::Static => "history.static",
            HistoryTarget::Application(_) => "history.app",
        });
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            return Err(RequestError::MethodNotAllowed);
        }
        let own = match &route.target {
            HistoryTarget::Application(application) => {
                ctx.resource = Some(application.clone());
                // An application no one owns (the history server has no record
                // of it) is missing for administrators too.
                let owner = self
                    .history_owner(yarn, &server, application, principal, conn, ctx)
                    .await?;
                let own = *owner == *principal.user;
                if !principal.admin && !own {
                    return Err(RequestError::NotFound);
                }
                own
            }
            _ => true,
        };
        let narrowed = route.target == HistoryTarget::Applications && !principal.admin;
        let page = PageRequest {
            method: parts.method,
            path: &route.path,
            query: route.query.as_deref(),
            headers: parts.headers,
            context: HeaderValue::from_str(yarn.links.history_prefix()).ok(),
            withheld: if narrowed { &["limit"] } else { &[] },
        };
        let response = self
            .send_page(server.as_ref(), page, &principal.user, conn, ctx)
            .await?;
        let json = response.status() == StatusCode::OK
            && has_content_type(response.headers(), "application/json");
        let response = if json && narrowed {
            let limit = query_param(route.query.as_deref(), "limit");
            self.rewrite_json(response, |apps| {
                narrow(apps, yarn, &principal.user, limit);
            })
            .await?
        } else if json && is_executors(&route.path) {
            self.rewrite_json(response, |executors| {
                executor_log_links(executors, &yarn.links);
            })
            .await?
        } else {
            response
        };
        page_response(
            response,
            &yarn.links,
            Source::HistoryServer,
            own,
            Vec::new(),
        )
    }

    /// Whose `application` is: remembered from a view the gateway relayed, or
    /// else the history server's record of it (`sparkUser` of every attempt),
    /// then remembered; 404 when the history server has no such application.
    async fn history_owner(
        &self,
        yarn: &Yarn,
        server: &Upstream,
        application: &str,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<String, RequestError> {
        if let Some(owner) = yarn.apps.owner(application) {
            return Ok(owner);
        }
        let path = format!("/api/v1/applications/{application}");
        let page = PageRequest {
            method: Method::GET,
            path: &path,
            query: None,
            headers: HeaderMap::new(),
            context: HeaderValue::from_str(yarn.links.history_prefix()).ok(),
            withheld: &[],
        };
        let response = self
            .send_page(server, page, &principal.user, conn, ctx)
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(RequestError::NotFound),
            _ => return Err(RequestError::UpstreamFailed),
        }
        let bytes = buffer(response.into_body(), self.settings.max_buffered_response).await?;
        let record: Value =
            serde_json::from_slice(&bytes).map_err(|_| RequestError::UpstreamFailed)?;
        let owner = spark_user(&record).ok_or(RequestError::NotFound)?;
        yarn.apps.learn(application, &owner);
        Ok(owner)
    }

    /// `response`'s JSON body changed by `edit`.
    async fn rewrite_json(
        &self,
        response: Response<Body>,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Response<Body>, RequestError> {
        let (mut head, body) = response.into_parts();
        let bytes = buffer(body, self.settings.max_buffered_response).await?;
        let mut answer: Value =
            serde_json::from_slice(&bytes).map_err(|_| RequestError::UpstreamFailed)?;
        edit(&mut answer);
        let bytes = answer.to_string();
        head.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        Ok(Response::from_parts(head, body::full(bytes)))
    }
}

/// The user an application ran as, by the history server's record of it: the
/// `sparkUser` all its attempts agree on (none if they do not).
fn spark_user(record: &Value) -> Option<String> {
    let attempts = record.get("attempts")?.as_array()?;
    let mut users = attempts
        .iter()
        .map(|attempt| attempt.get("sparkUser").and_then(Value::as_str));
    let first = users.next()??;
    users
        .all(|user| user == Some(first))
        .then(|| first.to_owned())
}

/// The application list narrowed to `user`'s (the gateway's record of an owner
/// first, the history server's `sparkUser` otherwise), then cut to `limit`.
fn narrow(apps: &mut Value, yarn: &Yarn, user: &str, limit: Option<usize>) {
    let Some(list) = apps.as_array_mut() else {
        *apps = Value::Array(Vec::new());
        return;
    };
    list.retain(|app| {
        let owner = app
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| yarn.apps.owner(id))
            .or_else(|| spark_user(app));
        owner.as_deref() == Some(user)
    });
    if let Some(limit) = limit {
        list.truncate(limit);
    }
}

/// Whether a REST path answers executors (whose log links point at NodeManagers).
fn is_executors(path: &str) -> bool {
    path.starts_with("/api/v1/")
        && (path.ends_with("/executors") || path.ends_with("/allexecutors"))
}

/// Executors' log links (`executorLogs`) pointed at the gateway's routes where it
/// serves them; others are left as they are.
fn executor_log_links(executors: &mut Value, links: &Links) {
    let Some(executors) = executors.as_array_mut() else {
        return;
    };
    for executor in executors {
        let Some(logs) = executor
            .get_mut("executorLogs")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for link in logs.values_mut() {
            if let Some(path) = link.as_str().and_then(|url| links.path_for(url)) {
                *link = Value::String(path);
            }
        }
    }
}

/// A numeric query parameter's value.
fn query_param(query: Option<&str>, name: &str) -> Option<usize> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_user_is_the_one_every_attempt_names() {
        let record = |users: &[&str]| {
            let attempts: Vec<Value> = users.iter().map(|u| json!({"sparkUser": u})).collect();
            json!({"id": "application_1_1", "attempts": attempts})
        };
        assert_eq!(spark_user(&record(&["alice"])).as_deref(), Some("alice"));
        assert_eq!(
            spark_user(&record(&["alice", "alice"])).as_deref(),
            Some("alice")
        );
        assert_eq!(spark_user(&record(&["alice", "bob"])), None);
        assert_eq!(spark_user(&record(&[])), None);
        assert_eq!(spark_user(&json!({"id": "application_1_1"})), None);
    }

    #[test]
    fn executors_rest_paths_are_recognised() {
        assert!(is_executors(
            "/api/v1/applications/application_1_1/1/allexecutors"
        ));
        assert!(is_executors(
            "/api/v1/applications/application_1_1/executors"
        ));
        assert!(!is_executors("/history/application_1_1/1/executors"));
        assert!(!is_executors(
            "/api/v1/applications/application_1_1/environment"
        ));
    }

    #[test]
    fn a_limit_is_read_from_the_query() {
        assert_eq!(
            query_param(Some("status=completed&limit=20"), "limit"),
            Some(20)
        );
        assert_eq!(query_param(Some("limit=x"), "limit"), None);
        assert_eq!(query_param(None, "limit"), None);
    }
}
