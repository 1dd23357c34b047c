//! The models folder: what is in it, whether each entry is usable, adding and removing entries.
//!
//! A chat model is a `NAME.gguf` file; an embedding model is a folder `NAME/` holding
//! `config.json`, `tokenizer.json` and `model.safetensors` (a sentence-transformers export).
//! Anything else is ignored; a broken entry is reported by name and skipped.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::gguf;

/// What an entry of the folder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Chat,
    Embedding,
}

/// One usable entry.
#[derive(Clone, Debug, Serialize)]
pub struct ModelFile {
    /// What users and the API call it: the file name without `.gguf`, or the folder name.
    pub name: String,
    pub kind: ModelKind,
    pub path: PathBuf,
    pub bytes: u64,
    /// For chat models: the GGUF architecture and trained context length.
    pub architecture: Option<String>,
    pub context_length: Option<u64>,
    /// For chat models: `general.file_type`, the weights' quantization (3 is Q4_1).
    #[serde(skip)]
    pub file_type: Option<u64>,
    /// For chat models: the Jinja chat template the GGUF carries, if any.
    #[serde(skip)]
    pub chat_template: Option<String>,
}

/// An entry that looks like a model but cannot be used, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// The folder's contents.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scan {
    pub models: Vec<ModelFile>,
    pub problems: Vec<Problem>,
}

/// Files an embedding model folder must hold.
pub const EMBEDDING_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Lists `dir` (a missing folder is empty). Entries are sorted by name.
pub fn scan(dir: &Path) -> Scan {
    let mut scan = Scan::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return scan,
        Err(e) => {
            scan.problems.push(Problem {
                path: dir.to_owned(),
                reason: format!("cannot list the models folder: {e}"),
            });
            return scan;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        match inspect(&path) {
            Ok(Some(model)) => scan.models.push(model),
            Ok(None) => {}
            Err(reason) => scan.problems.push(Problem { path, reason }),
        }
    }
    scan
}

/// What `path` is: a model, not a model at all (`None`), or a broken model (the reason).
pub fn inspect(path: &Path) -> Result<Option<ModelFile>, String> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if file_name.starts_with('.') || file_name.ends_with(".part") {
        return Ok(None);
    }
    if path.is_dir() {
        let present: Vec<&str> = EMBEDDING_FILES
            .iter()
            .copied()
            .filter(|f| path.join(f).is_file())
            .collect();
        if present.is_empty() {
            return Ok(None);
        }
        if let Some(missing) = EMBEDDING_FILES.iter().find(|f| !present.contains(f)) {
            return Err(format!(
                "an embedding model folder needs {missing} (it has {})",
                present.join(", ")
            ));
        }
        let bytes = EMBEDDING_FILES
            .iter()
            .filter_map(|f| std::fs::metadata(path.join(f)).ok())
            .map(|m| m.len())
            .sum();
        return Ok(Some(ModelFile {
            name: file_name.to_owned(),
            kind: ModelKind::Embedding,
            path: path.to_owned(),
            bytes,
            architecture: None,
            context_length: None,
            file_type: None,
            chat_template: None,
        }));
    }
    let Some(name) = file_name.strip_suffix(".gguf") else {
        return Ok(None);
    };
    let info = gguf::read(path).map_err(|e| e.to_string())?;
    let architecture = info
        .architecture()
        .ok_or("the GGUF has no general.architecture")?
        .to_owned();
    Ok(Some(ModelFile {
        name: name.to_owned(),
        kind: ModelKind::Chat,
        path: path.to_owned(),
        bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        context_length: info.context_length(),
        file_type: info.file_type(),
        chat_template: info.chat_template().map(str::to_owned),
        architecture: Some(architecture),
    }))
}

/// Why adding or removing failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("a model called `{0}` is already installed")]
    Exists(String),
    #[error("no model called `{0}` is installed")]
    NotFound(String),
    #[error("{0}")]
    Io(String),
}

/// Copies the model at `source` (a `.gguf` file or an embedding folder) into `dir`, after
/// checking it. The copy is written beside its final name and renamed, so a crash leaves no
/// half model behind.
pub fn add(dir: &Path, source: &Path) -> Result<ModelFile, CatalogError> {
    let invalid = |reason: String| CatalogError::Invalid {
        path: source.display().to_string(),
        reason,
    };
    if !source.exists() {
        return Err(invalid("does not exist".into()));
    }
    let model = inspect(source).map_err(invalid)?.ok_or_else(|| {
        invalid(
            "is neither a .gguf file nor a folder with config.json, tokenizer.json and model.safetensors"
                .into(),
        )
    })?;
    let io = |e: std::io::Error| CatalogError::Io(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    if scan(dir).models.iter().any(|m| m.name == model.name) {
        return Err(CatalogError::Exists(model.name));
    }
    let target = dir.join(source.file_name().unwrap_or_default());
    let part = dir.join(format!(
        "{}.part",
        source.file_name().unwrap_or_default().to_string_lossy()
    ));
    match model.kind {
        ModelKind::Chat => {
            std::fs::copy(source, &part).map_err(io)?;
        }
        ModelKind::Embedding => {
            let _ = std::fs::remove_dir_all(&part);
            std::fs::create_dir_all(&part).map_err(io)?;
            for entry in std::fs::read_dir(source).map_err(io)? {
                let entry = entry.map_err(io)?;
                if entry.path().is_file() {
                    std::fs::copy(entry.path(), part.join(entry.file_name())).map_err(io)?;
                }
            }
        }
    }
    std::fs::rename(&part, &target).map_err(io)?;
    inspect(&target)
        .map_err(invalid)?
        .ok_or_else(|| CatalogError::Io("the copy disappeared".into()))
}

/// Deletes the model called `name` from `dir`.
pub fn remove(dir: &Path, name: &str) -> Result<ModelFile, CatalogError> {
    let model = scan(dir)
        .models
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| CatalogError::NotFound(name.to_owned()))?;
    let io = |e: std::io::Error| CatalogError::Io(format!("{}: {e}", model.path.display()));
    match model.kind {
        ModelKind::Chat => std::fs::remove_file(&model.path).map_err(io)?,
        ModelKind::Embedding => std::fs::remove_dir_all(&model.path).map_err(io)?,
    }
    Ok(model)
}
