//! Apollo's automatic persisted queries: a client sends only the SHA-256 of its document
//! (`extensions.persistedQuery.sha256Hash`, version 1); the first time this process does
//! not know it (PERSISTED_QUERY_NOT_FOUND), the client sends the document with its hash,
//! which is checked and kept, and the hash alone works from then on — also over GET, so a
//! CDN can cache catalog reads by URL. Only documents that parse are kept, and only from
//! callers the rate limits let in. The documents are kept per process, bounded (by count and
//! bytes; when full, a tenth of them go, whichever the map yields first): another process,
//! or this one after a restart or an eviction, asks the client for the document again, as
//! the protocol expects.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_graphql::Request;
use sha2::{Digest, Sha256};

/// Documents kept at most.
const MAX_DOCUMENTS: usize = 10_000;
/// Bytes of documents kept at most.
const MAX_BYTES: usize = 32 << 20;

/// Why a persisted query could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The hash is not known here: send the document with it.
    NotFound,
    /// The extension is malformed, of another version, or its hash is not the document's.
    Invalid(String),
}

/// The documents this process knows by hash.
#[derive(Default)]
pub struct PersistedQueries {
    documents: RwLock<(HashMap<String, Arc<str>>, usize)>,
}

impl PersistedQueries {
    /// Applies `request`'s persisted-query extension, if any: fills in the document of a
    /// hash-only request, or checks and keeps the document sent with its hash.
    pub fn resolve(&self, request: &mut Request) -> Result<(), Refused> {
        let Some(extension) = request.extensions.remove("persistedQuery") else { return Ok(()) };
        let extension = extension.into_json().map_err(|e| Refused::Invalid(e.to_string()))?;
        if extension["version"] != 1 {
            return Err(Refused::Invalid("only version 1 of persistedQuery is supported".into()));
        }
        let Some(hash) = extension["sha256Hash"].as_str().map(str::to_ascii_lowercase) else {
            return Err(Refused::Invalid("persistedQuery needs a sha256Hash".into()));
        };
        if request.query.is_empty() {
            let known = self.documents.read().ok().and_then(|d| d.0.get(&hash).cloned());
            let document = known.ok_or(Refused::NotFound)?;
            request.query = document.to_string();
            return Ok(());
        }
        if hex::encode(Sha256::digest(request.query.as_bytes())) != hash {
            return Err(Refused::Invalid("provided sha does not match query".into()));
        }
        let known = self.documents.read().is_ok_and(|d| d.0.contains_key(&hash));
        // A document that does not parse is answered with its error, not kept.
        if known || async_graphql::parser::parse_query(&request.query).is_err() {
            return Ok(());
        }
        if let Ok(mut documents) = self.documents.write()
            && !documents.0.contains_key(&hash)
        {
            let (map, bytes) = &mut *documents;
            while !map.is_empty() && (map.len() >= MAX_DOCUMENTS || *bytes + request.query.len() > MAX_BYTES) {
                let going: Vec<String> = map.keys().take((map.len() / 10).max(1)).cloned().collect();
                for key in going {
                    if let Some(document) = map.remove(&key) {
                        *bytes -= document.len();
                    }
                }
            }
            *bytes += request.query.len();
            map.insert(hash, Arc::from(request.query.as_str()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_hash(query: &str, hash: &str) -> Request {
        let extension = serde_json::json!({"version": 1, "sha256Hash": hash});
        let mut request = Request::new(query);
        request
            .extensions
            .insert("persistedQuery".into(), async_graphql::Value::from_json(extension).unwrap_or_default());
        request
    }

    #[test]
    fn a_hash_is_unknown_then_registered_then_enough() {
        let store = PersistedQueries::default();
        let query = "{ products { totalCount } }";
        let hash = hex::encode(Sha256::digest(query.as_bytes()));
        assert_eq!(store.resolve(&mut with_hash("", &hash)), Err(Refused::NotFound));
        assert!(matches!(store.resolve(&mut with_hash(query, &"0".repeat(64))), Err(Refused::Invalid(_))));
        assert_eq!(store.resolve(&mut with_hash(query, &hash)), Ok(()));
        let mut hash_only = with_hash("", &hash.to_uppercase());
        assert_eq!(store.resolve(&mut hash_only), Ok(()));
        assert_eq!(hash_only.query, query);
    }

    #[test]
    fn only_documents_that_parse_are_kept() {
        let store = PersistedQueries::default();
        let broken = "{ products { ";
        let hash = hex::encode(Sha256::digest(broken.as_bytes()));
        assert_eq!(store.resolve(&mut with_hash(broken, &hash)), Ok(()));
        assert_eq!(store.resolve(&mut with_hash("", &hash)), Err(Refused::NotFound));
    }
}
