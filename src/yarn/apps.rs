//! Whose YARN application is whose, as the gateway learnt it from the Livy views
//! it relayed: a bounded map from application id to owner, kept across
//! configuration reloads. A miss is answered by asking Livy (see
//! `gateway/yarn.rs`), so an instance that never relayed the view, or restarted,
//! still decides correctly.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

/// Application ids remembered at most (the least recently used go first).
const REMEMBERED: usize = 65_536;

/// Application id → owner.
pub struct Apps(Mutex<LruCache<String, String>>);

impl Default for Apps {
    fn default() -> Self {
        Self(Mutex::new(LruCache::new(
            NonZeroUsize::new(REMEMBERED).expect("not zero"),
        )))
    }
}

impl Apps {
    /// Notes that `app` belongs to `owner`.
    pub fn learn(&self, app: &str, owner: &str) {
        let mut apps = self.0.lock().expect("apps lock");
        if apps.get(app).map(String::as_str) != Some(owner) {
            apps.put(app.to_owned(), owner.to_owned());
        }
    }

    /// The owner of `app`, if known.
    pub fn owner(&self, app: &str) -> Option<String> {
        self.0.lock().expect("apps lock").get(app).cloned()
    }
}

/// Whether `id` is a YARN application id: `application_<cluster start>_<number>`.
pub fn is_application_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("application_") else {
        return false;
    };
    let mut parts = rest.split('_');
    let digits = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// The application a container belongs to: `container_[e<epoch>_]<cluster
/// start>_<number>_<attempt>_<container>` → `application_<cluster start>_<number>`.
pub fn application_of_container(container: &str) -> Option<String> {
    let rest = container.strip_prefix("container_")?;
    let mut parts: Vec<&str> = rest.split('_').collect();
    if parts.first().is_some_and(|p| p.starts_with('e')) {
        parts.remove(0);
    }
    let [start, number, attempt, id] = parts[..] else {
        return None;
    };
    let app = format!("application_{start}_{number}");
    let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    (is_application_id(&app) && numeric(attempt) && numeric(id)).then_some(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_ids_are_recognised() {
        assert!(is_application_id("application_1491850285904_0007"));
        for bad in [
            "application_1_",
            "application__1",
            "application_1_2_3",
            "app_1_2",
            "application_1_x",
            "application_1_2/..",
        ] {
            assert!(!is_application_id(bad), "{bad}");
        }
    }

    #[test]
    fn containers_name_their_application() {
        assert_eq!(
            application_of_container("container_e17_1410901177871_0001_01_000005").as_deref(),
            Some("application_1410901177871_0001")
        );
        assert_eq!(
            application_of_container("container_1410901177871_0001_01_000001").as_deref(),
            Some("application_1410901177871_0001")
        );
        for bad in [
            "container_1_2_3",
            "container_e1_1_2_3",
            "container_a_b_c_d",
            "x_1_2_3_4",
        ] {
            assert_eq!(application_of_container(bad), None, "{bad}");
        }
    }

    #[test]
    fn owners_are_remembered() {
        let apps = Apps::default();
        assert_eq!(apps.owner("application_1_1"), None);
        apps.learn("application_1_1", "alice");
        assert_eq!(apps.owner("application_1_1").as_deref(), Some("alice"));
    }
}
