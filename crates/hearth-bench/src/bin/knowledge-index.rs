//! `knowledge-index [SIZES…]`: the knowledge index at 10k, 100k and 1M chunks (384
//! dimensions), through the same store SQL and HNSW index the server uses, on a fresh SQLite
//! file per size. Prints a Markdown table for bench/README.md:
//! - loading (chunks/s into the store; full-text and HNSW build rates), SQLite, full-text and
//!   HNSW disk use, HNSW memory;
//! - search latency p50/p99: BM25 (tantivy), vector (HNSW), and the hybrid index path (both,
//!   fused as the server does by default (convex combination), then the top 10 chunks fetched
//!   from the store);
//! - ANN recall@10 against exact (brute-force f32) search.
//!
//! Data is synthetic and seeded: texts drawn from a Zipf-distributed vocabulary, vectors from
//! Gaussian clusters (L2-normalized), queries near stored chunks. The query embedding itself
//! (one short text through the built-in embedder) is measured by `bench/knowledge.sh`.

use std::time::{Duration, Instant};

use hearth_rag::fusion::{convex_combination, Scored};
use hearth_rag::text::{TextEntry, TextIndexes};
use hearth_rag::vectors::{to_bytes, VectorIndex};
use hearth_store::{Inserted, NewChunk, NewDocument, NewKnowledgeBase, NewUser, NewUserRole};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Error = Box<dyn std::error::Error + Send + Sync>;

const DIMS: usize = 384;
const CHUNKS_PER_DOC: usize = 1000;
const WORDS_PER_CHUNK: usize = 120;
const VOCABULARY: usize = 30_000;
const CANDIDATES: usize = 40;
const STOPWORD_RANKS: usize = 100;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.replace('_', "").parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    println!("| chunks | store load (chunks/s) | full-text build (chunks/s) | HNSW build (vectors/s) | SQLite / full-text / HNSW on disk | HNSW in memory | BM25 p50 / p99 | vector p50 / p99 | hybrid p50 / p99 | recall@10 |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let row = measure(n).await?;
        println!("{row}");
    }
    Ok(())
}

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box–Muller.
    let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
    let u2: f32 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// Word `i` of the synthetic vocabulary.
fn word(i: usize) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "pa", "gu", "fe", "ho", "ji", "wu",
        "be",
    ];
    let mut out = String::new();
    let mut x = i + 17;
    for _ in 0..3 {
        out.push_str(SYLLABLES[x % 16]);
        x /= 16;
    }
    out.push_str(&i.to_string());
    out
}

/// A Zipf-ish word index: rank r with probability ∝ 1/r.
fn zipf(rng: &mut StdRng) -> usize {
    let u: f64 = rng.gen_range(0.0..1.0);
    ((VOCABULARY as f64).powf(u) as usize).saturating_sub(1)
}

/// With `HEARTH_BENCH_LOCK=1` the store and index files are held in memory (`vmtouch -l`) while
/// searching, as the page cache of a machine with memory to spare holds them. Without it, a VM
/// that pages out cold file pages (DAMON's `pageout`) makes searches read the disk.
struct LockedFiles(String);

impl LockedFiles {
    fn new(dir: &std::path::Path) -> Result<Self, Error> {
        let pidfile = std::env::temp_dir().join(format!("vmtouch-{}.pid", std::process::id()));
        // Daemonized, waiting until every page is locked; -m lifts the 500 MiB file limit.
        let status = std::process::Command::new("vmtouch")
            .args(["-l", "-d", "-w", "-q", "-m", "64G", "-P"])
            .arg(&pidfile)
            .arg(dir)
            .status()
            .map_err(|e| {
                format!("HEARTH_BENCH_LOCK=1 needs vmtouch (apt-get install vmtouch): {e}")
            })?;
        if !status.success() {
            return Err(format!("vmtouch could not lock {}", dir.display()).into());
        }
        let pid = std::fs::read_to_string(&pidfile)?.trim().to_owned();
        let _ = std::fs::remove_file(&pidfile);
        eprintln!("store and index files held in memory by vmtouch (pid {pid})");
        Ok(Self(pid))
    }
}

