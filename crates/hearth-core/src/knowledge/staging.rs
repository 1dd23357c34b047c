//! Receiving an uploaded file: its bytes are written to a temporary file beside the originals
//! as they arrive (never held whole in memory), hashed on the way, and refused once they pass
//! the size limit. A staged file that is not kept is deleted when dropped.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::error::{CoreError, Result};

/// Longest file name kept.
const MAX_FILE_NAME: usize = 255;

/// A file being received.
pub struct Stager {
    file: tokio::fs::File,
    temp: TempPath,
    name: String,
    size: u64,
    limit: u64,
    hasher: Sha256,
}

/// A received file, waiting to become a document's original.
#[derive(Debug)]
pub struct StagedFile {
    temp: TempPath,
    name: String,
    size: u64,
    sha256: String,
}

/// Deletes its path when dropped, unless disarmed.
#[derive(Debug)]
struct TempPath(Option<PathBuf>);

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Stager {
    pub(crate) async fn create(dir: &Path, name: &str, limit: u64) -> Result<Self> {
        let name = clean_file_name(name)?;
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        let path = dir.join(format!(".upload-{}", uuid::Uuid::now_v7()));
        let file = tokio::fs::File::create(&path).await.map_err(io)?;
        Ok(Self {
            file,
            temp: TempPath(Some(path)),
            name,
            size: 0,
            limit,
            hasher: Sha256::new(),
        })
    }

    /// The file's name as uploaded.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends bytes; 413 once the file is larger than the limit (what was written is deleted
    /// when the stager is dropped).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.size += bytes.len() as u64;
        if self.size > self.limit {
            return Err(CoreError::TooLarge {
                field: "files".into(),
                message: format!(
                    "`{}` is larger than the limit of {} bytes (knowledge.max_file_bytes)",
                    self.name, self.limit
                ),
            });
        }
        self.hasher.update(bytes);
        self.file.write_all(bytes).await.map_err(io)
    }

    /// The received file.
    pub async fn finish(mut self) -> Result<StagedFile> {
        self.file.flush().await.map_err(io)?;
        self.file.sync_all().await.map_err(io)?;
        let sha256 = self
            .hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(StagedFile {
            temp: self.temp,
            name: self.name,
            size: self.size,
            sha256,
        })
    }
}

impl StagedFile {
    /// The file's name as uploaded.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Hex SHA-256 of its content.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Moves it to `path` (same folder, so a rename).
    pub(crate) async fn persist(mut self, path: &Path) -> Result<()> {
        let Some(from) = self.temp.0.take() else {
            return Err(CoreError::Other("staged file already moved".into()));
        };
        if let Err(e) = tokio::fs::rename(&from, path).await {
            self.temp.0 = Some(from);
            return Err(io(e));
        }
        Ok(())
    }
}

/// The last path component, trimmed; a name is required and control characters are refused.
fn clean_file_name(name: &str) -> Result<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base == "." || base == ".." {
        return Err(CoreError::invalid("files", "every file needs a file name"));
    }
    if base.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "files",
            "file names must not hold control characters",
        ));
    }
    Ok(base.chars().take(MAX_FILE_NAME).collect())
}

fn io(err: std::io::Error) -> CoreError {
    CoreError::Other(Box::new(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_limits_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Stager::create(dir.path(), "../../etc/notes.txt", 10)
            .await
            .expect("stage");
        assert_eq!(s.name(), "notes.txt");
        s.write(b"hello").await.expect("write");
        let staged = s.finish().await.expect("finish");
        assert_eq!(staged.size(), 5);
        assert_eq!(
            staged.sha256(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let kept = dir.path().join("kept");
        staged.persist(&kept).await.expect("persist");
        assert_eq!(std::fs::read(&kept).expect("read"), b"hello");

        let mut big = Stager::create(dir.path(), "big.txt", 4)
            .await
            .expect("stage");
        assert!(matches!(
            big.write(b"12345").await,
            Err(CoreError::TooLarge { .. })
        ));
        drop(big);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("kept")]);
        assert!(Stager::create(dir.path(), " / ", 4).await.is_err());
    }
}
