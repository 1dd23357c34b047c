//! The embedded vector index: one HNSW graph per knowledge base (usearch), persisted in the
//! data dir. The store holds every embedding; this index is derived from it. Each saved graph
//! records the highest chunk key it holds (`upto`), so after a crash the caller adds what the
//! store has beyond that mark, and keys the store no longer has are dropped when a search
//! meets them. Nothing is ever lost to the index: at worst it is rebuilt from the store.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::open::OpenSet;

use serde::{Deserialize, Serialize};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// Graph degree (M in the HNSW paper).
const CONNECTIVITY: usize = 16;
/// Candidates kept while inserting.
const EXPANSION_ADD: usize = 128;
/// Candidates kept while searching (usearch widens it to `k` when `k` is larger).
const EXPANSION_SEARCH: usize = 256;
/// Thread slots: usearch keeps a search context per concurrent caller.
const THREAD_SLOTS: usize = 32;

/// Errors of the vector index.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// The index engine refused an operation.
    #[error("vector index: {0}")]
    Engine(String),
    /// A vector of the wrong length.
    #[error("vector index: expected {expected} dimensions, got {got}")]
    Dimensions { expected: usize, got: usize },
    /// Reading or writing the index files failed.
    #[error("vector index file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn engine(err: impl std::fmt::Display) -> VectorError {
    VectorError::Engine(err.to_string())
}

/// The index files of every knowledge base, under one folder; at most a bounded number open.
pub struct VectorIndexes {
    dir: PathBuf,
    open: Mutex<OpenSet<VectorIndex>>,
}

impl std::fmt::Debug for VectorIndexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndexes")
            .field("dir", &self.dir)
            .finish()
    }
}

/// What is written beside a saved graph.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    dimensions: usize,
    upto: i64,
}

impl VectorIndexes {
    /// Indexes kept in `dir` (created when first saved), at most [`crate::DEFAULT_MAX_OPEN`]
    /// idle ones open.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_max_open(dir, crate::DEFAULT_MAX_OPEN)
    }

    /// Indexes kept in `dir`; opening one past `max_open` closes the least recently used one
    /// that is idle and saved (one with unsaved changes stays until `save_changed`).
    pub fn with_max_open(dir: impl Into<PathBuf>, max_open: usize) -> Self {
        Self {
            dir: dir.into(),
            open: Mutex::new(OpenSet::new(max_open)),
        }
    }

    /// The index called `name`: already open, or loaded from its files, or new and empty when
    /// there are none (or they do not match `dimensions`, or cannot be read: the caller then
    /// refills it from the store, because `upto` is 0).
    pub fn open(&self, name: &str, dimensions: usize) -> Result<Arc<VectorIndex>, VectorError> {
        self.open_fresh(name, dimensions).map(|(index, _)| index)
    }

    /// [`VectorIndexes::open`], and whether the index was loaded just now (it was closed, or
    /// never open): the caller then catches it up with the store.
    pub fn open_fresh(
        &self,
        name: &str,
        dimensions: usize,
    ) -> Result<(Arc<VectorIndex>, bool), VectorError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = open.get(name) {
            if index.dimensions == dimensions {
                return Ok((index, false));
            }
        }
        let index = Arc::new(VectorIndex::load_or_new(
            self.dir.join(format!("{name}.usearch")),
            dimensions,
        )?);
        open.insert(name, index.clone(), |open| {
            !open.changed.load(Ordering::Acquire)
        });
        Ok((index, true))
    }

    /// Forgets the index called `name` and deletes its files.
    pub fn remove(&self, name: &str) -> Result<(), VectorError> {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        for path in [
            self.dir.join(format!("{name}.usearch")),
            self.dir.join(format!("{name}.json")),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(VectorError::Io { path, source }),
            }
        }
        Ok(())
    }

    /// Saves every index changed since it was last saved; returns how many were written.
    pub fn save_changed(&self) -> Result<usize, VectorError> {
        let open: Vec<Arc<VectorIndex>> = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut saved = 0;
        for index in open {
            if index.save_if_changed()? {
                saved += 1;
            }
        }
        Ok(saved)
    }
}

