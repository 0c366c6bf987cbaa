//! The house's rules, read from the source: no module of a crate imports another that imports it
//! back (however long the circle), and no function crate depends on another function crate (what
//! two functions share lives in a crate under `crates/` named for what it is).
//!
//! A module here is a crate's top-level module (`src/a.rs` or `src/a/`); it uses another when
//! its files name `crate::b` (or an item the crate root re-exports from `b`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every crate directory of the workspace (the root package, crates/*, functions/*, benchmarks).
fn crates() -> Vec<PathBuf> {
    let mut dirs = vec![root(), root().join("benchmarks")];
    for group in ["crates", "functions"] {
        let mut members: Vec<PathBuf> = std::fs::read_dir(root().join(group))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("Cargo.toml").exists())
            .collect();
        members.sort();
        dirs.extend(members);
    }
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The identifiers of a path list after `crate::`: `a` in `crate::a::X`, `a` and `b` in
/// `crate::{a::X, b}`.
fn named_after_crate(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(list) = rest.strip_prefix('{') {
            // The first identifier of each top-level entry of the (possibly nested) list.
            let mut depth = 0;
            let mut entry_start = true;
            for (i, c) in list.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => entry_start = true,
                    c if entry_start && !c.is_whitespace() => {
                        names.push(leading_ident(&list[i..]));
                        entry_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.push(leading_ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

fn leading_ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The crate root's re-exports: item name -> the top-level module it comes from
/// (`pub use state::{OrderItem, Status};`).
fn reexports(root_file: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for statement in root_file.split(';') {
        let statement = statement.trim();
        let Some(path) = statement.strip_prefix("pub use ") else {
            continue;
        };
        let module = leading_ident(
            path.trim_start_matches("crate::")
                .trim_start_matches("self::"),
        );
        let items = match path.find('{') {
            Some(open) => path[open + 1..path.rfind('}').unwrap_or(path.len())].to_owned(),
            None => path.rsplit("::").next().unwrap_or_default().to_owned(),
        };
        for item in items.split(',') {
            let name = item.rsplit("::").next().unwrap_or_default();
            let name = name.rsplit(" as ").next().unwrap_or_default().trim();
            map.insert(name.to_owned(), module.clone());
        }
    }
    map
}

/// Module -> the modules it uses, for the crate at `dir`.
fn module_graph(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = dir.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let top_level = |file: &Path| -> Option<String> {
        let relative = file.strip_prefix(&src).ok()?;
        let first = relative.components().next()?.as_os_str().to_str()?;
        let name = first.trim_end_matches(".rs");
        (!matches!(name, "lib" | "main" | "bin")).then(|| name.to_owned())
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_level(f)).collect();
    let root_source = ["lib.rs", "main.rs"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(src.join(f)).ok())
        .collect::<String>();
    let reexported = reexports(&root_source);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = top_level(file) else {
            continue;
        };
        let source = std::fs::read_to_string(file).unwrap();
        // Comments (doc links among them) are not imports.
        let code: String = source
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .map(|line| format!("{line}\n"))
            .collect();
        for name in named_after_crate(&code) {
            let target = if modules.contains(&name) {
                Some(name)
            } else {
                reexported.get(&name).cloned()
            };
            if let Some(target) = target.filter(|t| *t != module && modules.contains(t)) {
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    graph
}

/// A circle through the graph, if there is one: the modules along it, first repeated at the end.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut circles = Vec::new();
    for dir in crates() {
        if let Some(circle) = find_circle(&module_graph(&dir)) {
            let name = dir
                .strip_prefix(root())
                .unwrap_or(&dir)
                .display()
                .to_string();
            circles.push(format!("{name}: {}", circle.join(" -> ")));
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import each other (move what both need into a module of its own):\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_circle_finder_finds_circles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph
                .entry((*from).to_owned())
                .or_default()
                .insert((*to).to_owned());
        }
        graph
    };
    assert_eq!(
        find_circle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        find_circle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        named_after_crate("use crate::{provision::{Deployment, x}, template::Topology};\n crate::jwt::Keys; $crate::no"),
        ["provision", "template", "jwt"]
    );
    assert_eq!(
        reexports("pub use state::{Decision, OrderItem as Item};").get("Item"),
        Some(&"state".to_owned())
    );
}

#[test]
fn no_function_crate_depends_on_another_function_crate() {
    let functions = root().join("functions");
    let mut found = Vec::new();
    for dir in crates().into_iter().filter(|d| d.starts_with(&functions)) {
        let manifest: toml_like::Manifest = toml_like::read(&dir.join("Cargo.toml"));
        for (dependency, path) in manifest.path_dependencies {
            let target = dir.join(&path).canonicalize().unwrap();
            if target.starts_with(functions.canonicalize().unwrap()) {
                found.push(format!(
                    "{} depends on {dependency} ({path})",
                    dir.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "function crates importing function crates (move what they share into crates/):\n{}",
        found.join("\n")
    );
}

/// Just enough of a Cargo.toml: its path dependencies (`name = { path = "..." }`).
mod toml_like {
    pub struct Manifest {
        pub path_dependencies: Vec<(String, String)>,
    }

    pub fn read(path: &std::path::Path) -> Manifest {
        let text = std::fs::read_to_string(path).unwrap();
        let mut path_dependencies = Vec::new();
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let Some(at) = value.find("path = \"") else {
                continue;
            };
            let rest = &value[at + "path = \"".len()..];
            let target = rest.split('"').next().unwrap_or_default();
            path_dependencies.push((name.trim().to_owned(), target.to_owned()));
        }
        Manifest { path_dependencies }
    }
}
