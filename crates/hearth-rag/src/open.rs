//! The open indexes of a process, bounded: opening one more than the bound closes the least
//! recently used one that nobody is using (and that has nothing unsaved).

use std::collections::HashMap;
use std::sync::Arc;

/// Open indexes by name, at most `max` of them idle.
pub(crate) struct OpenSet<T> {
    max: usize,
    clock: u64,
    entries: HashMap<String, (Arc<T>, u64)>,
}

impl<T> OpenSet<T> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// The index called `name`, if open (it becomes the most recently used).
    pub(crate) fn get(&mut self, name: &str) -> Option<Arc<T>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(name).map(|(index, used)| {
            *used = clock;
            index.clone()
        })
    }

    /// Keeps `index` open as `name`, first closing least recently used ones while the set is
    /// full. Only an index no one else holds, and that `closable` allows, is closed: when every
    /// one is busy the set grows past the bound for a while rather than close one in use (two
    /// open copies of one index could lose each other's writes).
    pub(crate) fn insert(&mut self, name: &str, index: Arc<T>, closable: impl Fn(&T) -> bool) {
        while self.entries.len() >= self.max {
            let oldest = self
                .entries
                .iter()
                .filter(|(_, (open, _))| Arc::strong_count(open) == 1 && closable(open))
                .min_by_key(|(_, (_, used))| *used)
                .map(|(name, _)| name.clone());
            match oldest {
                Some(name) => {
                    self.entries.remove(&name);
                }
                None => break,
            }
        }
        self.clock += 1;
        self.entries.insert(name.to_owned(), (index, self.clock));
    }

    pub(crate) fn remove(&mut self, name: &str) {
        self.entries.remove(name);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<T>> {
        self.entries.values().map(|(index, _)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_idle_index_is_closed() {
        let mut set = OpenSet::new(2);
        set.insert("a", Arc::new(1), |_| true);
        set.insert("b", Arc::new(2), |_| true);
        assert!(set.get("a").is_some(), "a is now the most recent");
        set.insert("c", Arc::new(3), |_| true);
        assert_eq!(set.len(), 2);
        assert!(set.get("b").is_none(), "b was the least recently used");
        assert!(set.get("a").is_some() && set.get("c").is_some());
    }

    #[test]
    fn busy_or_unclosable_indexes_stay_open() {
        let mut set = OpenSet::new(1);
        let held = Arc::new(1);
        set.insert("busy", held.clone(), |_| true);
        set.insert("dirty", Arc::new(2), |_| true);
        assert_eq!(set.len(), 2, "the busy one is not closed under its user");
        drop(held);
        set.insert("next", Arc::new(3), |v| *v != 2);
        assert!(set.get("busy").is_none(), "closed once idle");
        assert!(set.get("dirty").is_some(), "not closable: kept");
    }
}
