//! SST trees: `firth_text::sentiment::parse_sst`, sentence and phrase modes.
#![no_main]
use firth_text::sentiment::{parse_sst, SstOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = std::path::Path::new("fuzz.txt");
        let _ = parse_sst(text, path, SstOptions::default());
        let phrases = SstOptions {
            phrases: true,
            ..SstOptions::default()
        };
        let _ = parse_sst(text, path, phrases);
    }
});
