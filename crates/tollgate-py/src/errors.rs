//! The exceptions: one per [`tollgate_engine::ErrorKind`], under
//! `TollgateError`, so Python code catches what it can act on, exactly as
//! every other surface maps the engine's errors in one match.

use pyo3::PyErr;
use pyo3::exceptions::PyException;
use tollgate_engine::ErrorKind;

pyo3::create_exception!(
    _native,
    TollgateError,
    PyException,
    "Any error Tollgate reports; `kind` names what the caller can do about it."
);
pyo3::create_exception!(
    _native,
    BadRequest,
    TollgateError,
    "What was sent cannot be accepted; sent again unchanged, it fails again."
);
pyo3::create_exception!(_native, NotFound, TollgateError, "What the request names does not exist (for this tenant).");
pyo3::create_exception!(
    _native,
    Conflict,
    TollgateError,
    "The request clashes with what is stored: look at the current state first."
);
pyo3::create_exception!(
    _native,
    Damaged,
    TollgateError,
    "Stored data is damaged or does not replay; a person must look."
);
pyo3::create_exception!(
    _native,
    Unavailable,
    TollgateError,
    "The store failed or could not be reached; nothing was stored, try again."
);

/// The name of an error kind, as Python code and the decision of a failure
/// name it (`tollgate.error.<kind>`).
pub(crate) fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Damaged => "damaged",
        ErrorKind::Unavailable => "unavailable",
    }
}

/// The exception of a kind named by [`kind_name`], with `message`.
pub(crate) fn by_kind_name(kind: &str, message: String) -> PyErr {
    match kind {
        "bad_request" => BadRequest::new_err(message),
        "not_found" => NotFound::new_err(message),
        "conflict" => Conflict::new_err(message),
        "damaged" => Damaged::new_err(message),
        "unavailable" => Unavailable::new_err(message),
        _ => TollgateError::new_err(message),
    }
}

/// An engine error as the exception of its kind.
pub(crate) fn from_engine(error: &tollgate_engine::Error) -> PyErr {
    by_kind_name(kind_name(error.kind()), error.to_string())
}
