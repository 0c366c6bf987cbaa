//! The documentation against the code, so that neither drifts from the other: README.md and
//! every document in `docs/`:
//!
//! - every `cargo run` command (in a code block or inline code) parses with the CLI's own parser,
//!   `orderflow::cli::Cli`;
//! - every `curl` names a route and method of `events/openapi.yaml`;
//! - every relative link reaches a file, and every `#anchor` a heading of it;
//! - every `cargo lambda deploy` gives its function exactly the environment the template gives it;
//! - every `cargo lambda invoke --data-file` names a function of the template and a sample there is;
//! - every script or file of the repository a command runs or reads (`infra/...`, `.ci/run`,
//!   `events/...`, `benchmarks/run.sh`) is there.
//!
//! CI runs the README's tour for real (`infra/ci/tour.sh`); `tests/e2e/cli.rs` runs the operator
//! commands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::Parser;
use local_runtime::template::Topology;
use orderflow::cli::Cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (path relative to the root, text) of README.md and every document in docs/.
fn documents() -> Vec<(PathBuf, String)> {
    let mut paths = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ is there")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .map(|path| PathBuf::from("docs").join(path.file_name().expect("a file name")))
        .collect();
    docs.sort();
    paths.extend(docs);
    assert!(paths.len() >= 8, "README.md and the documents in docs/");
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(root().join(&path)).expect("readable");
            (path, text)
        })
        .collect()
}

/// The lines of a document's code blocks, a line continued with `\` joined to the next.
fn code_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    lines
}

/// The inline code spans of a document's prose (outside code blocks).
fn inline_code(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut in_block = false;
    let mut prose = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block {
            prose.push_str(line);
            prose.push(' ');
        }
    }
    let mut parts = prose.split('`');
    parts.next();
    while let Some(span) = parts.next() {
        spans.push(span.to_owned());
        parts.next();
    }
    spans
}

/// A shell command's words: whitespace-separated, quotes removed.
fn words(command: &str) -> Vec<String> {
    command
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The CLI arguments of every `cargo run` of the orderflow binary in `text`.
fn cargo_run_commands(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for source in code_lines(text).into_iter().chain(inline_code(text)) {
        let mut rest = source.as_str();
        while let Some(at) = rest.find("cargo run") {
            let command = &rest[at..];
            // The command ends at a comment, a subshell's end, or the next command.
            let end = ["#", ")", ";", "&&", "|", "    "]
                .iter()
                .filter_map(|stop| command.find(stop))
                .min()
                .unwrap_or(command.len());
            found.push(command[..end].trim().to_owned());
            rest = &command["cargo run".len()..];
        }
    }
    found
}

#[test]
fn every_cargo_run_command_in_the_docs_parses_with_the_cli() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for (path, text) in documents() {
        for command in cargo_run_commands(&text) {
            let words = words(&command);
            // The words `cargo run` in prose, or another package's binary (the benchmarks).
            if words.len() == 2
                || words
                    .iter()
                    .any(|w| w == "-p" || w == "--package" || w == "--bin")
            {
                continue;
            }
            let Some(separator) = words.iter().position(|w| w == "--") else {
                problems.push(format!("{}: `{command}` has no `--`", path.display()));
                continue;
            };
            let args = std::iter::once("orderflow")
                .chain(words[separator + 1..].iter().map(String::as_str));
            match Cli::try_parse_from(args) {
                Ok(_) => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {}
                Err(e) => problems.push(format!("{}: `{command}`: {}", path.display(), e.kind())),
            }
            checked += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "commands the CLI does not take:\n{}",
        problems.join("\n")
    );
    assert!(checked >= 20, "only {checked} commands found");
}

/// (method, path) of a `curl` command line: `-X`/`-XPOST` or, with a body, POST; the path of its
/// URL, with the tour's `$ORDER` and `<orderId>` standing for an order.
fn curl_request(command: &str) -> Option<(String, String)> {
    let words = words(command);
    let mut method = None;
    let mut body = false;
    let mut url = None;
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        if let Some(m) = word.strip_prefix("-X").filter(|m| !m.is_empty()) {
            method = Some(m.to_owned());
        } else if word == "-X" || word == "--request" {
            method = words.get(i + 1).cloned();
            i += 1;
        } else if word == "-d" || word == "--data" || word.starts_with("--data-") {
            body = true;
            i += 1;
        } else if word == "-H" || word == "-o" || word == "-w" {
            i += 1;
        } else if word.starts_with("http") || word.starts_with("$API") {
            url = Some(word.clone());
        }
        i += 1;
    }
    let url = url?;
    let path = url.strip_prefix("$API").map(str::to_owned).or_else(|| {
        let rest = url.split_once("://")?.1;
        rest.find('/').map(|i| rest[i..].to_owned())
    })?;
    let path = path
        .replace("$ORDER", "/orders/ORDER")
        .replace("<orderId>", "ORDER");
    let path = path.split('?').next().unwrap_or_default().to_owned();
    let method = method.unwrap_or_else(|| if body { "POST" } else { "GET" }.to_owned());
    Some((method.to_lowercase(), path))
}

