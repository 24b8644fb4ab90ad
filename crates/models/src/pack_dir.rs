//! Packs in their own folder: `pack.toml` (a pack entry: detector, embedder, projection head and
//! calibration) beside the head's SafeTensors file. `facegate train --mode embedding` writes them;
//! `--pack DIR` and `serve --packs DIR` register them next to the built-in packs.

use std::fs;
use std::path::{Path, PathBuf};

use facegate_core::{HeadSpec, Manifest, PackSpec, ProjectionHead};
use sha2::{Digest, Sha256};

use crate::ModelsError;

/// File name of a pack folder's manifest.
pub const PACK_MANIFEST: &str = "pack.toml";
/// File name of the head's weights in a pack folder.
pub const HEAD_FILE: &str = "head.safetensors";

/// Resolves `name_or_dir` to a pack name in `manifest`: a built-in name as is, or a folder holding
/// `pack.toml`, whose pack is added (its head file made absolute) unless already there.
///
/// # Errors
/// [`ModelsError::Manifest`] for an unknown name, an unreadable or inconsistent `pack.toml`, or a
/// folder pack whose name is taken by a different pack.
pub fn register_pack(manifest: &mut Manifest, name_or_dir: &str) -> Result<String, ModelsError> {
    let dir = Path::new(name_or_dir);
    let file = dir.join(PACK_MANIFEST);
    if !file.is_file() {
        return match manifest.pack(name_or_dir) {
            Some(pack) => Ok(pack.name.clone()),
            None => Err(ModelsError::Manifest(format!(
                "unknown pack `{name_or_dir}` (neither a built-in pack nor a folder with {PACK_MANIFEST})"
            ))),
        };
    }
    let text =
        fs::read_to_string(&file).map_err(|source| ModelsError::Io { path: file.display().to_string(), source })?;
    let mut pack: PackSpec =
        toml::from_str(&text).map_err(|e| ModelsError::Manifest(format!("{}: {e}", file.display())))?;
    if let Some(head) = &mut pack.head {
        let absolute = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).join(&head.file);
        head.file = absolute.display().to_string();
    }
    manifest.pack_models_of(&pack).map_err(|e| ModelsError::Manifest(format!("{}: {e}", file.display())))?;
    match manifest.pack(&pack.name) {
        Some(existing) if existing.head == pack.head && existing.detector == pack.detector => {}
        Some(_) => {
            return Err(ModelsError::Manifest(format!(
                "{}: pack name `{}` is already taken by another pack",
                file.display(),
                pack.name
            )));
        }
        None => manifest.packs.push(pack.clone()),
    }
    Ok(pack.name)
}

/// Writes a pack folder: the head's weights and `pack.toml` naming them with their sha256. `pack.head`
/// is filled in here.
///
/// # Errors
/// [`ModelsError::Io`] when a file cannot be written; [`ModelsError::Pipeline`] if the head does not serialise.
pub fn write_pack_dir(dir: &Path, mut pack: PackSpec, head: &ProjectionHead) -> Result<PathBuf, ModelsError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ModelsError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let bytes = head.to_safetensors()?;
    let head_path = dir.join(HEAD_FILE);
    fs::write(&head_path, &bytes).map_err(io(&head_path))?;
    pack.head = Some(HeadSpec {
        file: HEAD_FILE.to_string(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        input_size: head.input_size(),
        output_size: head.output_size(),
    });
    let text = toml::to_string_pretty(&pack).map_err(|e| ModelsError::Manifest(e.to_string()))?;
    let manifest_path = dir.join(PACK_MANIFEST);
    fs::write(&manifest_path, text).map_err(io(&manifest_path))?;
    Ok(manifest_path)
}

/// Reads and verifies a registered pack's head.
pub(crate) fn read_head(spec: &HeadSpec) -> Result<ProjectionHead, ModelsError> {
    let path = Path::new(&spec.file);
    let bytes = fs::read(path).map_err(|source| ModelsError::Io { path: spec.file.clone(), source })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(&spec.sha256) {
        return Err(ModelsError::Checksum { path: spec.file.clone(), expected: spec.sha256.clone(), actual });
    }
    Ok(ProjectionHead::from_safetensors(&bytes, spec)?)
}
