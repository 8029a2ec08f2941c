//! The config loader: any text is a config or errors naming file, line and field, never a
//! panic; a config that parses validates without one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ttl_teardown::config::TtlConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match common::config::parse_str::<common::config::JobConfig<TtlConfig>>(text, "fuzz.yaml") {
        Ok(c) => {
            let _ = c.validate_sinks("fuzz.yaml");
            let _ = c.job.validate();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
