//! lumen-otel's optional native accelerator.
//!
//! Each function here has a pure-Python twin in `lumen_otel` that stays the reference: the
//! Python package uses these only when this module is installed at its own version, and the
//! differential tests (`tests/test_native_differential.py`) require the same output from both.
//! The functions convert Python objects while holding the GIL; none of them does pure-Rust work
//! long enough to be worth releasing it (a record or an attribute set is a few hundred bytes).

use pyo3::prelude::*;

mod otlp;
mod record;

#[pymodule]
fn lumen_otel_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(record::record_to_dict, m)?)?;
    m.add_function(wrap_pyfunction!(record::rfc3339, m)?)?;
    m.add_function(wrap_pyfunction!(otlp::attribute_entries, m)?)?;
    Ok(())
}
