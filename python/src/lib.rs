//! `firth._firth`, the compiled half of the `firth` Python package.
//!
//! The layer is thin on purpose: every function parses its keyword arguments, calls the library
//! function the `firth` command line calls (with the GIL released, so other Python threads run),
//! and converts the result. Word vectors reach numpy without a copy. Long jobs look at Python's
//! signal handlers from their progress callbacks, so Ctrl-C stops them cleanly (see [`job`]).
//! The pure-Python modules in `firth/` give the classes their gensim- and kenlm-shaped
//! signatures and defaults.

use pyo3::prelude::*;

mod job;
mod models;
mod ngram;
mod translate;
mod vectors;

pyo3::create_exception!(
    firth,
    FirthError,
    pyo3::exceptions::PyValueError,
    "A problem with the input or the settings, with the command line's message: what is wrong \
     and, where it can, what to do about it."
);

#[pymodule]
fn _firth(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("FirthError", m.py().get_type::<FirthError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    ngram::register(m)?;
    vectors::register(m)?;
    models::register(m)?;
    translate::register(m)?;
    Ok(())
}
