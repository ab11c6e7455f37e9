//! The key space: string values with optional expiry times, shared by
//! every worker.
//!
//! Keys are spread over [`SHARDS`] maps by a hash of the key, each behind
//! its own lock, so workers serving different keys rarely wait for each
//! other and no lock is global. A command on one key locks one shard; a
//! command on several (`MSET`, `MGET`, `DEL`) locks all of theirs at once,
//! in shard order, so it is atomic as in Redis and cannot deadlock.
//!
//! Expiry works as Redis's: a key past its time is removed when a command
//! touches it (lazily), and a periodic sweep ([`Store::sweep`], from the
//! server's service interval) removes those nobody touches, a few shards
//! at a time, skipping shards without keys that expire.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};

use crate::glob;

/// How many maps the keys are spread over.
pub const SHARDS: usize = 64;

/// Milliseconds since the Unix epoch: Redis's clock for expiry times.
pub type Millis = i64;

/// The time now, as Redis reads it for a command.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as Millis)
}

/// A key's value and, if it has one, the time it expires at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    pub expires_at: Option<Millis>,
}

impl Entry {
    /// A value that does not expire.
    pub fn new(value: Vec<u8>) -> Self {
        Entry {
            value,
            expires_at: None,
        }
    }

    fn expired(&self, now: Millis) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// One shard's keys, and how many of them expire (a sweep skips a shard
/// without any).
#[derive(Debug, Default)]
pub struct Shard {
    map: HashMap<Box<[u8]>, Entry>,
    volatile: usize,
}

impl Shard {
    /// The live entry of `key`, if there is one; one past its time is
    /// removed first.
    pub fn get(&mut self, key: &[u8], now: Millis) -> Option<&mut Entry> {
        if self.map.get(key)?.expired(now) {
            self.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    /// Whether `key` is live.
    pub fn contains(&mut self, key: &[u8], now: Millis) -> bool {
        self.get(key, now).is_some()
    }

    /// Sets `key` to `entry`, whatever it held.
    pub fn insert(&mut self, key: &[u8], entry: Entry) {
        let volatile = entry.expires_at.is_some();
        let old = match self.map.get_mut(key) {
            Some(slot) => Some(std::mem::replace(slot, entry)),
            None => self.map.insert(key.into(), entry),
        };
        self.volatile += usize::from(volatile);
        self.volatile -= usize::from(old.is_some_and(|old| old.expires_at.is_some()));
    }

    /// Removes `key` (live or not); its entry if it had one.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let old = self.map.remove(key)?;
        self.volatile -= usize::from(old.expires_at.is_some());
        Some(old)
    }

    /// Sets or clears the expiry time of live `key`; false if there is no
    /// such key.
    pub fn set_expiry(&mut self, key: &[u8], expires_at: Option<Millis>, now: Millis) -> bool {
        let Some(entry) = self.get(key, now) else {
            return false;
        };
        let before = entry.expires_at.is_some();
        entry.expires_at = expires_at;
        self.volatile += usize::from(expires_at.is_some());
        self.volatile -= usize::from(before);
        true
    }

    /// Removes every key past its time.
    fn sweep(&mut self, now: Millis) -> usize {
        if self.volatile == 0 {
            return 0;
        }
        let before = self.map.len();
        self.map.retain(|_, entry| !entry.expired(now));
        self.volatile = self.map.values().filter(|e| e.expires_at.is_some()).count();
        before - self.map.len()
    }
}

/// The key space.
pub struct Store {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    hasher: RandomState,
    /// The next shard a sweep looks at.
    sweep_cursor: AtomicUsize,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Store {
            shards: (0..SHARDS).map(|_| CachePadded::new(Mutex::default())).collect(),
            // Keyed at random, as Redis's siphash is: clients choose the
            // keys, and must not choose them all into one bucket.
            hasher: RandomState::new(),
            sweep_cursor: AtomicUsize::new(0),
        }
    }

    /// The shard `key` lives in.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) >> 32) as usize % SHARDS
    }

    /// Locks the shard of `key`.
    pub fn lock(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        self.shards[self.shard_of(key)].lock()
    }

