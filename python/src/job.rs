//! Running library calls with the GIL released, stopping them on Ctrl-C, showing progress as
//! the command line does, and turning their errors into Python exceptions.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyPermissionError};
use pyo3::prelude::*;

use crate::FirthError;

/// How often a job looks at Python's signal handlers, at most.
const POLL_MS: u64 = 100;

/// One long library call: its stop flag, and the exception that set it.
///
/// Python runs signal handlers only when the interpreter gets the chance, and a job runs with
/// the GIL released; so the job's progress callbacks, which the library calls on the thread
/// that called into it, call [`Job::poll`]: that takes the GIL briefly and runs the handlers.
/// When one raises (KeyboardInterrupt on Ctrl-C), the stop flag is set, the library ends the
/// run at its next check, and [`Job::error`] re-raises that same exception.
pub struct Job {
    pub stop: AtomicBool,
    raised: Mutex<Option<PyErr>>,
    start: Instant,
    last_poll_ms: AtomicU64,
}

impl Job {
    pub fn new() -> Job {
        Job {
            stop: AtomicBool::new(false),
            raised: Mutex::new(None),
            start: Instant::now(),
            last_poll_ms: AtomicU64::new(0),
        }
    }

    /// Runs Python's signal handlers if `POLL_MS` have passed since the last time; returns
    /// true once the job should stop.
    pub fn poll(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return true;
        }
        let now = self.start.elapsed().as_millis() as u64;
        if now.saturating_sub(self.last_poll_ms.load(Ordering::Relaxed)) < POLL_MS {
            return false;
        }
        self.last_poll_ms.store(now, Ordering::Relaxed);
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            if let Ok(mut r) = self.raised.lock() {
                r.get_or_insert(e);
            }
            self.stop.store(true, Ordering::Relaxed);
        }
        self.stop.load(Ordering::Relaxed)
    }

    /// The exception for a run the stop flag ended: the one a signal handler raised, or a
    /// KeyboardInterrupt.
    pub fn stopped(&self) -> PyErr {
        self.raised
            .lock()
            .ok()
            .and_then(|mut r| r.take())
            .unwrap_or_else(|| PyKeyboardInterrupt::new_err("stopped"))
    }
}

/// A model's lock. A panic inside the library while it held the lock leaves the model in
/// an unknown state, so it is refused from then on.
pub fn lock<T>(m: &Mutex<T>) -> PyResult<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| {
        FirthError::new_err("the model is unusable after an earlier panic; load it again")
    })
}

/// A progress bar on stderr in the command line's style, or a hidden one.
pub fn bar(total: u64, show: bool, template: &str) -> indicatif::ProgressBar {
    let pb = if show {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb
}

/// An I/O error as the matching Python exception (FileNotFoundError, PermissionError, OSError).
pub fn io_error(kind: std::io::ErrorKind, msg: String) -> PyErr {
    match kind {
        std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
        std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// A word-vector error as a Python exception with the command line's message.
pub fn vec_error(e: firth_vectors::VecError, job: Option<&Job>) -> PyErr {
    use firth_vectors::VecError;
    match e {
        VecError::Stopped => match job {
            Some(j) => j.stopped(),
            None => PyKeyboardInterrupt::new_err("stopped"),
        },
        VecError::Io { ref error, .. } => io_error(error.kind(), e.to_string()),
        other => FirthError::new_err(other.to_string()),
    }
}

/// An n-gram error as a Python exception with the command line's message.
pub fn ngram_error(e: firth_ngram::Error) -> PyErr {
    use firth_ngram::Error;
    match e {
        Error::Read { ref err, .. } | Error::Write { ref err, .. } => {
            io_error(err.kind(), e.to_string())
        }
        other => FirthError::new_err(other.to_string()),
    }
}

/// An error of the neural pipelines (anyhow, as the command line prints it: the whole chain).
pub fn any_error(e: anyhow::Error, job: Option<&Job>) -> PyErr {
    if let Some(j) = job {
        if j.stop.load(Ordering::Relaxed) {
            return j.stopped();
        }
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return io_error(io.kind(), format!("{e:#}"));
    }
    FirthError::new_err(format!("{e:#}"))
}

/// A value that serde writes as JSON, as Python objects (dicts, lists, numbers).
pub fn to_py<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let s = serde_json::to_string(v).map_err(|e| FirthError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (s,))
}
