//! Reads a GGUF file's header: metadata and tensor table, without loading weights. It lets
//! Hearth say precisely what is wrong with a file (not GGUF, truncated, corrupt) before handing it
//! to llama.cpp, whose own failure says only "null result".

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

const MAGIC: &[u8; 4] = b"GGUF";
/// Bounds that a sane header never exceeds; a corrupt count must not make us allocate gigabytes.
const MAX_STRING: u64 = 64 << 20;
const MAX_COUNT: u64 = 1 << 24;
const MAX_DIMS: u32 = 8;

/// What the header says.
#[derive(Clone, Debug, Default)]
pub struct GgufInfo {
    pub version: u32,
    /// String and integer metadata (arrays are skipped).
    pub strings: HashMap<String, String>,
    pub integers: HashMap<String, u64>,
    pub tensor_count: u64,
    /// Bytes the file must have for every tensor's data to be present.
    pub required_len: u64,
}

impl GgufInfo {
    /// `general.architecture`, e.g. `llama`.
    pub fn architecture(&self) -> Option<&str> {
        self.strings.get("general.architecture").map(String::as_str)
    }

    /// The Jinja chat template, when the model carries one.
    pub fn chat_template(&self) -> Option<&str> {
        self.strings
            .get("tokenizer.chat_template")
            .map(String::as_str)
    }

    /// `general.file_type`: how the weights are quantized (3 is Q4_1, 7 is Q8_0).
    pub fn file_type(&self) -> Option<u64> {
        self.integers.get("general.file_type").copied()
    }

    /// The context length the model was trained with.
    pub fn context_length(&self) -> Option<u64> {
        let arch = self.architecture()?;
        self.integers
            .get(&format!("{arch}.context_length"))
            .copied()
    }
}

/// Why a file is not a usable GGUF.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GgufError {
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("not a GGUF file (it does not start with the GGUF magic bytes)")]
    NotGguf,
    #[error("GGUF version {0} is not supported (2 and 3 are)")]
    Version(u32),
    #[error("the file is truncated: {0}")]
    Truncated(String),
    #[error("the header is corrupt: {0}")]
    Corrupt(String),
}

/// Reads and checks the header of the GGUF file at `path`.
pub fn read(path: &Path) -> Result<GgufInfo, GgufError> {
    let file = std::fs::File::open(path).map_err(|e| GgufError::Io(e.to_string()))?;
    let file_len = file
        .metadata()
        .map_err(|e| GgufError::Io(e.to_string()))?
        .len();
    let mut r = Reader {
        inner: BufReader::new(file),
    };
    let mut magic = [0u8; 4];
    r.exact(&mut magic)
        .map_err(|_| GgufError::NotGguf)
        .and_then(|()| {
            if &magic == MAGIC {
                Ok(())
            } else {
                Err(GgufError::NotGguf)
            }
        })?;
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    if tensor_count > MAX_COUNT || kv_count > MAX_COUNT {
        return Err(GgufError::Corrupt(format!(
            "{tensor_count} tensors and {kv_count} metadata entries"
        )));
    }
    let mut info = GgufInfo {
        version,
        tensor_count,
        ..GgufInfo::default()
    };
    for _ in 0..kv_count {
        let key = r.string()?;
        let kind = r.u32()?;
        match r.value(kind)? {
            Value::Str(s) => {
                info.strings.insert(key, s);
            }
            Value::Int(i) => {
                info.integers.insert(key, i);
            }
            Value::Other => {}
        }
    }
    let alignment = info
        .integers
        .get("general.alignment")
        .copied()
        .unwrap_or(32)
        .max(1);
    let mut data_end = 0u64;
    for _ in 0..tensor_count {
        let name = r.string()?;
        let dims = r.u32()?;
        if dims > MAX_DIMS {
            return Err(GgufError::Corrupt(format!(
                "tensor `{name}` has {dims} dimensions"
            )));
        }
        let mut elements = 1u64;
        for _ in 0..dims {
            elements = elements.saturating_mul(r.u64()?);
        }
        let ty = r.u32()?;
        let offset = r.u64()?;
        if let Some(size) = tensor_bytes(ty, elements) {
            data_end = data_end.max(offset.saturating_add(size));
        }
    }
    let header_end = r
        .inner
        .stream_position()
        .map_err(|e| GgufError::Io(e.to_string()))?;
    let data_start = header_end.div_ceil(alignment) * alignment;
    info.required_len = if data_end == 0 {
        header_end
    } else {
        data_start.saturating_add(data_end)
    };
    if info.required_len > file_len {
        return Err(GgufError::Truncated(format!(
            "the tensors need {} bytes but the file has {file_len}",
            info.required_len
        )));
    }
    Ok(info)
}

enum Value {
    Str(String),
    Int(u64),
    Other,
}

struct Reader<R> {
    inner: R,
}

