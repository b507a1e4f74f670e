//! Create bodies (`POST /batches`, `POST /sessions`): parsed strictly, and their
//! `proxyUser` asserted.
//!
//! The body must be one JSON object with no duplicate key at any depth, so that the
//! gateway and Livy's Jackson can never read different values from it; numbers are
//! parsed to the nearest double (serde_json's `float_roundtrip`), so the body sent on
//! carries the values the client wrote. `proxyUser` absent, null, empty or equal to
//! the caller becomes the caller; naming someone else is refused unless the caller is
//! an administrator, who may impersonate.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::auth::Principal;
use crate::error::RequestError;

/// A JSON value that refuses duplicate object keys while parsing.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Parses a create body: one JSON object, no duplicate keys anywhere.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, RequestError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let Strict(value) = Strict::deserialize(&mut deserializer)
        .map_err(|e| RequestError::BadBody(format!("the body is not valid JSON: {e}")))?;
    deserializer
        .end()
        .map_err(|e| RequestError::BadBody(format!("trailing data after the JSON body: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(RequestError::BadBody(
            "the body must be a JSON object".into(),
        )),
    }
}

/// Sets the body's `proxyUser` to the identity the request will run as, and returns
/// that identity.
pub fn assert_proxy_user(
    body: &mut Map<String, Value>,
    caller: &Principal,
) -> Result<String, RequestError> {
    let requested = match body.get("proxyUser") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(RequestError::BadBody("proxyUser must be a string".into())),
    };
    let effective = match requested {
        None => caller.user.to_string(),
        Some(name) if *name == *caller.user => name,
        Some(name) if caller.admin => {
            if name.chars().any(|c| c.is_control()) {
                return Err(RequestError::BadBody(
                    "proxyUser is not a valid user name".into(),
                ));
            }
            name
        }
        Some(name) => {
            return Err(RequestError::Forbidden(format!(
                "user {} may not act as {name:?}; leave proxyUser out or set it to your own name",
                caller.user
            )))
        }
    };
    body.insert("proxyUser".into(), Value::String(effective.clone()));
    Ok(effective)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn principal(user: &str, admin: bool) -> Principal {
        Principal {
            user: Arc::from(user),
            groups: Arc::from(Vec::new()),
            admin,
            grants: None,
            source: crate::auth::Source::File,
            token: None,
        }
    }

    #[test]
    fn only_objects_without_duplicate_keys_pass() {
        assert!(parse_object(br#"{"file":"a","conf":{"x":"1"},"args":["1",{"k":2}]}"#).is_ok());
        for bad in [
            &br#"{"file":"a","file":"b"}"#[..],
            br#"{"conf":{"x":"1","x":"2"}}"#,
            br#"{"args":[{"k":1,"k":2}]}"#,
            br#"{"proxyUser":"a","proxyUser":"b"}"#,
            br#"["file"]"#,
            br#""file""#,
            b"null",
            b"",
            b"{",
            br#"{"file":"a"} {"file":"b"}"#,
            b"file=a.jar",
        ] {
            assert!(
                matches!(parse_object(bad), Err(RequestError::BadBody(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let deep = format!(r#"{{"a":{deep}}}"#);
        assert!(parse_object(deep.as_bytes()).is_err(), "nesting is bounded");
    }

    #[test]
    fn proxy_user_is_the_caller_unless_an_admin_says_otherwise() {
        let alice = principal("alice", false);
        for body in [
            r#"{}"#,
            r#"{"proxyUser":null}"#,
            r#"{"proxyUser":""}"#,
            r#"{"proxyUser":"alice"}"#,
        ] {
            let mut map = parse_object(body.as_bytes()).unwrap();
            assert_eq!(assert_proxy_user(&mut map, &alice).unwrap(), "alice");
            assert_eq!(map["proxyUser"], "alice");
        }
        let mut map = parse_object(br#"{"proxyUser":"bob"}"#).unwrap();
        assert!(matches!(
            assert_proxy_user(&mut map, &alice),
            Err(RequestError::Forbidden(_))
        ));
        let mut map = parse_object(br#"{"proxyUser":["bob"]}"#).unwrap();
        assert!(matches!(
            assert_proxy_user(&mut map, &alice),
            Err(RequestError::BadBody(_))
        ));
        let admin = principal("admin", true);
        let mut map = parse_object(br#"{"file":"a","proxyUser":"carol"}"#).unwrap();
        assert_eq!(assert_proxy_user(&mut map, &admin).unwrap(), "carol");
        let keys: Vec<&String> = map.keys().collect();
        assert_eq!(keys, ["file", "proxyUser"], "key order is kept");
    }

    #[test]
    fn numbers_are_sent_on_as_the_values_the_client_wrote() {
        // A float parsed to the nearest double is written in its shortest form, and
        // that form read again (as Livy's Jackson reads it) is the same double; a
        // parser that rounds approximately moved this one by an ulp.
        let digits = format!("70{}00", "2".repeat(109));
        for number in [
            digits.as_str(),
            "0.1",
            "1e300",
            "2.2250738585072014e-308",
            "123456789012345678",
        ] {
            let body = format!(r#"{{"rd":{number}}}"#);
            let map = parse_object(body.as_bytes()).unwrap();
            let sent = Value::Object(map.clone()).to_string();
            let expected: f64 = number.parse().unwrap();
            let again = parse_object(sent.as_bytes()).unwrap();
            assert_eq!(again, map, "{number}");
            assert_eq!(again["rd"].as_f64(), Some(expected), "{number}");
        }
    }
}