/// One knowledge base's HNSW graph. Keys are the store's chunk keys.
pub struct VectorIndex {
    index: RwLock<Index>,
    dimensions: usize,
    path: PathBuf,
    upto: AtomicI64,
    changed: AtomicBool,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("path", &self.path)
            .field("dimensions", &self.dimensions)
            .field("upto", &self.upto())
            .finish_non_exhaustive()
    }
}

fn new_index(dimensions: usize) -> Result<Index, VectorError> {
    let index = Index::new(&IndexOptions {
        dimensions,
        metric: MetricKind::Cos,
        // Half precision halves memory; cosine similarities move by ~1e-3, far below what
        // separates neighbours.
        quantization: ScalarKind::F16,
        connectivity: CONNECTIVITY,
        expansion_add: EXPANSION_ADD,
        expansion_search: EXPANSION_SEARCH,
        multi: false,
    })
    .map_err(engine)?;
    index
        .reserve_capacity_and_threads(1024, THREAD_SLOTS)
        .map_err(engine)?;
    Ok(index)
}

impl VectorIndex {
    /// A new, empty index that lives only in memory until saved to `path`.
    pub fn in_memory(path: PathBuf, dimensions: usize) -> Result<Self, VectorError> {
        Ok(Self {
            index: RwLock::new(new_index(dimensions)?),
            dimensions,
            path,
            upto: AtomicI64::new(0),
            changed: AtomicBool::new(false),
        })
    }

    fn load_or_new(path: PathBuf, dimensions: usize) -> Result<Self, VectorError> {
        let empty = Self::in_memory(path.clone(), dimensions)?;
        let Ok(text) = std::fs::read_to_string(path.with_extension("json")) else {
            return Ok(empty);
        };
        let Ok(sidecar) = serde_json::from_str::<Sidecar>(&text) else {
            tracing::warn!(path = %path.display(), "vector index sidecar unreadable; rebuilding");
            return Ok(empty);
        };
        if sidecar.dimensions != dimensions {
            return Ok(empty);
        }
        let index = new_index(dimensions)?;
        let Some(file) = path.to_str() else {
            return Ok(empty);
        };
        if let Err(e) = index.load(file) {
            tracing::warn!(path = %path.display(), error = %e, "vector index unreadable; rebuilding");
            return Ok(empty);
        }
        index
            .reserve_capacity_and_threads(index.size().max(1024), THREAD_SLOTS)
            .map_err(engine)?;
        // The search breadth is this build's, whatever the file was saved with.
        index.change_expansion_search(EXPANSION_SEARCH);
        Ok(Self {
            index: RwLock::new(index),
            dimensions,
            path,
            upto: AtomicI64::new(sidecar.upto),
            changed: AtomicBool::new(false),
        })
    }

    /// Vector length.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The highest key ever added: the store's chunks above it are not in the index yet.
    pub fn upto(&self) -> i64 {
        self.upto.load(Ordering::Acquire)
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.read().size()
    }

