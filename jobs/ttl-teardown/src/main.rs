//! The `ttl-teardown` CronJob binary; all behaviour lives in the library.

fn main() -> std::process::ExitCode {
    common::harness::main::<ttl_teardown::TtlTeardown>()
}
