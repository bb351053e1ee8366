//! The log writer's record dict: `lumen_otel._logging.formatters.record_to_dict`, natively.

use pyo3::exceptions::PyAttributeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyString, PyType};

/// Seconds since the epoch of 9999-12-31T23:59:59Z: the last second `%Y` writes in four digits.
const LAST_SECOND: i64 = 253_402_300_799;

static LOG_RECORD: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PYTHON_RFC3339: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static STDLIB_GET_MESSAGE: PyOnceLock<Option<Py<PyAny>>> = PyOnceLock::new();
/// [`FIELDS`] and the attribute hooks, interned once: their hashes are computed once.
static CHECKED_NAMES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();

/// `(year, month, day)` of a count of days since 1970-01-01 (proleptic Gregorian, as `gmtime`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-27T03:30:00.123456Z`, rounded as Python's `round()` rounds (half to even); `None`
/// for a time before 1970 or after 9999, or not a number, which the Python path formats.
fn format_rfc3339(created: f64) -> Option<String> {
    if !created.is_finite() || created < 0.0 {
        return None;
    }
    let mut seconds = created.trunc() as i64;
    let mut micros = ((created - seconds as f64) * 1_000_000.0).round_ties_even() as i64;
    if micros == 1_000_000 {
        seconds += 1;
        micros = 0;
    }
    if seconds > LAST_SECOND {
        return None;
    }
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: i64| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day % 3600 / 60);
    put(17, 2, of_day % 60);
    put(20, 6, micros);
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// `rfc3339(created)`: the record timestamp, or `None` where the Python path must format it.
#[pyfunction]
pub fn rfc3339(created: f64) -> Option<String> {
    format_rfc3339(created)
}

/// Every attribute `record_to_dict` reads.
const FIELDS: [&str; 14] = [
    "created",
    "levelname",
    "name",
    "args",
    "msg",
    "exc_text",
    "service_name",
    "hostname",
    "correlation_id",
    "trace_id",
    "span_id",
    "lumen_extra",
    "lumen_exception",
    "stack_info",
];

/// Whether `LogRecord.getMessage` is still the stdlib's (the first one seen, if it is the
/// `logging` module's own): a patched one is called instead of being inlined.
fn stdlib_get_message(class_dict: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = class_dict.py();
    let Ok(current) = class_dict.get_item(intern!(py, "getMessage")) else {
        return Ok(false);
    };
    let stdlib = STDLIB_GET_MESSAGE.get_or_try_init(py, || -> PyResult<Option<Py<PyAny>>> {
        let module: String = current.getattr(intern!(py, "__module__"))?.extract()?;
        let name: String = current.getattr(intern!(py, "__qualname__"))?.extract()?;
        Ok((module == "logging" && name == "LogRecord.getMessage")
            .then(|| current.clone().unbind()))
    })?;
    Ok(stdlib.as_ref().is_some_and(|function| current.is(function)))
}

/// How a record's attributes are read: straight from the instance dict when that is exactly
/// what `getattr` would find (a plain `logging.LogRecord` whose class defines none of
/// [`FIELDS`], nor `__getattr__`/`__getattribute__`, and keeps the stdlib's `getMessage`: then a
/// missing key is a missing attribute, with no `AttributeError` to build, and the message is
/// `str(msg) % args`), otherwise through `getattr` and `getMessage()`.
enum Fields<'py> {
    Instance(Bound<'py, PyAny>, Bound<'py, PyDict>),
    Attributes(Bound<'py, PyAny>),
}

impl<'py> Fields<'py> {
    fn of(record: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = record.py();
        let plain = LOG_RECORD.import(py, "logging", "LogRecord")?;
        if record.get_type().is(plain) {
            let class_dict = plain.getattr(intern!(py, "__dict__"))?;
            let names = CHECKED_NAMES.get_or_init(py, || {
                FIELDS
                    .iter()
                    .chain(&["__getattr__", "__getattribute__"])
                    .map(|name| PyString::intern(py, name).unbind())
                    .collect()
            });
            let mut shadowed = false;
            for name in names {
                if class_dict.contains(name.bind(py))? {
                    shadowed = true;
                    break;
                }
            }
            if !shadowed {
                shadowed = !stdlib_get_message(&class_dict)?;
            }
            if !shadowed {
                if let Ok(instance) = record
                    .getattr(intern!(py, "__dict__"))?
                    .cast_into::<PyDict>()
                {
                    return Ok(Fields::Instance(record.clone(), instance));
                }
            }
        }
        Ok(Fields::Attributes(record.clone()))
    }

    fn record(&self) -> &Bound<'py, PyAny> {
        match self {
            Fields::Instance(record, _) | Fields::Attributes(record) => record,
        }
    }

    /// `record.<name>`: a missing attribute raises `AttributeError`, as in Python.
    fn get(&self, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        if let Fields::Instance(_, instance) = self {
            if let Some(value) = instance.get_item(name)? {
                return Ok(value);
            }
        }
        self.record().getattr(name)
    }

    /// `getattr(record, name, None)`: only a missing attribute becomes `None`.
    fn get_or_none(&self, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        let py = name.py();
        match self {
            Fields::Instance(_, instance) => Ok(instance
                .get_item(name)?
                .unwrap_or_else(|| py.None().into_bound(py))),
            Fields::Attributes(record) => match record.getattr(name) {
                Ok(value) => Ok(value),
                Err(err) if err.is_instance_of::<PyAttributeError>(py) => {
                    Ok(py.None().into_bound(py))
                }
                Err(err) => Err(err),
            },
        }
    }
}

