//! Hybrid search: a full-text ranking (BM25 on SQLite, `ts_rank_cd` on PostgreSQL) and a
//! vector ranking (HNSW over the chunks' embeddings), fused by reciprocal rank.

use std::collections::{HashMap, HashSet};

use hearth_rag::fusion::{convex_combination, reciprocal_rank_fusion, Ranking, Scored};
use hearth_store::ids::{DocumentId, KnowledgeBaseId};

use super::{Fusion, Hit, Knowledge, SearchMode, SearchRequest, SearchResults};
use crate::access::{Area, Principal};
use crate::embeddings::Purpose;
use crate::error::{CoreError, Result};

/// Most hits one search returns.
pub const MAX_TOP_K: usize = 50;
/// Hits when the caller does not say.
pub const DEFAULT_TOP_K: usize = 8;
/// Longest query, in characters.
const MAX_QUERY: usize = 2000;
/// Largest fusion weight (a setting or a search's own).
pub const MAX_WEIGHT: f64 = 100.0;

/// A search's fusion weight for `field`: its own, else the setting (both within bounds).
fn weight(field: &str, asked: Option<f64>, setting: f64) -> Result<f64> {
    let w = asked.unwrap_or(setting);
    if w.is_finite() && (0.0..=MAX_WEIGHT).contains(&w) {
        Ok(w)
    } else {
        Err(CoreError::invalid(
            field,
            format!("must be between 0 and {MAX_WEIGHT}"),
        ))
    }
}

/// Parses a request's `mode` field.
fn parse_mode(s: &str) -> Result<SearchMode> {
    match s {
        "hybrid" => Ok(SearchMode::Hybrid),
        "bm25" => Ok(SearchMode::Bm25),
        "vector" => Ok(SearchMode::Vector),
        _ => Err(CoreError::invalid(
            "mode",
            format!("`{s}` is not a search mode; use hybrid, bm25 or vector"),
        )),
    }
}

/// English function words left out of full-text queries: they match most chunks, which makes
/// ranking slow, and weigh almost nothing in BM25.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "between", "both", "but", "by", "can", "could", "did",
    "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has",
    "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into",
    "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no", "nor", "not", "of",
    "off", "on", "once", "only", "or", "other", "our", "out", "over", "own", "same", "she",
    "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will",
    "with", "would", "you", "your",
];

/// Lower-cased words of a query (letters and digits), without stopwords unless the query is
/// nothing but stopwords.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .filter(|t| seen.insert(t.clone()))
        .take(64)
        .collect();
    let content: Vec<String> = words
        .iter()
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .cloned()
        .collect();
    if content.is_empty() {
        words
    } else {
        content
    }
}

impl Knowledge {
    /// Searches one of the caller's knowledge bases.
    pub async fn search(
        &self,
        principal: &Principal,
        id: KnowledgeBaseId,
        req: SearchRequest,
    ) -> Result<SearchResults> {
        self.search_many(principal, &[id], req).await
    }

