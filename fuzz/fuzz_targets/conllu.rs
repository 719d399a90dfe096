//! CoNLL-U: `firth_text::conll::parse_columns` with the CoNLL-U rules.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = firth_text::conll::parse_columns(text, "fuzz.conllu", None, true, true);
    }
});
