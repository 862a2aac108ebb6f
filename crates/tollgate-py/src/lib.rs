//! Tollgate for Python: the native module `tollgate._native`, which the
//! pure-Python package `tollgate` (in `python/`) wraps. It owns the
//! boundary only: Python values to the engine's JSON and back, the engine's
//! errors as exceptions of their kind, and the decision object. Decisions
//! are made and stored by `tollgate-engine` (durable) or `tollgate-core`
//! (in memory); this crate decides nothing itself and must not grow a
//! second copy of any rule.

mod convert;
mod decision;
mod engine;
mod errors;
mod memory;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<engine::Engine>()?;
    module.add_class::<decision::Decision>()?;
    module.add_class::<decision::Reason>()?;
    module.add("TollgateError", py.get_type::<errors::TollgateError>())?;
    module.add("BadRequest", py.get_type::<errors::BadRequest>())?;
    module.add("NotFound", py.get_type::<errors::NotFound>())?;
    module.add("Conflict", py.get_type::<errors::Conflict>())?;
    module.add("Damaged", py.get_type::<errors::Damaged>())?;
    module.add("Unavailable", py.get_type::<errors::Unavailable>())?;
    Ok(())
}