/// The record's message, as `record.getMessage() if record.args else str(record.msg)`; for a
/// plain `logging.LogRecord` `getMessage` is inlined (`str(msg) % args`), a subclass's is called.
fn message<'py>(fields: &Fields<'py>) -> PyResult<Bound<'py, PyAny>> {
    let record = fields.record();
    let py = record.py();
    let args = fields.get(intern!(py, "args"))?;
    if !args.is_truthy()? {
        return Ok(fields.get(intern!(py, "msg"))?.str()?.into_any());
    }
    match fields {
        Fields::Instance(..) => fields.get(intern!(py, "msg"))?.str()?.rem(args),
        Fields::Attributes(_) => record.call_method0(intern!(py, "getMessage")),
    }
}

/// `formatters.record_to_dict(record)`: the same keys, in the same order, holding the same
/// objects, and the same exceptions for a broken record. A timestamp that is not a float, or
/// outside 1970..9999, is formatted by the Python `formatters.rfc3339`.
#[pyfunction]
pub fn record_to_dict<'py>(record: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = record.py();
    let fields = Fields::of(record)?;
    let created = fields.get(intern!(py, "created"))?;
    let native = match created.cast::<PyFloat>() {
        Ok(seconds) => format_rfc3339(seconds.value()),
        Err(_) => None,
    };
    let data = PyDict::new(py);
    match native {
        Some(timestamp) => data.set_item(intern!(py, "timestamp"), timestamp)?,
        None => {
            let python = PYTHON_RFC3339.import(py, "lumen_otel._logging.formatters", "rfc3339")?;
            data.set_item(intern!(py, "timestamp"), python.call1((created,))?)?
        }
    }
    data.set_item(intern!(py, "level"), fields.get(intern!(py, "levelname"))?)?;
    data.set_item(
        intern!(py, "service_name"),
        fields.get_or_none(intern!(py, "service_name"))?,
    )?;
    data.set_item(
        intern!(py, "hostname"),
        fields.get_or_none(intern!(py, "hostname"))?,
    )?;
    data.set_item(intern!(py, "logger"), fields.get(intern!(py, "name"))?)?;
    data.set_item(intern!(py, "message"), message(&fields)?)?;
    data.set_item(
        intern!(py, "correlation_id"),
        fields.get_or_none(intern!(py, "correlation_id"))?,
    )?;
    data.set_item(
        intern!(py, "trace_id"),
        fields.get_or_none(intern!(py, "trace_id"))?,
    )?;
    data.set_item(
        intern!(py, "span_id"),
        fields.get_or_none(intern!(py, "span_id"))?,
    )?;
    let extras = fields.get_or_none(intern!(py, "lumen_extra"))?;
    if extras.is_truthy()? {
        if let Ok(extras) = extras.cast_exact::<PyDict>() {
            for (key, value) in extras.iter() {
                if !data.contains(&key)? {
                    data.set_item(key, value)?;
                }
            }
        } else {
            for item in extras.call_method0(intern!(py, "items"))?.try_iter()? {
                let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item?.extract()?;
                if !data.contains(&key)? {
                    data.set_item(key, value)?;
                }
            }
        }
    }
    let exception = fields.get_or_none(intern!(py, "lumen_exception"))?;
    if !exception.is_none() {
        data.set_item(intern!(py, "exception"), exception)?;
    } else {
        let exc_text = fields.get(intern!(py, "exc_text"))?;
        if exc_text.is_truthy()? {
            let stack = PyDict::new(py);
            stack.set_item(intern!(py, "type"), py.None())?;
            stack.set_item(intern!(py, "message"), py.None())?;
            stack.set_item(intern!(py, "stacktrace"), exc_text)?;
            data.set_item(intern!(py, "exception"), stack)?;
        }
    }
    let stack_info = fields.get_or_none(intern!(py, "stack_info"))?;
    if stack_info.is_truthy()? {
        data.set_item(intern!(py, "stack_info"), stack_info)?;
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_microseconds() {
        assert_eq!(
            format_rfc3339(0.0).as_deref(),
            Some("1970-01-01T00:00:00.000000Z")
        );
        assert_eq!(
            format_rfc3339(1_795_000_000.5).as_deref(),
            Some("2026-11-18T11:06:40.500000Z")
        );
        assert_eq!(
            format_rfc3339(951_782_400.0).as_deref(),
            Some("2000-02-29T00:00:00.000000Z")
        );
        assert_eq!(
            format_rfc3339(0.999_999_9).as_deref(),
            Some("1970-01-01T00:00:01.000000Z")
        );
    }

    #[test]
    fn leaves_what_it_cannot_write_to_python() {
        assert_eq!(format_rfc3339(-1.0), None);
        assert_eq!(format_rfc3339(f64::NAN), None);
        assert_eq!(format_rfc3339(1e12), None);
    }
}
