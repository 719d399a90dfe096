//! ARPA text: `firth_ngram::arpa::read_arpa_from`, told the input's size as `read_arpa` is.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.arpa");
    let _ = firth_ngram::arpa::read_arpa_from(data, path, Some(data.len() as u64));
});