impl<R: Read> Reader<R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                GgufError::Truncated("the header ends early".into())
            }
            _ => GgufError::Io(e.to_string()),
        })
    }

    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| GgufError::Io(e.to_string()))?;
        if copied == n {
            Ok(())
        } else {
            Err(GgufError::Truncated("the header ends early".into()))
        }
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > MAX_STRING {
            return Err(GgufError::Corrupt(format!("a string of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.exact(&mut buf)?;
        String::from_utf8(buf).map_err(|_| GgufError::Corrupt("a string is not UTF-8".into()))
    }

    fn value(&mut self, kind: u32) -> Result<Value, GgufError> {
        Ok(match kind {
            // uint8, int8, bool
            0 | 1 | 7 => {
                let mut b = [0u8; 1];
                self.exact(&mut b)?;
                Value::Int(u64::from(b[0]))
            }
            2 | 3 => {
                let mut b = [0u8; 2];
                self.exact(&mut b)?;
                Value::Int(u64::from(u16::from_le_bytes(b)))
            }
            4 | 5 => Value::Int(u64::from(self.u32()?)),
            6 => {
                self.u32()?;
                Value::Other
            }
            8 => Value::Str(self.string()?),
            9 => {
                let item = self.u32()?;
                let count = self.u64()?;
                if count > MAX_COUNT {
                    return Err(GgufError::Corrupt(format!("an array of {count} items")));
                }
                match scalar_size(item) {
                    Some(size) => self.skip(size * count)?,
                    None if item == 8 => {
                        for _ in 0..count {
                            let len = self.u64()?;
                            if len > MAX_STRING {
                                return Err(GgufError::Corrupt(format!("a string of {len} bytes")));
                            }
                            self.skip(len)?;
                        }
                    }
                    None => {
                        return Err(GgufError::Corrupt(format!(
                            "an array of unknown type {item}"
                        )))
                    }
                }
                Value::Other
            }
            10 | 11 => Value::Int(self.u64()?),
            12 => {
                self.u64()?;
                Value::Other
            }
            other => return Err(GgufError::Corrupt(format!("unknown value type {other}"))),
        })
    }
}

fn scalar_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// Bytes of a tensor of `elements` values of ggml type `ty` (block size, bytes per block), for
/// the types GGUF files use; `None` for a type this table does not know (then unchecked).
fn tensor_bytes(ty: u32, elements: u64) -> Option<u64> {
    let (block, bytes) = match ty {
        0 => (1, 4),     // F32
        1 => (1, 2),     // F16
        2 => (32, 18),   // Q4_0
        3 => (32, 20),   // Q4_1
        6 => (32, 22),   // Q5_0
        7 => (32, 24),   // Q5_1
        8 => (32, 34),   // Q8_0
        9 => (32, 36),   // Q8_1
        10 => (256, 84), // Q2_K
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        24 => (1, 1), // I8
        25 => (1, 2), // I16
        26 => (1, 4), // I32
        27 => (1, 8), // I64
        28 => (1, 8), // F64
        30 => (1, 2), // BF16
        _ => return None,
    };
    Some(elements.div_ceil(block) * bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny GGUF: one string, one integer, one tensor of 8 f32 values.
    fn tiny(arch: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        let s = |b: &mut Vec<u8>, s: &str| {
            b.extend_from_slice(&(s.len() as u64).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        };
        s(&mut b, "general.architecture");
        b.extend_from_slice(&8u32.to_le_bytes());
        s(&mut b, arch);
        s(&mut b, &format!("{arch}.context_length"));
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&512u32.to_le_bytes());
        s(&mut b, "w");
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&8u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        while b.len() % 32 != 0 {
            b.push(0);
        }
        b.extend_from_slice(&[0u8; 32]);
        b
    }

    fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, bytes).expect("write");
        f
    }

    #[test]
    fn reads_metadata_and_checks_the_data_is_all_there() {
        let f = write(&tiny("llama"));
        let info = read(f.path()).expect("valid");
        assert_eq!(info.architecture(), Some("llama"));
        assert_eq!(info.context_length(), Some(512));
        assert_eq!(info.tensor_count, 1);
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(
            read(write(b"PK\x03\x04 a zip").path()).expect_err("fails"),
            GgufError::NotGguf
        );
        assert_eq!(
            read(write(b"").path()).expect_err("fails"),
            GgufError::NotGguf
        );
        let full = tiny("llama");
        let cut = &full[..full.len() - 8];
        assert!(matches!(
            read(write(cut).path()).expect_err("fails"),
            GgufError::Truncated(_)
        ));
        assert!(matches!(
            read(write(&full[..40]).path()).expect_err("fails"),
            GgufError::Truncated(_)
        ));
        let mut v9 = full.clone();
        v9[4] = 9;
        assert_eq!(
            read(write(&v9).path()).expect_err("fails"),
            GgufError::Version(9)
        );
    }
}
