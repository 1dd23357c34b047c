//! Converting a chat model's weights once, at first load, into a type llama.cpp runs faster
//! here: on x86 it reads prompts from Q8_0 ~1.7x faster than from Q4_1 (and the first token
//! comes sooner); decoding is about the same (bench/README.md, "Built-in models").
//! The converted file is kept in the cache folder, named after the source's size and time, so
//! a changed model is converted again and an unchanged one never twice.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::catalog::ModelFile;
use crate::config::{LocalConfig, Requantize};

/// `general.file_type` of Q4_1 weights (llama.cpp's `LLAMA_FTYPE_MOSTLY_Q4_1`).
const FILE_TYPE_Q4_1: u64 = 3;

/// The weights to load for `file`: a Q8_0 conversion when the settings ask for it and the
/// model is Q4_1, else the file itself. A conversion that fails is logged and the file is
/// loaded as it is: the model still works, only reads prompts slower.
pub fn weights_for(file: &ModelFile, config: &LocalConfig) -> PathBuf {
    let (Requantize::Q8_0, Some(cache)) = (config.requantize, &config.cache_dir) else {
        return file.path.clone();
    };
    if file.file_type != Some(FILE_TYPE_Q4_1) {
        return file.path.clone();
    }
    match converted(file, cache, config.threads()) {
        Ok(path) => path,
        Err(reason) => {
            tracing::warn!(model = %file.name, %reason, "could not convert the model to Q8_0; loading it as it is");
            file.path.clone()
        }
    }
}

fn converted(file: &ModelFile, cache: &Path, threads: i32) -> Result<PathBuf, String> {
    let modified = std::fs::metadata(&file.path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("cannot read {}: {e}", file.path.display()))?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let target = cache.join(format!("{}-{}-{modified}.q8_0.gguf", file.name, file.bytes));
    if target.is_file() {
        return Ok(target);
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    // Written under a name of this process's and renamed, so a crash never leaves a half file
    // in place and two servers starting on one data folder do not write into the same file.
    let partial = target.with_extension(format!("{}.part", std::process::id()));
    let started = std::time::Instant::now();
    quantize_q8_0(&file.path, &partial, threads)?;
    std::fs::rename(&partial, &target)
        .map_err(|e| format!("cannot move the converted file into place: {e}"))?;
    tracing::info!(model = %file.name, path = %target.display(), ms = started.elapsed().as_millis() as u64, "converted the model's Q4_1 weights to Q8_0");
    remove_stale(cache, &file.name, &target);
    Ok(target)
}

/// Removes this model's earlier conversions (of a file since replaced): `NAME-SIZE-TIME.q8_0.gguf`
/// with other numbers. Another model's files never match, even one whose name starts the same.
fn remove_stale(cache: &Path, name: &str, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let numbers = file_name
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.strip_suffix(".q8_0.gguf"));
        let ours = numbers
            .and_then(|n| n.split_once('-'))
            .is_some_and(|(size, time)| {
                [size, time]
                    .iter()
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
        if ours && path != keep {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an old converted model");
            }
        }
    }
}

/// llama.cpp's own quantizer (`llama_model_quantize`), which `llama-cpp-2` does not wrap.
#[allow(unsafe_code)]
fn quantize_q8_0(from: &Path, to: &Path, threads: i32) -> Result<(), String> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{} has a NUL byte in its path", p.display()))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: the default parameters are plain values; the two paths are NUL-terminated and
    // outlive the call, which reads them and the parameters only during the call. The
    // backend is initialised by the caller (`llama::backend`).
    let status = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.nthread = threads;
        params.ftype = llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0;
        params.allow_requantize = true;
        llama_cpp_sys_2::llama_model_quantize(from_c.as_ptr(), to_c.as_ptr(), &params)
    };
    if status != 0 {
        let _ = std::fs::remove_file(to);
        return Err(format!("llama.cpp's quantizer failed (status {status})"));
    }
    Ok(())
}
