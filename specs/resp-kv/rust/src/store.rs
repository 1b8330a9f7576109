//! The key-value store behind resp_kv: a module of yours beside the handler, which the
//! generated project never touches.

use std::collections::HashMap;

/// Binary-safe keys and values. One per worker: the handler contract runs a worker's
/// callbacks one at a time, so no lock is needed.
#[derive(Debug, Default)]
pub struct Store {
    entries: HashMap<Vec<u8>, Vec<u8>>,
}

impl Store {
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        self.entries.insert(key.to_vec(), value.to_vec());
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    pub fn del(&mut self, key: &[u8]) -> bool {
        self.entries.remove(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
