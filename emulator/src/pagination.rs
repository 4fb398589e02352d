//! Opaque, tamper-evident `NextToken`s.
//!
//! A token carries the list's scope (operation, region, caller, filter) and the
//! last key returned, and a keyed hash that only this emulator instance can
//! produce. A token that was altered, made by another instance, or replayed
//! with different arguments answers `InvalidToken`, the HTTP 400 error the
//! model's documentation of `NextToken` names.

use std::hash::{BuildHasher, RandomState};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// What a list call is over; a token is only valid for the same scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Scope {
    #[serde(rename = "o")]
    pub operation: String,
    #[serde(rename = "r")]
    pub region: String,
    #[serde(rename = "c")]
    pub caller: String,
    /// The operation's filter argument (name prefix or source name).
    #[serde(rename = "f")]
    pub filter: String,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    #[serde(flatten)]
    scope: Scope,
    /// The last key of the page the token follows.
    #[serde(rename = "a")]
    after: String,
}

/// Issues and checks tokens with a per-instance key.
#[derive(Debug)]
pub(crate) struct Tokens {
    key: RandomState,
}

impl Tokens {
    pub(crate) fn new() -> Tokens {
        Tokens {
            key: RandomState::new(),
        }
    }

    /// A token that resumes `scope` after the key `after`.
    pub(crate) fn issue(&self, scope: &Scope, after: &str) -> String {
        let cursor = Cursor {
            scope: scope.clone(),
            after: after.to_owned(),
        };
        // Serializing a struct of strings cannot fail; an empty payload would
        // simply be rejected when resumed.
        let payload = serde_json::to_string(&cursor).unwrap_or_default();
        let mac = self.key.hash_one(&payload);
        format!("{}.{mac:016x}", URL_SAFE_NO_PAD.encode(payload))
    }

    /// The key to resume after, if `token` was issued by this instance for `scope`.
    pub(crate) fn resume(&self, scope: &Scope, token: &str) -> Result<String, ApiError> {
        let invalid = || {
            ApiError::new(
                "InvalidToken",
                "The NextToken provided is not valid or has expired; keep all other arguments unchanged when paging.",
            )
        };
        let (encoded, mac) = token.rsplit_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(invalid)?;
        if format!("{:016x}", self.key.hash_one(&payload)) != mac {
            return Err(invalid());
        }
        let cursor: Cursor = serde_json::from_str(&payload).map_err(|_| invalid())?;
        if &cursor.scope != scope {
            return Err(invalid());
        }
        Ok(cursor.after)
    }
}

/// One page of `items` (sorted by key) after `after`, and the token key of the next page.
pub(crate) fn page<T>(
    items: impl IntoIterator<Item = (String, T)>,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let mut rest = items
        .into_iter()
        .filter(|(key, _)| after.is_none_or(|a| key.as_str() > a))
        .peekable();
    let mut out = Vec::new();
    let mut last = None;
    while out.len() < limit {
        let Some((key, item)) = rest.next() else {
            break;
        };
        out.push(item);
        last = Some(key);
    }
    let next = if rest.peek().is_some() { last } else { None };
    (out, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(filter: &str) -> Scope {
        Scope {
            operation: "ListPartnerEventSources".into(),
            region: "eu-west-1".into(),
            caller: "111111111111".into(),
            filter: filter.into(),
        }
    }

    #[test]
    fn round_trip() {
        let tokens = Tokens::new();
        let t = tokens.issue(&scope("aws.partner/a/"), "aws.partner/a/x");
        assert_eq!(
            tokens.resume(&scope("aws.partner/a/"), &t).expect("valid"),
            "aws.partner/a/x"
        );
    }

    #[test]
    fn rejects_other_scope_tampering_and_other_instances() {
        let tokens = Tokens::new();
        let t = tokens.issue(&scope("aws.partner/a/"), "k");
        assert_eq!(
            tokens
                .resume(&scope("aws.partner/b/"), &t)
                .expect_err("other scope")
                .code,
            "InvalidToken"
        );
        let mut altered = t.clone();
        altered.insert(0, 'A');
        assert!(tokens.resume(&scope("aws.partner/a/"), &altered).is_err());
        assert!(tokens.resume(&scope("aws.partner/a/"), "garbage").is_err());
        assert!(Tokens::new().resume(&scope("aws.partner/a/"), &t).is_err());
    }

    #[test]
    fn pages() {
        let items = || (1..=5).map(|i| (format!("k{i}"), i));
        let (p1, n1) = page(items(), None, 2);
        assert_eq!(p1, vec![1, 2]);
        assert_eq!(n1.as_deref(), Some("k2"));
        let (p2, n2) = page(items(), n1.as_deref(), 2);
        assert_eq!(p2, vec![3, 4]);
        let (p3, n3) = page(items(), n2.as_deref(), 2);
        assert_eq!(p3, vec![5]);
        assert_eq!(n3, None);
        let (all, none) = page(items(), None, 5);
        assert_eq!(all.len(), 5);
        assert_eq!(none, None);
    }
}
