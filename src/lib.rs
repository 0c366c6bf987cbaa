//! The order system's operator side: [`services`] names every function (the registry the local
//! runtime builds them with), [`demo`] tells the story end to end, [`audit`] checks the end state
//! of every order, [`dlq`] lists, redrives and purges dead-letter queues, [`report`] tells what
//! each service did for one order. The local runtime itself is the `local-runtime` crate.

pub mod audit;
pub mod cli;
pub mod demo;
pub mod dlq;
pub mod live;
pub mod report;
pub mod services;
pub mod shop;

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

    /// `rust-version` says what the locked dependencies need: the highest `rust-version` among
    /// them, no lower (the build would fail on the declared toolchain) and no higher (it would
    /// turn away toolchains that work).
    #[test]
    fn the_declared_rust_version_is_what_the_locked_dependencies_need() {
        // The packages this host builds (others, such as Windows-only crates, are not
        // downloaded and so cannot be read offline).
        let rustc = std::process::Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("rustc runs");
        let host = String::from_utf8_lossy(&rustc.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
            .expect("rustc names its host");
        let output = std::process::Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--locked", "--offline"])
            .args(["--filter-platform", &host])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let version = |text: &str| -> Vec<u64> {
            text.split('.')
                .map(|part| part.parse().unwrap_or(0))
                .collect()
        };
        let packages = metadata["packages"].as_array().unwrap();
        let workspace: Vec<&str> = metadata["workspace_members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|id| id.as_str())
            .collect();
        let (needed, by) = packages
            .iter()
            .filter(|p| !workspace.contains(&p["id"].as_str().unwrap_or_default()))
            .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].as_str()?)))
            .max()
            .expect("dependencies declare rust-version");
        let declared = packages
            .iter()
            .find(|p| p["name"] == "orderflow")
            .and_then(|p| p["rust_version"].as_str())
            .map(version)
            .expect("the workspace declares rust-version");
        assert_eq!(
            declared, needed,
            "{by} needs rust {needed:?}; Cargo.toml declares {declared:?}"
        );
    }
}
