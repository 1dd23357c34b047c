//! `hearth eval retrieval`: nDCG@10, recall@10 and MRR@10 of a knowledge base's search for a
//! file of queries with known relevant documents, for BM25 only, vectors only and hybrid, so a
//! user can tune chunking and fusion weights on their own corpus.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use clap::Args;
use hearth_core::knowledge::SearchRequest;
use hearth_rag::eval::{first_occurrences, ndcg_at, recall_at, reciprocal_rank_at};
use serde::Deserialize;

use crate::knowledge::{api_error, client, find_kb, Remote};

/// `hearth eval retrieval`.
#[derive(Args)]
pub struct RetrievalArgs {
    /// The knowledge base, by name.
    #[arg(long, value_name = "NAME")]
    kb: String,
    /// JSON Lines: `{"query": "...", "relevant": ["doc name or id", …], "kind"?: "..."}`.
    #[arg(long, value_name = "FILE")]
    queries: PathBuf,
    /// Cut-off of the metrics.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// How hybrid search fuses the rankings: `rrf` or `convex` (default: the server's
    /// `knowledge.fusion`).
    #[arg(long, value_name = "METHOD")]
    fusion: Option<String>,
    /// Weight of the BM25 ranking in hybrid fusion (default: the server's
    /// `knowledge.bm25_weight`).
    #[arg(long, value_name = "W")]
    bm25_weight: Option<f64>,
    /// Weight of the vector ranking in hybrid fusion (default: the server's
    /// `knowledge.vector_weight`).
    #[arg(long, value_name = "W")]
    vector_weight: Option<f64>,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Deserialize)]
struct Query {
    query: String,
    relevant: Vec<String>,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Default, Clone, Copy)]
struct Sums {
    ndcg: f64,
    recall: f64,
    mrr: f64,
    n: usize,
}

impl Sums {
    fn add(&mut self, ndcg: f64, recall: f64, mrr: f64) {
        self.ndcg += ndcg;
        self.recall += recall;
        self.mrr += mrr;
        self.n += 1;
    }

    fn mean(&self) -> (f64, f64, f64) {
        let n = self.n.max(1) as f64;
        (self.ndcg / n, self.recall / n, self.mrr / n)
    }
}

const MODES: [&str; 3] = ["bm25", "vector", "hybrid"];

/// Runs every query in every mode and prints the means (overall and per query kind).
pub async fn retrieval(args: RetrievalArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.queries)
        .map_err(|e| format!("{}: {e}", args.queries.display()))?;
    let mut queries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let q: Query = serde_json::from_str(line)
            .map_err(|e| format!("{} line {}: {e}", args.queries.display(), i + 1))?;
        if q.relevant.is_empty() {
            return Err(format!(
                "{} line {}: `relevant` is empty",
                args.queries.display(),
                i + 1
            ));
        }
        queries.push(q);
    }
    if queries.is_empty() {
        return Err(format!("{}: no queries", args.queries.display()));
    }
    if !(1..=50).contains(&args.k) {
        return Err("--k must be between 1 and 50".into());
    }
    let client = client(&args.remote);
    let kb = find_kb(&client, &args.kb)
        .await?
        .ok_or_else(|| format!("no knowledge base named \"{}\"", args.kb))?;
    // Relevant documents are named by file name or id; both map to the document id.
    let docs = client.documents(kb).await.map_err(api_error)?;
    let by_name: HashMap<String, String> = docs
        .iter()
        .flat_map(|d| {
            [
                (d.name.clone(), d.id.to_string()),
                (d.id.to_string(), d.id.to_string()),
            ]
        })
        .collect();
    let mut missing = 0;
    let mut totals: BTreeMap<(String, &str), Sums> = BTreeMap::new();
    for q in &queries {
        let relevant: HashSet<String> = q
            .relevant
            .iter()
            .filter_map(|r| by_name.get(r).cloned())
            .collect();
        if relevant.is_empty() {
            missing += 1;
            continue;
        }
        for mode in MODES {
            let found = client
                .search(
                    kb,
                    &SearchRequest {
                        query: q.query.clone(),
                        top_k: Some(50),
                        mode: Some(mode.into()),
                        fusion: args.fusion.clone(),
                        bm25_weight: args.bm25_weight,
                        vector_weight: args.vector_weight,
                        ..Default::default()
                    },
                )
                .await
                .map_err(api_error)?;
            let ranked = first_occurrences(found.hits.iter().map(|h| h.document_id.to_string()));
            let scores = (
                ndcg_at(&ranked, &relevant, args.k),
                recall_at(&ranked, &relevant, args.k),
                reciprocal_rank_at(&ranked, &relevant, args.k),
            );
            for group in ["all".to_owned(), q.kind.clone().unwrap_or_default()] {
                if group.is_empty() {
                    continue;
                }
                totals
                    .entry((group, mode))
                    .or_default()
                    .add(scores.0, scores.1, scores.2);
            }
        }
    }
    if missing == queries.len() {
        return Err("no query's relevant documents are in this knowledge base (names must match the uploaded file names)".into());
    }
    let k = args.k;
    if args.json {
        let rows: Vec<serde_json::Value> = totals
            .iter()
            .map(|((group, mode), s)| {
                let (ndcg, recall, mrr) = s.mean();
                serde_json::json!({"queries": group, "mode": mode, "n": s.n,
                    format!("ndcg@{k}"): ndcg, format!("recall@{k}"): recall, format!("mrr@{k}"): mrr})
            })
            .collect();
        say!("{}", serde_json::Value::Array(rows));
    } else {
        say!("| queries | mode | n | nDCG@{k} | recall@{k} | MRR@{k} |");
        say!("|---|---|---:|---:|---:|---:|");
        let mut groups: Vec<&String> = totals.keys().map(|(g, _)| g).collect();
        groups.dedup();
        // "all" first, then the kinds.
        groups.sort_by_key(|g| (g.as_str() != "all", (*g).clone()));
        for group in groups {
            for mode in MODES {
                if let Some(s) = totals.get(&(group.clone(), mode)) {
                    let (ndcg, recall, mrr) = s.mean();
                    say!(
                        "| {group} | {mode} | {} | {ndcg:.3} | {recall:.3} | {mrr:.3} |",
                        s.n
                    );
                }
            }
        }
    }
    if missing > 0 {
        eprintln!(
            "note: {missing} of {} queries skipped: their relevant documents are not in \"{}\"",
            queries.len(),
            args.kb
        );
    }
    Ok(())
}
