//! `label<TAB>text` files: `firth_text::sentiment::parse_tsv`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = firth_text::sentiment::parse_tsv(text, std::path::Path::new("fuzz.tsv"));
    }
});
