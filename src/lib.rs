//! The local runtime and operator CLI of the order fan-out.
//!
//! [`runtime::LocalRuntime`] reads `template.yaml`, creates the same resources on an AWS
//! emulator ([`emulator`] runs moto unless `AWS_ENDPOINT_URL` points elsewhere), serves the HTTP
//! API on localhost and plays Lambda's SQS event source mapping for every consumer, running the
//! functions' own handler code in this process. [`faults`] injects AWS faults between the
//! functions and the endpoint.
//!
//! For operators: [`audit`] checks the end state of every order, [`dlq`] lists, redrives and
//! purges dead-letter queues, [`report`] tells what each service did for one order.

pub mod audit;
pub mod client;
pub mod demo;
pub mod dlq;
pub mod emulator;
pub mod faults;
pub mod functions;
pub mod provision;
pub mod report;
pub mod runtime;
pub mod template;

#[cfg(test)]
mod tests {
    /// The batch processor turns a panicking record into a failed record by catching the
    /// unwind; with `panic = "abort"` one bad record would kill the whole invocation.
    #[test]
    fn the_release_profile_keeps_panics_unwinding() {
        let manifest = include_str!("../Cargo.toml");
        let release = manifest
            .split("[profile.release]")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .expect("a [profile.release] section");
        let panic = release
            .lines()
            .find_map(|line| line.trim().strip_prefix("panic").map(str::trim))
            .expect("panic is set explicitly");
        assert_eq!(panic, "= \"unwind\"");
    }
}
