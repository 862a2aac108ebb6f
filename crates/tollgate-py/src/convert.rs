//! Python values to JSON and back, walked directly (no JSON text in
//! between: a decision's arguments cross the boundary in well under a
//! microsecond). Anything that is not JSON (a set, a NaN, a dict with an
//! integer key, nesting deeper than [`DEPTH_MAX`]) is refused, never
//! guessed at.

use crate::errors::BadRequest;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value as Json};

/// Deepest nesting of lists and objects accepted from Python.
pub(crate) const DEPTH_MAX: usize = 128;

/// A Python value (None, bool, int, float, str, list, tuple, dict with str
/// keys) as JSON.
pub(crate) fn to_json(value: &Bound<'_, PyAny>) -> PyResult<Json> {
    to_json_at(value, 0)
}

fn to_json_at(value: &Bound<'_, PyAny>, depth: usize) -> PyResult<Json> {
    if depth > DEPTH_MAX {
        return Err(BadRequest::new_err(format!("a value is nested deeper than {DEPTH_MAX} levels")));
    }
    if value.is_none() {
        return Ok(Json::Null);
    }
    // bool before int: Python's bool is an int.
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(Json::Bool(flag.is_true()));
    }
    if let Ok(int) = value.cast::<PyInt>() {
        if let Ok(small) = int.extract::<i64>() {
            return Ok(Json::Number(small.into()));
        }
        if let Ok(large) = int.extract::<u64>() {
            return Ok(Json::Number(large.into()));
        }
        return Err(BadRequest::new_err("an integer is outside the 64-bit range JSON numbers carry here"));
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        return Number::from_f64(float.value())
            .map(Json::Number)
            .ok_or_else(|| BadRequest::new_err("a number is not finite (NaN or infinity is not JSON)"));
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Json::String(text.to_str()?.to_owned()));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut object = Map::new();
        for (key, item) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(BadRequest::new_err("an object key is not a string"));
            };
            object.insert(key.to_str()?.to_owned(), to_json_at(&item, depth + 1)?);
        }
        return Ok(Json::Object(object));
    }
    if let Ok(list) = value.cast::<PyList>() {
        return list.iter().map(|item| to_json_at(&item, depth + 1)).collect::<PyResult<Vec<_>>>().map(Json::Array);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return tuple.iter().map(|item| to_json_at(&item, depth + 1)).collect::<PyResult<Vec<_>>>().map(Json::Array);
    }
    let type_name = value.get_type().name().map(|name| name.to_string()).unwrap_or_else(|_| "?".to_owned());
    Err(BadRequest::new_err(format!("a value of type {type_name} is not JSON")))
}

/// JSON as Python values (dicts, lists, str, int, float, bool, None).
pub(crate) fn to_py<'py>(py: Python<'py>, value: &Json) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Json::Null => py.None().into_bound(py),
        Json::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Json::Number(number) => {
            if let Some(small) = number.as_i64() {
                small.into_pyobject(py)?.into_any()
            } else if let Some(large) = number.as_u64() {
                large.into_pyobject(py)?.into_any()
            } else {
                number.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Json::String(text) => PyString::new(py, text).into_any(),
        Json::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Json::Object(object) => {
            let dict = PyDict::new(py);
            for (key, item) in object {
                dict.set_item(key, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}
