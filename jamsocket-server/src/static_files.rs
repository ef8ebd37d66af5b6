//! Static files from one folder, with `index.html` for folders and nothing from outside it.

use actix_files::Files;
use std::path::{Path, PathBuf};

/// The file served for a folder.
const INDEX_FILE: &str = "index.html";

/// Serves `root` at `/`. Paths with `..` are refused by `actix-files`; this filter also refuses
/// (404) any file that resolves, through symbolic links, outside `root`: the requested file
/// itself, and for a folder the `index.html` that would be opened.
pub(crate) fn service(root: &Path) -> Files {
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    Files::new("/", root)
        .index_file(INDEX_FILE)
        .path_filter(move |path, _| stays_inside(&canonical_root, path))
}

/// Whether the file `Files` would open for `relative` resolves inside `root` (canonical).
fn stays_inside(root: &Path, relative: &Path) -> bool {
    let full: PathBuf = root.join(relative);
    let Ok(real) = full.canonicalize() else {
        // Missing files are answered 404 by `Files`.
        return true;
    };
    if !real.starts_with(root) {
        return false;
    }
    if real.is_dir() {
        // `Files` opens the index file of a folder without asking the filter again.
        match real.join(INDEX_FILE).canonicalize() {
            Ok(index) => index.starts_with(root),
            Err(_) => true,
        }
    } else {
        true
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn index_files_and_links_are_checked_where_they_lead() {
        let dir =
            std::env::temp_dir().join(format!("jamsocket-stays-inside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("public/out")).unwrap();
        std::fs::create_dir_all(dir.join("public/in")).unwrap();
        std::fs::write(dir.join("secret.html"), "secret").unwrap();
        std::fs::write(dir.join("public/page.html"), "page").unwrap();
        let link = |target: &str, at: &str| {
            std::os::unix::fs::symlink(target, dir.join("public").join(at)).unwrap()
        };
        link("../../secret.html", "out/index.html");
        link("../page.html", "in/index.html");
        link("page.html", "alias.html");
        let root = dir.join("public").canonicalize().unwrap();

        assert!(!stays_inside(&root, Path::new("out")));
        assert!(stays_inside(&root, Path::new("in")));
        assert!(stays_inside(&root, Path::new("alias.html")));
        assert!(stays_inside(&root, Path::new("")));
        assert!(stays_inside(&root, Path::new("missing.html")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
