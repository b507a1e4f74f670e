//! Collection listings (`GET /batches`, `GET /sessions`) narrowed to the caller's own
//! resources, with `from`, `size` and `total` consistent with the narrowed list.
//!
//! The gateway asks Livy for the whole collection, looks up every view's record in
//! one batch, decides the owner of each view ([`view_owner`]), and pages the
//! caller's part itself.

use serde_json::{json, Value};

use crate::error::RequestError;
use crate::state::{Kind, OwnershipStore, Record};

/// Livy's default page size.
const DEFAULT_SIZE: usize = 100;

/// How many items the gateway asks Livy for when it filters a listing.
pub const FETCH_ALL: &str = "1000000";

/// A client's `from`/`size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub from: usize,
    pub size: usize,
}

/// Reads `from` and `size` as Livy does (defaults 0 and 100).
pub fn page(query: Option<&str>) -> Result<Page, RequestError> {
    let read = |name: &str, default: usize| -> Result<usize, RequestError> {
        match super::query::param(query, name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(|n| n.max(0) as usize)
                .map_err(|_| RequestError::BadQuery(format!("{name} must be an integer"))),
        }
    };
    Ok(Page {
        from: read("from", 0)?,
        size: read("size", DEFAULT_SIZE)?,
    })
}

/// Whom a Livy view belongs to: its `proxyUser` if Livy reports one (0.6+), else the
/// gateway's record, else Livy's `owner`.
pub fn view_owner(view: &Value, record: Option<&Record>) -> Option<String> {
    let field = |name: &str| {
        view.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    field("proxyUser")
        .or_else(|| record.map(|r| r.owner.clone()))
        .or_else(|| field("owner"))
}

/// Ownership learnt from a view that names its `proxyUser`, where it differs from
/// (or is missing in) what the gateway has, `known`.
pub fn learnt(view: &Value, known: Option<&Record>) -> Option<(u64, Record)> {
    let id = view.get("id")?.as_u64()?;
    let proxy_user = view.get("proxyUser")?.as_str().filter(|s| !s.is_empty())?;
    let record = Record {
        owner: proxy_user.to_owned(),
        name: view.get("name").and_then(Value::as_str).map(str::to_owned),
    };
    (known != Some(&record)).then_some((id, record))
}

/// A listing narrowed to one user.
pub struct Narrowed {
    /// The JSON body for the client.
    pub body: Vec<u8>,
    /// Ownership learnt from the views, to be stored.
    pub learned: Vec<(u64, Record)>,
}

/// The caller's page of a Livy listing, and ownership learnt on the way. The
/// records of every listed id are looked up together, in one round trip.
pub async fn narrow(
    body: &[u8],
    user: &str,
    kind: Kind,
    store: &dyn OwnershipStore,
    page: Page,
) -> Result<Narrowed, RequestError> {
    let listing: Value = serde_json::from_slice(body).map_err(|_| RequestError::UpstreamFailed)?;
    let views = listing
        .get("sessions")
        .and_then(Value::as_array)
        .ok_or(RequestError::UpstreamFailed)?;
    let ids: Vec<u64> = views
        .iter()
        .map(|view| view.get("id").and_then(Value::as_u64).unwrap_or(u64::MAX))
        .collect();
    let records = store.get_many(kind, &ids).await?;
    let mut learned = Vec::new();
    let mut own = Vec::new();
    for (view, record) in views.iter().zip(&records) {
        if let Some(l) = learnt(view, record.as_ref()) {
            learned.push(l);
        }
        if view_owner(view, record.as_ref()).as_deref() == Some(user) {
            own.push(view);
        }
    }
    let total = own.len();
    let page_items: Vec<&Value> = own.into_iter().skip(page.from).take(page.size).collect();
    let narrowed = json!({ "from": page.from, "total": total, "sessions": page_items });
    Ok(Narrowed {
        body: narrowed.to_string().into_bytes(),
        learned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::local::ownership::RedbOwnershipStore;
    use crate::state::Change;

    #[tokio::test]
    async fn listing_keeps_only_the_callers_views_and_pages_them() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            RedbOwnershipStore::open(dir.path(), std::time::Duration::from_secs(86_400)).unwrap();
        let alices = |id| {
            (
                id,
                Record {
                    owner: "alice".into(),
                    name: None,
                },
            )
        };
        store
            .apply(vec![Change::Put(Kind::Batch, vec![alices(1), alices(5)])])
            .await
            .unwrap();
        let body = json!({"from":0,"total":6,"sessions":[
            {"id":0,"state":"dead"},
            {"id":1,"state":"success"},
            {"id":2,"proxyUser":"alice","state":"running"},
            {"id":3,"proxyUser":"bob","state":"running"},
            {"id":4,"proxyUser":null,"owner":"alice","state":"running"},
            {"id":5,"proxyUser":"bob","state":"running"},
        ]})
        .to_string();
        let all = Page { from: 0, size: 100 };
        let Narrowed { body: out, learned } =
            narrow(body.as_bytes(), "alice", Kind::Batch, &store, all)
                .await
                .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let ids: Vec<u64> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_u64().unwrap())
            .collect();
        assert_eq!(
            ids,
            [1, 2, 4],
            "Livy's proxyUser wins over a stale record (5)"
        );
        assert_eq!(v["total"], 3);
        assert_eq!(
            learned.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [2, 3, 5]
        );

        let Narrowed { body: out, .. } = narrow(
            body.as_bytes(),
            "alice",
            Kind::Batch,
            &store,
            Page { from: 1, size: 1 },
        )
        .await
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["from"], 1);
        assert_eq!(v["total"], 3);
        assert_eq!(v["sessions"][0]["id"], 2);
    }

    #[test]
    fn paging_parameters_follow_livy() {
        assert_eq!(page(None).unwrap(), Page { from: 0, size: 100 });
        assert_eq!(
            page(Some("from=3&size=7")).unwrap(),
            Page { from: 3, size: 7 }
        );
        assert!(page(Some("from=x")).is_err());
    }
}
