//! Static files from one folder, with `index.html` for folders and nothing from outside it.

use actix_files::Files;
use std::path::{Path, PathBuf};

/// Serves `root` at `/`. Paths with `..` are refused by `actix-files`; this filter also refuses
/// symbolic links that lead outside `root`.
pub(crate) fn service(root: &Path) -> Files {
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    Files::new("/", root)
        .index_file("index.html")
        .path_filter(move |path, _| stays_inside(&canonical_root, path))
}

fn stays_inside(root: &Path, relative: &Path) -> bool {
    let full: PathBuf = root.join(relative);
    match full.canonicalize() {
        Ok(real) => real.starts_with(root),
        // Missing files are answered 404 by `Files`.
        Err(_) => true,
    }
}