    /// Searches several of the caller's knowledge bases at once.
    pub async fn search_many(
        &self,
        principal: &Principal,
        ids: &[KnowledgeBaseId],
        req: SearchRequest,
    ) -> Result<SearchResults> {
        // Chat reaches knowledge too (retrieval, `kb_search`): an API key needs its scope.
        principal.may(Area::Knowledge, true)?;
        let query = req.query.trim();
        if query.is_empty() {
            return Err(CoreError::invalid("query", "must not be empty"));
        }
        if req.query.chars().count() > MAX_QUERY {
            return Err(CoreError::invalid(
                "query",
                format!("must be at most {MAX_QUERY} characters"),
            ));
        }
        let top_k = req.top_k.unwrap_or(DEFAULT_TOP_K);
        if !(1..=MAX_TOP_K).contains(&top_k) {
            return Err(CoreError::invalid(
                "top_k",
                format!("must be between 1 and {MAX_TOP_K}"),
            ));
        }
        let mode = req
            .mode
            .as_deref()
            .map(parse_mode)
            .transpose()?
            .unwrap_or_default();
        let bm25_weight = weight("bm25_weight", req.bm25_weight, self.0.settings.bm25_weight)?;
        let vector_weight = weight(
            "vector_weight",
            req.vector_weight,
            self.0.settings.vector_weight,
        )?;
        let fusion = req
            .fusion
            .as_deref()
            .map(super::parse_fusion)
            .transpose()?
            .unwrap_or(self.0.settings.fusion);
        if mode == SearchMode::Hybrid && bm25_weight == 0.0 && vector_weight == 0.0 {
            return Err(CoreError::invalid(
                "vector_weight",
                "bm25_weight and vector_weight cannot both be 0",
            ));
        }
        let mut kbs = Vec::with_capacity(ids.len());
        for id in ids {
            kbs.push(self.owned_kb(principal, *id).await?);
        }
        let kb_ids: Vec<KnowledgeBaseId> = kbs.iter().map(|k| k.id).collect();
        let documents = self
            .document_filter(&kb_ids, req.document_ids, req.metadata)
            .await?;
        let terms = query_terms(query);
        if documents.as_ref().is_some_and(Vec::is_empty) {
            return Ok(SearchResults {
                mode,
                vector_index: self.vector_index_name().into(),
                terms,
                hits: Vec::new(),
            });
        }
        // Each ranking contributes more candidates than asked for, so fusion has overlap.
        let candidates = (top_k * 4).max(40);

        // Both rankings at once: the query's embedding and the vector search overlap the
        // full-text search (each runs off the async threads), so hybrid costs the slower one.
        let text = async {
            if mode == SearchMode::Vector {
                Ok(Vec::new())
            } else {
                self.text_ranking(&kbs, documents.as_deref(), &terms, candidates)
                    .await
            }
        };
        let vector = async {
            if mode == SearchMode::Bm25 {
                Ok(Vec::new())
            } else {
                self.vector_ranking(&kbs, documents.as_deref(), query, candidates)
                    .await
            }
        };
        let (text_ranking, vector_ranking) = tokio::try_join!(text, vector)?;

        let bm25: HashMap<i64, f64> = text_ranking.iter().copied().collect();
        let cosine: HashMap<i64, f64> = vector_ranking
            .iter()
            .map(|(k, s)| (*k, f64::from(*s)))
            .collect();
        let ranked: Vec<(i64, f64)> = match mode {
            SearchMode::Bm25 => text_ranking,
            SearchMode::Vector => vector_ranking
                .into_iter()
                .map(|(k, s)| (k, f64::from(s)))
                .collect(),
            SearchMode::Hybrid => match fusion {
                Fusion::Rrf => reciprocal_rank_fusion(
                    &[
                        Ranking {
                            items: text_ranking.iter().map(|(k, _)| *k).collect(),
                            weight: bm25_weight,
                        },
                        Ranking {
                            items: vector_ranking.iter().map(|(k, _)| *k).collect(),
                            weight: vector_weight,
                        },
                    ],
                    self.0.settings.rrf_k,
                ),
                Fusion::Convex => convex_combination(&[
                    Scored {
                        items: text_ranking,
                        weight: bm25_weight,
                    },
                    Scored {
                        items: vector_ranking
                            .iter()
                            .map(|(k, s)| (*k, f64::from(*s)))
                            .collect(),
                        weight: vector_weight,
                    },
                ]),
            },
        };
        let wanted: Vec<(i64, f64)> = ranked.into_iter().take(top_k).collect();
        let seqs: Vec<i64> = wanted.iter().map(|(k, _)| *k).collect();
        let mut chunks: HashMap<i64, hearth_store::StoredChunk> = self
            .0
            .store
            .chunks_by_seq(&seqs)
            .await?
            .into_iter()
            .map(|c| (c.seq, c))
            .collect();
        let mut hits = Vec::with_capacity(wanted.len());
        for (seq, score) in wanted {
            let Some(c) = chunks.remove(&seq) else {
                // A chunk deleted since an index last saved: drop it there.
                self.forget_chunk(&kbs, seq).await;
                continue;
            };
            hits.push(Hit {
                chunk_id: c.id,
                document_id: c.document_id,
                document_name: c.document_name,
                knowledge_base_id: c.kb_id,
                text: c.text,
                headings: c.headings,
                position: c.position,
                page: c.page,
                score,
                bm25_score: bm25.get(&seq).copied(),
                vector_score: cosine.get(&seq).copied(),
            });
        }
        Ok(SearchResults {
            mode,
            vector_index: self.vector_index_name().into(),
            terms,
            hits,
        })
    }

