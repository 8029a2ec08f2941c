//! The `usage-reporting` CronJob binary; all behaviour lives in the library.

fn main() -> std::process::ExitCode {
    common::harness::main::<usage_reporting::UsageReporting>()
}
