//! Directories for this user only: the data dir and those under it hold the database, the outbox
//! with live links and possibly the master key. A leaf module, so every layer may use it.

/// Creates the data dir (and parents) readable by this user only: it holds the database, the
/// outbox with live links and possibly the master key.
pub fn create(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}