#[test]
fn every_curl_in_the_docs_names_a_route_of_the_openapi_document() {
    let text = std::fs::read_to_string(root().join("events/openapi.yaml")).expect("openapi.yaml");
    let document = local_runtime::template::document(&text).expect("openapi.yaml parses");
    let paths = document["paths"].as_object().expect("paths").clone();
    let mut checked = 0;
    let mut problems = Vec::new();
    for (path, text) in documents() {
        for line in code_lines(&text) {
            let Some(at) = line.find("curl ") else {
                continue;
            };
            let command = &line[at..];
            let command = &command[..command.find(" #").unwrap_or(command.len())];
            let Some((method, route)) = curl_request(command) else {
                problems.push(format!("{}: no URL in `{command}`", path.display()));
                continue;
            };
            let documented = paths.iter().any(|(template, item)| {
                local_runtime::gateway::route_matches(template, &route)
                    && item.get(&method).is_some()
            });
            if !documented {
                problems.push(format!(
                    "{}: {method} {route} is not in events/openapi.yaml",
                    path.display()
                ));
            }
            checked += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 5, "only {checked} curl commands found");
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_block = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// The targets of a document's Markdown links, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let target = &rest[at + 2..];
            let end = target.find(')').unwrap_or(target.len());
            found.push(target[..end].to_owned());
            rest = &target[end..];
        }
    }
    found
}