impl Drop for LockedFiles {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg(&self.0).status();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn dir_size(dir: &std::path::Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn measure(n: usize) -> Result<String, Error> {
    let mut rng = StdRng::seed_from_u64(42);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("hearth.db").display());
    let store = hearth_store::Store::open(&url, &hearth_store::StoreOptions::default()).await?;
    store.migrate(&dir.path().join("backups")).await?;
    let user = store
        .create_user(NewUser {
            email: "bench@example.com".into(),
            name: "Bench".into(),
            password_hash: "x".into(),
            role: NewUserRole::AdminIfFirst,
        })
        .await?;
    let kb = store
        .create_knowledge_base(NewKnowledgeBase {
            user_id: user.id,
            name: "bench".into(),
            description: String::new(),
            embedding_model: "synthetic".into(),
            dimensions: DIMS as i64,
        })
        .await?;

    let clusters = (n / 200).max(50);
    let centers: Vec<Vec<f32>> = (0..clusters)
        .map(|_| normalized((0..DIMS).map(|_| gaussian(&mut rng)).collect()))
        .collect();
    let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(n);
    // Word indices of each chunk (the text is built from them), to draw query words from.
    let mut texts: Vec<Vec<u16>> = Vec::with_capacity(n);

    // Load: documents of 1,000 chunks, each committed in one transaction like an ingest.
    let started = Instant::now();
    let mut seqs: Vec<i64> = Vec::with_capacity(n);
    let mut made = 0;
    while made < n {
        let count = CHUNKS_PER_DOC.min(n - made);
        let doc_id = hearth_store::ids::DocumentId::new();
        let inserted = store
            .insert_document(NewDocument {
                id: doc_id,
                kb_id: kb.id,
                name: format!("doc-{made}.txt"),
                format: "txt".into(),
                size_bytes: 0,
                content_hash: format!("h{made}"),
                metadata: "{}".into(),
            })
            .await?;
        if !matches!(inserted, Inserted::New(_)) {
            return Err("duplicate synthetic document".into());
        }
        store.start_document(doc_id, 0).await?;
        let mut chunks = Vec::with_capacity(count);
        for position in 0..count {
            let center = &centers[rng.gen_range(0..clusters)];
            let v = normalized(
                center
                    .iter()
                    .map(|c| c + 0.06 * gaussian(&mut rng))
                    .collect(),
            );
            let words: Vec<u16> = (0..WORDS_PER_CHUNK)
                .map(|_| zipf(&mut rng) as u16)
                .collect();
            let text = words
                .iter()
                .map(|&w| word(usize::from(w)))
                .collect::<Vec<_>>()
                .join(" ");
            chunks.push(NewChunk {
                position: position as i64,
                headings: String::new(),
                text,
                page: None,
                tokens: WORDS_PER_CHUNK as i64,
                embedding: to_bytes(&v),
            });
            vectors.push(v);
            texts.push(words);
        }
        let new = store
            .commit_chunks(doc_id, 0, None, &chunks, false)
            .await?
            .ok_or("document not in progress")?;
        seqs.extend(new);
        made += count;
    }
    let load_rate = n as f64 / started.elapsed().as_secs_f64();

    let texts_dir = dir.path().join("text");
    let text_index = TextIndexes::new(&texts_dir).open("bench")?;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for (i, words) in texts.iter().enumerate() {
        batch.push(TextEntry {
            key: seqs[i],
            document: format!("doc-{}", i / CHUNKS_PER_DOC),
            headings: String::new(),
            text: words
                .iter()
                .map(|&w| word(usize::from(w)))
                .collect::<Vec<_>>()
                .join(" "),
        });
        if batch.len() == 10_000 {
            text_index.add(&batch)?;
            batch.clear();
        }
    }
    text_index.add(&batch)?;
    let text_rate = n as f64 / started.elapsed().as_secs_f64();
    let text_disk = dir_size(&texts_dir.join("bench"), "");

    let index_path = dir.path().join("vectors").join("bench.usearch");
    let index = VectorIndex::in_memory(index_path.clone(), DIMS)?;
    let started = Instant::now();
    let entries: Vec<(i64, Vec<f32>)> = seqs.iter().copied().zip(vectors.iter().cloned()).collect();
    for batch in entries.chunks(10_000) {
        index.add(batch)?;
    }
    let build_rate = n as f64 / started.elapsed().as_secs_f64();
    let memory = index.memory_bytes() as u64;
    index.save_if_changed()?;
    let hnsw_disk = dir_size(&dir.path().join("vectors"), "bench.usearch");

    let _locked = if std::env::var("HEARTH_BENCH_LOCK").is_ok_and(|v| v == "1") {
        Some(LockedFiles::new(dir.path())?)
    } else {
        None
    };
    // Queries: near a stored chunk (its vector plus noise), a few of its words.
    let queries = if n >= 1_000_000 { 100 } else { 200 };
    let mut bm25_t = Vec::with_capacity(queries);
    let mut vector_t = Vec::with_capacity(queries);
    let mut hybrid_t = Vec::with_capacity(queries);
    let mut fetch_t = Vec::with_capacity(queries);
    let mut found = 0usize;
    let mut text_found_source = 0usize;
    for _ in 0..queries {
        let i = rng.gen_range(0..n);
        let q = normalized(
            vectors[i]
                .iter()
                .map(|x| x + 0.04 * gaussian(&mut rng))
                .collect(),
        );
        // Like the server's query terms: the most frequent words act as stopwords and are
        // left out (the 100 most frequent of a Zipf vocabulary, as English function words).
        let content: Vec<u16> = texts[i]
            .iter()
            .copied()
            .filter(|&w| usize::from(w) >= STOPWORD_RANKS)
            .collect();
        let terms: Vec<String> = (0..4)
            .map(|_| word(usize::from(content[rng.gen_range(0..content.len())])))
            .collect();

        // Both searches at once, as the server runs them; each is timed on its own thread.
        let t0 = Instant::now();
        let ((text_hits, bm25_took), (vector_hits, vector_took)) = std::thread::scope(|s| {
            let text = s.spawn(|| {
                let started = Instant::now();
                text_index
                    .search(&terms, None, CANDIDATES)
                    .map(|hits| (hits, started.elapsed()))
            });
            let started = Instant::now();
            let vector = index
                .search(&q, CANDIDATES, None)
                .map(|hits| (hits, started.elapsed()));
            let text = text.join().map_err(|_| "the full-text search panicked")?;
            Ok::<_, Error>((text?, vector?))
        })?;
        if text_hits.iter().any(|h| h.0 == seqs[i]) {
            text_found_source += 1;
        }
        // The server's default fusion (convex combination of scaled scores, weights 1 / 1).
        let fused = convex_combination(&[
            Scored {
                items: text_hits,
                weight: 1.0,
            },
            Scored {
                items: vector_hits.iter().map(|h| (h.0, f64::from(h.1))).collect(),
                weight: 1.0,
            },
        ]);
        let top: Vec<i64> = fused.iter().take(10).map(|(k, _)| *k).collect();
        let fetching = Instant::now();
        let fetched = store.chunks_by_seq(&top).await?;
        let t3 = Instant::now();
        fetch_t.push(t3 - fetching);
        bm25_t.push(bm25_took);
        vector_t.push(vector_took);
        hybrid_t.push(t3 - t0);
        if fetched.len() != top.len() {
            return Err("fetched fewer chunks than asked".into());
        }

        // Recall@10 of the graph against brute force in f32.
        let mut exact: Vec<(f32, i64)> = vectors
            .iter()
            .zip(&seqs)
            .map(|(v, s)| (v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>(), *s))
            .collect();
        exact.select_nth_unstable_by(9, |a, b| b.0.total_cmp(&a.0));
        let truth: Vec<i64> = exact[..10].iter().map(|e| e.1).collect();
        let approx = index.search(&q, 10, None)?;
        found += approx.iter().filter(|(k, _)| truth.contains(k)).count();
    }
    for t in [&mut bm25_t, &mut vector_t, &mut hybrid_t, &mut fetch_t] {
        t.sort();
    }
    let recall = found as f64 / (queries * 10) as f64;
    // A sanity check that the full-text side really searched: the chunk the query words came
    // from is usually among its candidates.
    eprintln!(
        "{n} chunks: BM25 candidates held the query's source chunk for {text_found_source} of {queries} queries"
    );
    eprintln!(
        "{n} chunks: fetching the top 10 chunks from the store took p50 {} / p99 {} ms of the hybrid path",
        ms(percentile(&fetch_t, 0.5)),
        ms(percentile(&fetch_t, 0.99))
    );
    if text_found_source == 0 {
        return Err(
            "BM25 never found the source chunk: the full-text index is not searching".into(),
        );
    }
    let sqlite_disk = dir_size(dir.path(), "hearth.db");
    store.close().await;
    Ok(format!(
        "| {n} | {:.0} | {:.0} | {:.0} | {} / {} / {} | {} | {} / {} ms | {} / {} ms | {} / {} ms | {:.3} |",
        load_rate,
        text_rate,
        build_rate,
        mib(sqlite_disk),
        mib(text_disk),
        mib(hnsw_disk),
        mib(memory),
        ms(percentile(&bm25_t, 0.5)),
        ms(percentile(&bm25_t, 0.99)),
        ms(percentile(&vector_t, 0.5)),
        ms(percentile(&vector_t, 0.99)),
        ms(percentile(&hybrid_t, 0.5)),
        ms(percentile(&hybrid_t, 0.99)),
        recall
    ))
}
