//! The whitelist loader: any text is a whitelist or a list of problems, never a panic; a
//! whitelist that loads answers for any ARN.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match whitelist::Whitelist::from_yaml_str(text, "fuzz.yaml") {
        Ok(w) => {
            let _ = w.origin();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = whitelist::arn::split_arn(text);
    let _ = whitelist::arn::glob_match(text, "arn:aws:ec2:us-east-1:123456789012:instance/i-1");
});