#[test]
fn every_link_in_the_docs_reaches_a_file_and_a_heading() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (path, text) in documents() {
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        for link in links(&text) {
            if link.starts_with("http://")
                || link.starts_with("https://")
                || link.starts_with("mailto:")
            {
                continue;
            }
            let (file, fragment) = match link.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            let full = root().join(&target);
            checked += 1;
            if !full.exists() {
                problems.push(format!(
                    "{}: {link}: no {}",
                    path.display(),
                    target.display()
                ));
                continue;
            }
            if let Some(fragment) = fragment {
                let target_text = std::fs::read_to_string(&full).unwrap_or_default();
                if !anchors(&target_text).contains(fragment) {
                    problems.push(format!(
                        "{}: {link}: no heading #{fragment}",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
    assert!(checked >= 20, "only {checked} links found");
}

/// `NAME` of every `--env-var NAME=value` in `command`.
fn env_vars(command: &str) -> BTreeSet<String> {
    let words = words(command);
    words
        .windows(2)
        .filter(|pair| pair[0] == "--env-var")
        .filter_map(|pair| pair[1].split_once('=').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn every_cargo_lambda_deploy_gives_its_function_the_templates_environment() {
    let topology =
        Topology::load(&root().join("template.yaml"), &BTreeMap::new()).expect("template");
    let environment: BTreeMap<&str, BTreeSet<String>> = topology
        .functions
        .iter()
        .map(|f| (f.binary.as_str(), f.environment.keys().cloned().collect()))
        .collect();
    let (_, deploy) = documents()
        .into_iter()
        .find(|(path, _)| path.ends_with("docs/deploy.md"))
        .expect("docs/deploy.md");
    let lines = code_lines(&deploy);
    let common = lines
        .iter()
        .find_map(|line| line.trim().strip_prefix("COMMON="))
        .map(env_vars)
        .unwrap_or_default();
    let consumers: Vec<String> = lines
        .iter()
        .find_map(|line| {
            let list = line.trim().strip_prefix("for consumer in ")?;
            Some(words(list.split(';').next()?))
        })
        .unwrap_or_default();
    let mut deployed = BTreeSet::new();
    for line in &lines {
        let Some(at) = line.find("cargo lambda deploy ") else {
            continue;
        };
        let command = &line[at + "cargo lambda deploy ".len()..];
        let function = words(command).first().cloned().unwrap_or_default();
        let mut given = env_vars(command);
        if command.contains("$COMMON") {
            given.extend(common.iter().cloned());
        }
        let functions = if function == "$consumer" {
            consumers.clone()
        } else {
            vec![function]
        };
        for function in functions {
            let expected = environment.get(function.as_str()).unwrap_or_else(|| {
                panic!("docs/deploy.md deploys {function}, which the template does not have")
            });
            assert_eq!(
                &given, expected,
                "the environment docs/deploy.md gives {function}"
            );
            deployed.insert(function);
        }
    }
    let all: BTreeSet<String> = environment.keys().map(|b| b.to_string()).collect();
    assert_eq!(
        deployed, all,
        "docs/deploy.md deploys every function of the template"
    );
}

#[test]
fn every_cargo_lambda_invoke_names_a_function_and_a_sample() {
    let topology =
        Topology::load(&root().join("template.yaml"), &BTreeMap::new()).expect("template");
    let binaries: BTreeSet<&str> = topology
        .functions
        .iter()
        .map(|f| f.binary.as_str())
        .collect();
    let mut checked = 0;
    for (path, text) in documents() {
        for line in code_lines(&text) {
            let Some(at) = line.find("cargo lambda invoke ") else {
                continue;
            };
            let words = words(&line[at + "cargo lambda invoke ".len()..]);
            let function = words.first().map(String::as_str).unwrap_or_default();
            assert!(
                binaries.contains(function),
                "{}: no function {function}",
                path.display()
            );
            let file = words
                .windows(2)
                .find(|pair| pair[0] == "--data-file")
                .map(|pair| pair[1].clone())
                .unwrap_or_else(|| panic!("{}: `{line}` sends no --data-file", path.display()));
            assert!(root().join(&file).exists(), "{}: no {file}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} invocations found");
}

#[test]
fn the_readme_has_the_tour_ci_runs() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let tour = readme
        .split("<!-- tour -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- /tour -->").next())
        .expect("README.md has a <!-- tour --> block (infra/ci/tour.sh runs it)");
    assert!(tour.contains("curl") && tour.contains("token"), "{tour}");
}

/// The repository paths in a command: words that start with one of the project's directories.
fn repository_paths(command: &str) -> Vec<String> {
    const ROOTS: &[&str] = &[
        "infra/",
        ".ci/",
        "events/",
        "benchmarks/",
        "docs/",
        "tests/",
    ];
    words(command)
        .into_iter()
        .map(|word| word.trim_start_matches('@').to_owned())
        .filter(|word| ROOTS.iter().any(|root| word.starts_with(root)))
        .filter(|word| !word.contains('<') && !word.contains('*') && !word.contains('$'))
        .map(|word| word.trim_end_matches([',', ')', ';', ':']).to_owned())
        .collect()
}

#[test]
fn every_script_and_file_a_documented_command_uses_is_there() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for (path, text) in documents() {
        for command in code_lines(&text).into_iter().chain(inline_code(&text)) {
            for file in repository_paths(&command) {
                checked += 1;
                if !root().join(&file).exists() {
                    problems.push(format!(
                        "{}: `{command}` names {file}, which is not there",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 20, "only {checked} paths found");
}
