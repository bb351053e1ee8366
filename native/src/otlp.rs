//! OTLP protobuf: the repeated `KeyValue` attribute fields of log records and spans, natively
//! (`lumen_otel._otlp.wire.attribute_entries`).

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString, PyType};

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn push_delimited(out: &mut Vec<u8>, tag: &[u8], payload: &[u8]) {
    out.extend_from_slice(tag);
    push_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// The `AnyValue` of a str, bool, int64 or float; `Ok(false)` for any other value.
fn any_value(value: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<bool> {
    if value.is_exact_instance_of::<PyString>() {
        push_delimited(out, b"\x0a", value.cast::<PyString>()?.to_str()?.as_bytes());
    } else if value.is_exact_instance_of::<PyBool>() {
        out.extend_from_slice(&[0x10, u8::from(value.is_truthy()?)]);
    } else if value.is_exact_instance_of::<PyInt>() {
        let Ok(number) = value.extract::<i64>() else {
            return Ok(false); // outside int64: upstream's encoder decides
        };
        out.push(0x18);
        push_varint(out, number as u64);
    } else if value.is_exact_instance_of::<PyFloat>() {
        out.push(0x21);
        out.extend_from_slice(&value.cast::<PyFloat>()?.value().to_le_bytes());
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// Every `(key, value)` of `items` as one `KeyValue` field under `tag`, concatenated: the
/// bytes `attribute_entries` hands to `add` one entry at a time. A key that is not a non-empty
/// str, or a value this encoder does not write, raises `unsupported` (the item then goes to the
/// upstream encoder); text UTF-8 cannot hold raises `UnicodeEncodeError`, key before value.
#[pyfunction]
pub fn attribute_entries<'py>(
    py: Python<'py>,
    tag: &[u8],
    items: &Bound<'py, PyAny>,
    unsupported: &Bound<'py, PyType>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(256);
    let mut entry = Vec::with_capacity(128);
    let mut value_bytes = Vec::with_capacity(96);
    for item in items.try_iter()? {
        let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item?.extract()?;
        let Ok(key) = key.cast_exact::<PyString>() else {
            return Err(PyErr::from_type(unsupported.clone(), ()));
        };
        let name = key.to_str()?;
        if name.is_empty() {
            return Err(PyErr::from_type(unsupported.clone(), ()));
        }
        value_bytes.clear();
        if !any_value(&value, &mut value_bytes)? {
            return Err(PyErr::from_type(unsupported.clone(), ()));
        }
        entry.clear();
        push_delimited(&mut entry, b"\x0a", name.as_bytes());
        push_delimited(&mut entry, b"\x12", &value_bytes);
        push_delimited(&mut out, tag, &entry);
    }
    Ok(PyBytes::new(py, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_base_128() {
        let mut out = Vec::new();
        push_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        push_varint(&mut out, u64::MAX);
        assert_eq!(out.len(), 10);
    }
}