    /// True when it holds no vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory the graph and vectors use.
    pub fn memory_bytes(&self) -> usize {
        self.read().memory_usage()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds vectors by key; keys already present are skipped (catch-up after a crash may offer
    /// them again).
    pub fn add(&self, entries: &[(i64, Vec<f32>)]) -> Result<(), VectorError> {
        if entries.is_empty() {
            return Ok(());
        }
        if let Some((_, v)) = entries.iter().find(|(_, v)| v.len() != self.dimensions) {
            return Err(VectorError::Dimensions {
                expected: self.dimensions,
                got: v.len(),
            });
        }
        let index = self.write();
        let needed = index.size() + entries.len();
        if needed > index.capacity() {
            index
                .reserve_capacity_and_threads(needed.next_power_of_two(), THREAD_SLOTS)
                .map_err(engine)?;
        }
        let mut seen = HashSet::new();
        let fresh: Vec<&(i64, Vec<f32>)> = entries
            .iter()
            .filter(|(key, _)| seen.insert(*key) && !index.contains(key_of(*key)))
            .collect();
        // usearch inserts concurrently (one search context per thread slot): large batches,
        // such as a rebuild from the store, use every core.
        let threads = if fresh.len() >= 4096 {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(THREAD_SLOTS))
        } else {
            1
        };
        let per_thread = fresh.len().div_ceil(threads).max(1);
        let index_ref = &*index;
        std::thread::scope(|scope| {
            let workers: Vec<_> = fresh
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || -> Result<(), VectorError> {
                        for (key, vector) in part {
                            index_ref.add(key_of(*key), vector).map_err(engine)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join().unwrap_or_else(|_| {
                    Err(VectorError::Engine("an insert thread panicked".into()))
                })
            })
        })?;
        let top = entries
            .iter()
            .map(|(key, _)| *key)
            .fold(self.upto(), i64::max);
        self.upto.store(top, Ordering::Release);
        self.changed.store(true, Ordering::Release);
        Ok(())
    }

    /// Removes vectors by key (absent keys are ignored).
    pub fn remove(&self, keys: &[i64]) -> Result<(), VectorError> {
        if keys.is_empty() {
            return Ok(());
        }
        let index = self.write();
        for key in keys {
            index.remove(key_of(*key)).map_err(engine)?;
        }
        self.changed.store(true, Ordering::Release);
        Ok(())
    }

    /// The `k` nearest keys to `query` with their cosine similarity, best first; only keys in
    /// `only` when given.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        only: Option<&HashSet<i64>>,
    ) -> Result<Vec<(i64, f32)>, VectorError> {
        if query.len() != self.dimensions {
            return Err(VectorError::Dimensions {
                expected: self.dimensions,
                got: query.len(),
            });
        }
        if k == 0 {
            return Ok(Vec::new());
        }
        let index = self.read();
        if index.size() == 0 {
            return Ok(Vec::new());
        }
        let found = match only {
            Some(keys) => index
                .filtered_search(query, k, |key| {
                    i64::try_from(key).is_ok_and(|key| keys.contains(&key))
                })
                .map_err(engine)?,
            None => index.search(query, k).map_err(engine)?,
        };
        Ok(matches(found))
    }

    /// The exact `k` nearest (brute force), to measure the graph's recall against.
    pub fn exact_search(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>, VectorError> {
        let index = self.read();
        if index.size() == 0 || k == 0 {
            return Ok(Vec::new());
        }
        Ok(matches(index.exact_search(query, k).map_err(engine)?))
    }

    /// Writes the graph and its mark if anything changed since the last save. The graph goes
    /// to a temporary file renamed into place, then the mark: a crash in between leaves a
    /// lower mark, which only makes the next start offer keys the graph already has.
    pub fn save_if_changed(&self) -> Result<bool, VectorError> {
        if !self.changed.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        let result = self.save();
        if result.is_err() {
            self.changed.store(true, Ordering::Release);
        }
        result.map(|()| true)
    }

    fn save(&self) -> Result<(), VectorError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VectorError::Io { path, source }
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = self.path.with_extension("usearch.tmp");
        let tmp_str = tmp.to_str().ok_or_else(|| VectorError::Io {
            path: tmp.clone(),
            source: std::io::Error::other("path is not UTF-8"),
        })?;
        // Writers wait while the graph is written, so the mark matches what the file holds.
        let index = self.write();
        let upto = self.upto();
        index.save(tmp_str).map_err(engine)?;
        drop(index);
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        let sidecar = serde_json::to_string(&Sidecar {
            dimensions: self.dimensions,
            upto,
        })
        .map_err(engine)?;
        let mark = self.path.with_extension("json");
        let mark_tmp = self.path.with_extension("json.tmp");
        std::fs::write(&mark_tmp, sidecar).map_err(io(&mark_tmp))?;
        std::fs::rename(&mark_tmp, &mark).map_err(io(&mark))?;
        Ok(())
    }
}