    /// Locks the shards of all of `keys` (each once, in shard order).
    pub fn lock_all<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> Locked<'_> {
        let mut wanted = [false; SHARDS];
        for key in keys {
            wanted[self.shard_of(key)] = true;
        }
        let guards = (0..SHARDS)
            .map(|i| wanted[i].then(|| self.shards[i].lock()))
            .collect();
        Locked { store: self, guards }
    }

    /// How many keys there are (those past their time but not removed
    /// yet included, as Redis's `DBSIZE` counts them).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().map.len()).sum()
    }

    /// Removes every key.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            *shard.lock() = Shard::default();
        }
    }

    /// Calls `found` with each live key matching `pattern`, a shard at a
    /// time.
    pub fn keys_matching(&self, pattern: &[u8], now: Millis, mut found: impl FnMut(&[u8])) {
        let all = pattern == b"*";
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for (key, entry) in &shard.map {
                if !entry.expired(now) && (all || glob::matches(pattern, key, false)) {
                    found(key);
                }
            }
        }
    }

    /// Removes the keys past their time from the next `count` shards;
    /// how many it removed.
    pub fn sweep(&self, count: usize, now: Millis) -> usize {
        let first = self.sweep_cursor.fetch_add(count, Ordering::Relaxed);
        (first..first + count)
            .map(|i| self.shards[i % SHARDS].lock().sweep(now))
            .sum()
    }
}

/// The shards a command on several keys holds.
pub struct Locked<'a> {
    store: &'a Store,
    guards: Vec<Option<MutexGuard<'a, Shard>>>,
}

impl Locked<'_> {
    /// The (locked) shard of `key`, one of the keys this was made for.
    pub fn shard(&mut self, key: &[u8]) -> &mut Shard {
        self.guards[self.store.shard_of(key)]
            .as_deref_mut()
            .expect("the key's shard is locked")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_keys_are_gone_when_touched() {
        let store = Store::new();
        let mut shard = store.lock(b"k");
        shard.insert(
            b"k",
            Entry {
                value: b"v".to_vec(),
                expires_at: Some(100),
            },
        );
        assert!(shard.contains(b"k", 99));
        assert!(!shard.contains(b"k", 100));
        assert_eq!(shard.map.len(), 0, "removed when found expired");
        assert_eq!(shard.volatile, 0);
    }

    #[test]
    fn the_sweep_removes_what_nobody_touches() {
        let store = Store::new();
        for i in 0..1000u32 {
            let key = i.to_string();
            let expires_at = (i % 2 == 0).then_some(50);
            store.lock(key.as_bytes()).insert(
                key.as_bytes(),
                Entry {
                    value: Vec::new(),
                    expires_at,
                },
            );
        }
        assert_eq!(store.len(), 1000);
        assert_eq!(store.sweep(SHARDS, 49), 0);
        assert_eq!(store.sweep(SHARDS, 50), 500);
        assert_eq!(store.len(), 500);
        assert!(store.shards.iter().all(|s| s.lock().volatile == 0));
    }

    #[test]
    fn the_count_of_expiring_keys_follows_every_change() {
        let mut shard = Shard::default();
        shard.insert(b"a", Entry::new(b"1".to_vec()));
        assert!(shard.set_expiry(b"a", Some(10), 0));
        assert_eq!(shard.volatile, 1);
        shard.insert(b"a", Entry::new(b"2".to_vec()));
        assert_eq!(shard.volatile, 0, "a SET without expiry clears it");
        assert!(shard.set_expiry(b"a", Some(10), 0));
        assert!(shard.set_expiry(b"a", None, 0));
        assert_eq!(shard.volatile, 0);
        assert!(!shard.set_expiry(b"missing", Some(1), 0));
        shard.insert(
            b"b",
            Entry {
                value: Vec::new(),
                expires_at: Some(5),
            },
        );
        shard.remove(b"b");
        assert_eq!(shard.volatile, 0);
    }

    #[test]
    fn several_keys_lock_their_shards_once() {
        let store = Store::new();
        let keys: Vec<Vec<u8>> = (0..200).map(|i: u32| i.to_string().into_bytes()).collect();
        let mut locked = store.lock_all(keys.iter().map(Vec::as_slice).chain([&b"0"[..]]));
        for key in &keys {
            locked.shard(key).insert(key, Entry::new(key.clone()));
        }
        drop(locked);
        assert_eq!(store.len(), 200);
    }
}
