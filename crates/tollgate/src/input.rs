//! Files and standard input read with a limit: a script, a trace or a key
//! larger than what such a thing can be is refused with a clear error before
//! it is read into memory, never read whole.

use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::Path;

/// The largest script `tollgate run` reads: 64 MiB.
pub const SCRIPT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// The largest trace file `replay` and `attack` read: 256 MiB.
pub const TRACE_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// The largest workflow file read: its compile limit, plus one byte so the
/// compiler says by how much it is over.
pub const WORKFLOW_BYTES_MAX: u64 = 1024 * 1024 + 1;
/// The largest key or published head read.
pub const SMALL_BYTES_MAX: u64 = 64 * 1024;

/// Reads `path` (`-`: standard input) as text of at most `max` bytes;
/// `what` names it in errors.
pub fn read(path: &Path, what: &str, max: u64) -> Result<String> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().take(max + 1).read_to_string(&mut text)
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("cannot read {} ({what})", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > max {
            bail!("{what} {} is {size} bytes, over the limit of {max} bytes", path.display());
        }
        file.take(max + 1).read_to_string(&mut text)
    };
    read.with_context(|| format!("cannot read {what} {} as text", path.display()))?;
    if text.len() as u64 > max {
        bail!("{what} {} is over the limit of {max} bytes", path.display());
    }
    Ok(text)
}