fn key_of(key: i64) -> u64 {
    // Chunk keys are positive (AUTOINCREMENT / BIGSERIAL).
    u64::try_from(key).unwrap_or(0)
}

fn matches(found: usearch::ffi::Matches) -> Vec<(i64, f32)> {
    found
        .keys
        .into_iter()
        .zip(found.distances)
        .filter_map(|(k, d)| i64::try_from(k).ok().map(|k| (k, 1.0 - d)))
        .collect()
}

/// Little-endian f32 bytes, as the store keeps embeddings.
pub fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// The inverse of [`to_bytes`]; trailing bytes that do not make a whole f32 are ignored.
pub fn from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dims: usize) -> Vec<f32> {
        // A small deterministic generator (xorshift) is enough for test vectors.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<f32> = (0..dims)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2000) as f32 / 1000.0 - 1.0
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        v
    }

    #[test]
    fn finds_nearest_filters_removes_and_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let indexes = VectorIndexes::new(dir.path());
        let index = indexes.open("kb", 32).expect("open");
        assert_eq!(index.upto(), 0);
        // Large enough for the parallel insert path, with a key offered twice.
        let mut entries: Vec<(i64, Vec<f32>)> =
            (1..=5000).map(|k| (k, unit(k as u64, 32))).collect();
        entries.push((17, unit(17, 32)));
        index.add(&entries).expect("add");
        assert_eq!(index.len(), 5000);
        assert_eq!(index.upto(), 5000);

        let hits = index.search(&unit(77, 32), 5, None).expect("search");
        assert_eq!(hits[0].0, 77);
        assert!((hits[0].1 - 1.0).abs() < 0.01, "{hits:?}");
        let only: HashSet<i64> = [5, 6, 7].into();
        let hits = index
            .search(&unit(77, 32), 5, Some(&only))
            .expect("filtered");
        assert!(!hits.is_empty() && hits.iter().all(|(k, _)| only.contains(k)));

        index.remove(&[77]).expect("remove");
        let hits = index.search(&unit(77, 32), 5, None).expect("search");
        assert!(hits.iter().all(|(k, _)| *k != 77));
        assert!(matches!(
            index.search(&[0.0; 3], 5, None),
            Err(VectorError::Dimensions { .. })
        ));

        assert_eq!(indexes.save_changed().expect("save"), 1);
        assert_eq!(indexes.save_changed().expect("nothing new"), 0);
        drop(index);
        // A second process opens the saved graph with its mark.
        let again = VectorIndexes::new(dir.path())
            .open("kb", 32)
            .expect("reopen");
        assert_eq!((again.len(), again.upto()), (4999, 5000));
        assert_eq!(again.search(&unit(10, 32), 1, None).expect("s")[0].0, 10);
        // Offering keys it already holds (catch-up after a crash) is harmless.
        again.add(&entries[..10]).expect("re-add");
        assert_eq!(again.len(), 4999);

        // Another dimension, or a damaged file, starts empty for a rebuild.
        assert_eq!(
            VectorIndexes::new(dir.path())
                .open("kb", 16)
                .expect("o")
                .len(),
            0
        );
        std::fs::write(dir.path().join("kb.usearch"), b"junk").expect("write");
        assert_eq!(
            VectorIndexes::new(dir.path())
                .open("kb", 32)
                .expect("o")
                .upto(),
            0
        );

        indexes.remove("kb").expect("remove files");
        assert!(!dir.path().join("kb.usearch").exists());
    }

    #[test]
    fn bytes_round_trip() {
        let v = unit(3, 8);
        assert_eq!(from_bytes(&to_bytes(&v)), v);
    }
}
