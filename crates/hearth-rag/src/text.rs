//! The embedded full-text index: one tantivy index per knowledge base (BM25, English stemming),
//! under the data dir. Like the vector index it is derived from the store: each commit records
//! the highest chunk key it holds, the caller adds what the store has above that mark after a
//! crash, and keys the store no longer has are dropped when a search meets them. Tantivy's
//! block-max WAND keeps top-k disjunctions fast on large indexes, where SQLite FTS5 has to
//! score every matching row.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::open::OpenSet;

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value as _, FAST, INDEXED,
    STORED, STRING,
};
use tantivy::tokenizer::TokenStream as _;
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Memory an index writer may use before it flushes a segment.
const WRITER_BUDGET: usize = 20_000_000;

/// Errors of the full-text index.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("full-text index: {0}")]
    Engine(#[from] tantivy::TantivyError),
    #[error("full-text index: {0}")]
    Directory(String),
}

/// A chunk to index.
#[derive(Clone, Debug)]
pub struct TextEntry {
    /// The store's chunk key.
    pub key: i64,
    /// The chunk's document (for filters).
    pub document: String,
    pub headings: String,
    pub text: String,
}

/// Every knowledge base's full-text index, under one folder; at most a bounded number open.
pub struct TextIndexes {
    dir: PathBuf,
    open: Mutex<OpenSet<TextIndex>>,
}

impl std::fmt::Debug for TextIndexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextIndexes")
            .field("dir", &self.dir)
            .finish()
    }
}

impl TextIndexes {
    /// Indexes kept in `dir`, at most [`crate::DEFAULT_MAX_OPEN`] idle ones open.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_max_open(dir, crate::DEFAULT_MAX_OPEN)
    }

    /// Indexes kept in `dir`; opening one past `max_open` closes the least recently used idle one.
    pub fn with_max_open(dir: impl Into<PathBuf>, max_open: usize) -> Self {
        Self {
            dir: dir.into(),
            open: Mutex::new(OpenSet::new(max_open)),
        }
    }

    /// The index called `name`, opened (or created) on first use. An index that cannot be
    /// opened is replaced by an empty one, which the caller refills from the store.
    pub fn open(&self, name: &str) -> Result<Arc<TextIndex>, TextError> {
        self.open_fresh(name).map(|(index, _)| index)
    }

    /// [`TextIndexes::open`], and whether the index was loaded just now (it was closed, or
    /// never open): the caller then catches it up with the store.
    pub fn open_fresh(&self, name: &str) -> Result<(Arc<TextIndex>, bool), TextError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = open.get(name) {
            return Ok((index, false));
        }
        let path = self.dir.join(name);
        let index = match TextIndex::open(path.clone()) {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "full-text index unreadable; rebuilding");
                let _ = std::fs::remove_dir_all(&path);
                TextIndex::open(path)?
            }
        };
        let index = Arc::new(index);
        open.insert(name, index.clone(), |_| true);
        Ok((index, true))
    }

    /// Forgets the index called `name` and deletes its files.
    pub fn remove(&self, name: &str) -> Result<(), TextError> {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        match std::fs::remove_dir_all(self.dir.join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(TextError::Directory(e.to_string())),
        }
    }
}

struct Fields {
    key: Field,
    document: Field,
    headings: Field,
    body: Field,
}

/// One knowledge base's full-text index.
pub struct TextIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// One writer at a time; made per batch so an idle index holds no arena.
    writing: Mutex<()>,
    upto: AtomicI64,
}

impl std::fmt::Debug for TextIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextIndex")
            .field("upto", &self.upto())
            .finish_non_exhaustive()
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        key: builder.add_u64_field("key", INDEXED | FAST | STORED),
        document: builder.add_text_field("document", STRING),
        headings: builder.add_text_field("headings", text.clone()),
        body: builder.add_text_field("body", text),
    };
    (builder.build(), fields)
}