    fn vector_index_name(&self) -> &'static str {
        if self.on_pgvector() {
            "pgvector"
        } else {
            "embedded"
        }
    }

    /// Documents a search is limited to, or `None` for all.
    async fn document_filter(
        &self,
        kbs: &[KnowledgeBaseId],
        ids: Option<Vec<DocumentId>>,
        metadata: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Option<Vec<DocumentId>>> {
        if ids.is_none() && metadata.as_ref().is_none_or(serde_json::Map::is_empty) {
            return Ok(None);
        }
        let mut docs = Vec::new();
        for kb in kbs {
            docs.extend(self.0.store.list_documents(*kb).await?);
        }
        let wanted: Option<HashSet<DocumentId>> = ids.map(|v| v.into_iter().collect());
        Ok(Some(
            docs.into_iter()
                .filter(|d| wanted.as_ref().is_none_or(|w| w.contains(&d.id)))
                .filter(|d| match &metadata {
                    None => true,
                    Some(filter) => {
                        let meta: serde_json::Map<String, serde_json::Value> =
                            serde_json::from_str(&d.metadata).unwrap_or_default();
                        filter
                            .iter()
                            .all(|(k, v)| meta.get(k).is_some_and(|m| same_value(m, v)))
                    }
                })
                .map(|d| d.id)
                .collect(),
        ))
    }

    /// Full-text ranking: the embedded index on SQLite, the store's tsvector on PostgreSQL.
    async fn text_ranking(
        &self,
        kbs: &[hearth_store::KnowledgeBase],
        documents: Option<&[DocumentId]>,
        terms: &[String],
        k: usize,
    ) -> Result<Vec<(i64, f64)>> {
        if self.0.texts.is_none() {
            let ids: Vec<KnowledgeBaseId> = kbs.iter().map(|kb| kb.id).collect();
            let limit = i64::try_from(k).unwrap_or(i64::MAX);
            return Ok(self
                .0
                .store
                .search_chunks_text(&ids, documents, terms, limit)
                .await?);
        }
        let docs: Option<Vec<String>> =
            documents.map(|d| d.iter().map(ToString::to_string).collect());
        let mut found = Vec::new();
        for kb in kbs {
            let Some(index) = self.text_index(kb).await? else {
                continue;
            };
            let (terms, docs) = (terms.to_vec(), docs.clone());
            let hits =
                tokio::task::spawn_blocking(move || index.search(&terms, docs.as_deref(), k))
                    .await
                    .map_err(|e| CoreError::Other(Box::new(e)))?
                    .map_err(|e| CoreError::Other(Box::new(e)))?;
            found.extend(hits);
        }
        // BM25 scores of different indexes are on comparable scales (same analyzer and k1, b).
        found.sort_by(|a, b| b.1.total_cmp(&a.1));
        found.truncate(k);
        Ok(found)
    }

    async fn vector_ranking(
        &self,
        kbs: &[hearth_store::KnowledgeBase],
        documents: Option<&[DocumentId]>,
        query: &str,
        k: usize,
    ) -> Result<Vec<(i64, f32)>> {
        // pgvector filters by document in SQL; the embedded graph needs the chunk keys.
        let only: Option<HashSet<i64>> = match documents {
            Some(_) if self.on_pgvector() => None,
            None => None,
            Some(docs) => {
                let mut keys = HashSet::new();
                for doc in docs {
                    keys.extend(
                        self.0
                            .store
                            .document_chunks(*doc)
                            .await?
                            .into_iter()
                            .map(|c| c.seq),
                    );
                }
                Some(keys)
            }
        };
        // One query embedding per embedding model among the knowledge bases.
        let mut by_model: HashMap<&str, Vec<f32>> = HashMap::new();
        let mut found = Vec::new();
        for kb in kbs {
            if !by_model.contains_key(kb.embedding_model.as_str()) {
                let mut out = self
                    .0
                    .embeddings
                    .embed_for(
                        kb.user_id,
                        Purpose::Query,
                        &kb.embedding_model,
                        vec![query.to_owned()],
                    )
                    .await
                    .map_err(|e| match e {
                        CoreError::ModelNotFound(_) => CoreError::Upstream(format!(
                            "the embedding model `{}` of knowledge base `{}` is not loaded or enabled",
                            kb.embedding_model, kb.name
                        )),
                        e => e,
                    })?;
                let vector = out.vectors.pop().unwrap_or_default();
                if i64::try_from(vector.len()).ok() != Some(kb.dimensions) {
                    return Err(CoreError::Upstream(format!(
                        "`{}` answered a vector of {} dimensions; knowledge base `{}` holds {}",
                        kb.embedding_model,
                        vector.len(),
                        kb.name,
                        kb.dimensions
                    )));
                }
                by_model.insert(kb.embedding_model.as_str(), vector);
            }
            let query_vector = by_model[kb.embedding_model.as_str()].clone();
            if self.on_pgvector() {
                let limit = i64::try_from(k).unwrap_or(i64::MAX);
                let hits = self
                    .0
                    .store
                    .search_chunks_vector(&[kb.id], documents, &query_vector, limit)
                    .await?;
                found.extend(hits.into_iter().map(|(seq, s)| (seq, s as f32)));
                continue;
            }
            let index = self.vectors(kb).await?;
            let only = only.clone();
            let hits =
                tokio::task::spawn_blocking(move || index.search(&query_vector, k, only.as_ref()))
                    .await
                    .map_err(|e| CoreError::Other(Box::new(e)))?
                    .map_err(|e| CoreError::Other(Box::new(e)))?;
            found.extend(hits);
        }
        found.sort_by(|a, b| b.1.total_cmp(&a.1));
        found.truncate(k);
        Ok(found)
    }

    async fn forget_chunk(&self, kbs: &[hearth_store::KnowledgeBase], seq: i64) {
        for kb in kbs {
            if !self.on_pgvector() {
                if let Ok(index) = self.vectors(kb).await {
                    let _ = index.remove(&[seq]);
                }
            }
            if let Ok(Some(text)) = self.text_index(kb).await {
                let _ = tokio::task::spawn_blocking(move || text.remove(&[seq])).await;
            }
        }
    }
}

/// JSON equality with numbers compared by value (`2` and `2.0` are the same number; request
/// bodies turn whole floats into integers, stored metadata keeps what was uploaded).
fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_numbers_compare_by_value() {
        use serde_json::json;
        assert!(super::same_value(&json!(2.0), &json!(2)));
        assert!(super::same_value(
            &json!({"v": [1, 2.0]}),
            &json!({"v": [1.0, 2]})
        ));
        assert!(!super::same_value(&json!(2.5), &json!(2)));
        assert!(!super::same_value(&json!("2"), &json!(2)));
    }

    use super::*;

    #[test]
    fn terms_are_lowercased_unique_words() {
        assert_eq!(
            query_terms("How does VACUUM work? vacuum, \"OR\" x*"),
            vec!["vacuum", "work", "x"]
        );
        assert_eq!(
            query_terms("to be or not to be"),
            vec!["to", "be", "or", "not"]
        );
        assert!(query_terms("?!").is_empty());
    }
}
