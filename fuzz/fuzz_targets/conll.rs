//! CoNLL column files: `firth_text::conll::parse_columns` (readers refuse invalid UTF-8 first).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = firth_text::conll::parse_columns(text, "fuzz.conll", None, true, false);
        let _ = firth_text::conll::parse_columns(text, "fuzz.conll", None, false, false);
    }
});
