//! Resources as `GET /{endpoint}/{id}` answers them with no projection,
//! serialised, kept while their version holds.
//!
//! A hit costs one lookup of the resource's version ([`Store::version`])
//! instead of reading its JSON and computed attributes, parsing, rendering
//! and serialising it again (BENCHMARKS.md, issue 15); a resource with no
//! rendering kept is read at once, without that lookup. An entry is used
//! only when the version read now, the tenant's schema generation and the
//! base URL all equal those it was rendered with: every change to a
//! resource, to its computed `groups` or `members`, or to the tenant's
//! schemas and settings makes it unusable, so a hit is never stale.
//!
//! [`Store::version`]: muster_store::Store::version

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};

/// How many bytes of rendered resources the cache holds at most.
const CAPACITY_BYTES: u64 = 8 * 1024 * 1024;

/// About how many entries it holds at most (a user renders to about 1 KB).
const ESTIMATED_ENTRIES: usize = 8 * 1024;

/// Which resource an entry renders: tenant, resource type id, id.
pub(crate) type Key = (String, String, String);

/// A [`Key`] borrowed, to look up without allocating: hashes as the
/// tuple does (each field in order).
#[derive(Hash)]
pub(crate) struct KeyRef<'a>(pub &'a str, pub &'a str, pub &'a str);

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.0 == key.0 && self.1 == key.1 && self.2 == key.2
    }
}

/// A rendered resource and what it was rendered from.
#[derive(Clone)]
pub(crate) struct Entry {
    /// The resource's version.
    pub version: u64,
    /// The tenant's schema generation.
    pub generation: u64,
    /// The SCIM base URL its references were built on.
    pub base: String,
    /// The serialised body.
    pub json: Bytes,
}

/// Weighs an entry by its bytes.
#[derive(Clone)]
struct ByBytes;

impl Weighter<Key, Entry> for ByBytes {
    fn weight(&self, key: &Key, entry: &Entry) -> u64 {
        let bytes = key.0.len() + key.1.len() + key.2.len() + entry.base.len() + entry.json.len();
        u64::try_from(bytes).unwrap_or(u64::MAX).max(1)
    }
}

/// The cache, shared by every session of a [`crate::Service`].
pub(crate) struct RenderedResources {
    cache: Cache<Key, Entry, ByBytes>,
}

impl Default for RenderedResources {
    fn default() -> Self {
        RenderedResources {
            cache: Cache::with_weighter(ESTIMATED_ENTRIES, CAPACITY_BYTES, ByBytes),
        }
    }
}

impl RenderedResources {
    /// The rendering kept for this resource, if it was made for this
    /// schema generation and base URL: its version is still to be checked
    /// against the stored one before it is used.
    pub(crate) fn get(&self, key: &KeyRef<'_>, generation: u64, base: &str) -> Option<Entry> {
        self.cache
            .get(key)
            .filter(|entry| entry.generation == generation && entry.base == base)
    }

    /// Keeps a rendering.
    pub(crate) fn insert(&self, key: Key, entry: Entry) {
        self.cache.insert(key, entry);
    }
}