impl TextIndex {
    fn open(path: PathBuf) -> Result<Self, TextError> {
        std::fs::create_dir_all(&path).map_err(|e| TextError::Directory(e.to_string()))?;
        let dir = MmapDirectory::open(&path).map_err(|e| TextError::Directory(e.to_string()))?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(dir, schema)?;
        let upto = index
            .load_metas()?
            .payload
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            index,
            reader,
            fields,
            writing: Mutex::new(()),
            upto: AtomicI64::new(upto),
        })
    }

    /// The highest key committed: the store's chunks above it are not indexed yet.
    pub fn upto(&self) -> i64 {
        self.upto.load(Ordering::Acquire)
    }

    /// Chunks indexed.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// True when no chunk is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn writer(&self) -> Result<IndexWriter, TextError> {
        Ok(self.index.writer_with_num_threads(1, WRITER_BUDGET)?)
    }

    fn commit(&self, mut writer: IndexWriter, upto: i64) -> Result<(), TextError> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&upto.to_string());
        prepared.commit()?;
        self.upto.store(upto, Ordering::Release);
        self.reader.reload()?;
        Ok(())
    }

    /// Indexes chunks and commits. Keys already present are replaced (catch-up after a crash
    /// may offer them again).
    pub fn add(&self, entries: &[TextEntry]) -> Result<(), TextError> {
        if entries.is_empty() {
            return Ok(());
        }
        let _guard = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let writer = self.writer()?;
        let mut top = self.upto();
        for e in entries {
            let key = u64::try_from(e.key).unwrap_or(0);
            writer.delete_term(Term::from_field_u64(self.fields.key, key));
            writer.add_document(doc!(
                self.fields.key => key,
                self.fields.document => e.document.as_str(),
                self.fields.headings => e.headings.as_str(),
                self.fields.body => e.text.as_str(),
            ))?;
            top = top.max(e.key);
        }
        self.commit(writer, top)
    }

    /// Removes chunks by key and commits.
    pub fn remove(&self, keys: &[i64]) -> Result<(), TextError> {
        if keys.is_empty() {
            return Ok(());
        }
        let _guard = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let writer = self.writer()?;
        for key in keys {
            writer.delete_term(Term::from_field_u64(
                self.fields.key,
                u64::try_from(*key).unwrap_or(0),
            ));
        }
        self.commit(writer, self.upto())
    }

    /// Chunk keys and BM25 scores for chunks matching any of `terms` (stemmed like the
    /// indexed text), best first; only chunks of `documents` when given.
    pub fn search(
        &self,
        terms: &[String],
        documents: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<(i64, f64)>, TextError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut analyzer = self.index.tokenizer_for_field(self.fields.body)?;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for term in terms {
            let mut stream = analyzer.token_stream(term);
            while let Some(token) = stream.next() {
                for field in [self.fields.body, self.fields.headings] {
                    clauses.push((
                        Occur::Should,
                        Box::new(TermQuery::new(
                            Term::from_field_text(field, &token.text),
                            IndexRecordOption::WithFreqs,
                        )),
                    ));
                }
            }
        }
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let query: Box<dyn Query> = match documents {
            None => Box::new(BooleanQuery::new(clauses)),
            Some(docs) => Box::new(BooleanQuery::new(vec![
                (
                    Occur::Must,
                    Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>,
                ),
                (
                    Occur::Must,
                    Box::new(TermSetQuery::new(
                        docs.iter()
                            .map(|d| Term::from_field_text(self.fields.document, d)),
                    )),
                ),
            ])),
        };
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit))?;
        let mut out = Vec::with_capacity(top.len());
        for (score, address) in top {
            let stored: TantivyDocument = searcher.doc(address)?;
            if let Some(key) = stored
                .get_first(self.fields.key)
                .and_then(|v| v.as_u64())
                .and_then(|k| i64::try_from(k).ok())
            {
                out.push((key, f64::from(score)));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: i64, document: &str, text: &str) -> TextEntry {
        TextEntry {
            key,
            document: document.into(),
            headings: "Maintenance".into(),
            text: text.into(),
        }
    }

    #[test]
    fn ranks_by_bm25_with_stemming_filters_removes_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let indexes = TextIndexes::new(dir.path());
        let index = indexes.open("kb").expect("open");
        assert_eq!(index.upto(), 0);
        index
            .add(&[
                entry(1, "d1", "VACUUM reclaims storage occupied by dead tuples"),
                entry(2, "d1", "The planner chooses an index scan"),
                entry(3, "d2", "Vacuuming vacuums vacuum: the autovacuum daemon"),
            ])
            .expect("add");
        assert_eq!((index.len(), index.upto()), (3, 3));

        let hits = index
            .search(&["vacuumed".into(), "tuples".into()], None, 10)
            .expect("search");
        let keys: Vec<i64> = hits.iter().map(|h| h.0).collect();
        assert_eq!(keys.len(), 2, "{hits:?}");
        assert!(keys.contains(&1) && keys.contains(&3));
        assert!(hits[0].1 >= hits[1].1);
        // Headings are searchable too.
        assert_eq!(
            index
                .search(&["maintenance".into()], None, 10)
                .expect("s")
                .len(),
            3
        );
        let only_d2 = index
            .search(&["vacuum".into()], Some(&["d2".into()]), 10)
            .expect("filtered");
        assert_eq!(only_d2.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3]);
        assert!(index
            .search(&["xyzzy".into()], None, 10)
            .expect("s")
            .is_empty());
        assert!(index.search(&[], None, 10).expect("s").is_empty());

        // Re-adding a key replaces it; removing takes it out.
        index
            .add(&[entry(2, "d1", "The planner likes vacuum now")])
            .expect("replace");
        assert_eq!(index.len(), 3);
        index.remove(&[1]).expect("remove");
        let keys: Vec<i64> = index
            .search(&["vacuum".into()], None, 10)
            .expect("s")
            .iter()
            .map(|h| h.0)
            .collect();
        assert!(!keys.contains(&1) && keys.contains(&2));
        drop(index);

        // A second process sees the committed mark and contents.
        let again = TextIndexes::new(dir.path()).open("kb").expect("reopen");
        assert_eq!((again.len(), again.upto()), (2, 3));
        // A damaged index starts over empty.
        drop(again);
        for e in std::fs::read_dir(dir.path().join("kb")).expect("ls") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "json") {
                std::fs::write(&p, b"not json").expect("damage");
            }
        }
        let fresh = TextIndexes::new(dir.path()).open("kb").expect("rebuilt");
        assert_eq!((fresh.len(), fresh.upto()), (0, 0));
        indexes.remove("kb").expect("remove files");
        assert!(!dir.path().join("kb").exists());
    }
}
