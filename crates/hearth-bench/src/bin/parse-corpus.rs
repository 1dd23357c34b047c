//! Helper of `bench/parse.py` (the parser's memory and isolation figures):
//! - `parse-corpus dump DIR`: writes the adversarial corpus (`hearth_rag::corpus`) into DIR and
//!   prints its budgets as JSON (the request a parser process gets);
//! - `parse-corpus inproc DIR`: parses and chunks every file of DIR in this process, as
//!   `knowledge.parser = "in_process"` does, and prints one JSON line per file with the seconds
//!   it took and the chunks it made.

use std::time::Instant;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        return Err("usage: parse-corpus dump|inproc DIR".into());
    };
    let dir = std::path::Path::new(dir);
    match mode.as_str() {
        "dump" => {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            for bomb in hearth_rag::corpus::bombs() {
                std::fs::write(dir.join(&bomb.name), &bomb.bytes).map_err(|e| e.to_string())?;
            }
            let limits =
                serde_json::to_string(&hearth_rag::corpus::limits()).map_err(|e| e.to_string())?;
            println!("{limits}");
        }
        "inproc" => {
            let limits = hearth_rag::ParseLimits::default();
            let chunking = hearth_rag::ChunkSettings {
                max_tokens: 200,
                overlap_tokens: 32,
            };
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| e.to_string())?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            names.sort();
            for path in names {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let Some(format) = hearth_rag::Format::from_file_name(name) else {
                    continue;
                };
                let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
                let started = Instant::now();
                let chunks = hearth_rag::extract(format, &bytes, &limits, &chunking)
                    .map_or(0, |e| e.chunks.len());
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{}",
                    serde_json::json!({"name": name, "secs": secs, "chunks": chunks})
                );
            }
        }
        other => return Err(format!("unknown mode `{other}`")),
    }
    Ok(())
}
